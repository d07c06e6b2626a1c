"""Efficient Neural Architecture Search with Keras 3 and TensorFlow 2."""
