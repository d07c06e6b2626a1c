"""A trained image child as a plain Keras classifier: pixels in, logits out.

What ``Results.model()`` returns for a CIFAR-style run, so a user can
``predict``, ``evaluate``, or ``compile`` and ``fit`` it further like any
``keras.Model``. It normalises raw pixels (uint8 or float in [0, 255]) with
the training split's channel statistics, as the exports do, and returns
the main head's logits only (the micro aux head, when present, only
shapes the project's own training loss).

What the project's own training adds and a plain ``fit`` does not: the
shared l2 term (``l2_reg``), Nesterov momentum that skips zero gradients
(``MaskedSGD``), the cosine schedule with warm restarts, the aux head's
weighted loss, cutout, and drop-path's linear schedule (``fit`` keeps the
drop-path strength the child's ``drop_path_progress`` holds: full strength
after a finished run).
"""

import keras
import numpy as np
import tensorflow as tf

from enas_tf.data import images as image_data


@keras.saving.register_keras_serializable(package="enas_tf")
class ImageClassifier(keras.Model):
    """``child`` (a fixed MacroChild or MicroChild) behind the run's normalisation."""

    def __init__(self, child, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.child = child
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    def call(self, images, training=False):
        outputs = self.child(image_data.normalize(images, self.mean, self.std),
                             training=training)
        logits = outputs[0] if isinstance(outputs, tuple) else outputs
        return tf.cast(logits, tf.float32)

    def get_config(self):
        config = super().get_config()
        config.update(child=keras.saving.serialize_keras_object(self.child),
                      mean=self.mean.tolist(), std=self.std.tolist())
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        child = keras.saving.deserialize_keras_object(config.pop("child"))
        return cls(child, **config)
