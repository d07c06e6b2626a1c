"""Image classifier exports: uint8 images of the run's shape in, class probabilities out.

The images are normalised inside the graph with the training split's
channel statistics, so a client sends raw pixels. A search model exports
itself, pinned to one arc or, as a supernet, with the arc an input: a fixed
CIFAR network is a different network from the search model (as
officially), so it cannot take the shared weights.
"""

import tensorflow as tf

from enas_tf.data import images as image_data
from enas_tf.export import saved_model


def export(model, mean, std, arcs, export_base, model_name, metadata, image_shape,
           class_names):
    """Writes ``model`` (with the arc input ``arcs``) as the next version of
    ``<export_base>/<model_name>``; returns its directory. The signature takes
    uint8 images [N, *image_shape]; the metadata names the classes."""
    module = CifarServingModule(model, mean, std, arcs, image_shape)
    metadata = dict(metadata, mean=mean.tolist(), std=std.tolist(),
                    class_names=list(class_names), image_shape=list(image_shape),
                    normalization="(images / 255 - mean) / std, inside the model",
                    **arcs.metadata())
    return saved_model.export(module, export_base, model_name,
                              signatures={"serving_default": module.serve},
                              metadata=metadata)


class CifarServingModule(tf.Module):
    """Serving signature: uint8 images [+ arc] -> class probabilities and top class."""

    def __init__(self, model, mean, std, arcs, image_shape):
        super().__init__()
        # Track the variables, not the Keras model: saving would otherwise
        # try to trace the model's own call signature.
        self.model_variables = saved_model.tf_variables(model)
        self._model = lambda images, arc: model(images, arc, training=False)
        self._mean, self._std = mean, std
        self._arcs = arcs
        images = tf.TensorSpec((None,) + tuple(image_shape), tf.uint8, name="images")
        self.serve = tf.function(self._serve, input_signature=[images] + self._arcs.specs)

    def _serve(self, images, arc=None):
        logits = self._model(image_data.normalize(images, self._mean, self._std),
                             self._arcs.tensor(arc))
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        return {"probabilities": probabilities, "classes": tf.argmax(probabilities, axis=-1)}
