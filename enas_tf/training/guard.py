"""Keeps non-finite numbers out of the weights."""

import tensorflow as tf


def zero_unless(finite, grads):
    """The gradients where ``finite`` holds, zeros otherwise (sparse stays sparse)."""
    def guarded(grad):
        if grad is None:
            return None
        if isinstance(grad, tf.IndexedSlices):
            values = tf.where(finite, grad.values, tf.zeros_like(grad.values))
            return tf.IndexedSlices(values, grad.indices, grad.dense_shape)
        return tf.where(finite, grad, tf.zeros_like(grad))
    return [guarded(g) for g in grads]
