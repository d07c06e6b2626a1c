"""Fused batch normalization over NHWC images, for the CIFAR children.

Keras 3 ``BatchNormalization`` is not fused; ``fused_batch_norm`` was ~18%
faster on this CPU, and it is the op the official code used. The layer is
safe inside a routed dispatch (``routing.dispatch``, or ``tf.switch_case``):
its variables exist from build(), and the moving averages are assigned from
the routed input, so only the op that ran updates its statistics.

``batch_stats_only=True`` is the official micro search's normalization: it
always uses the batch statistics (training or not) and keeps no moving
averages. Only then may ``slots`` give it one (scale, offset) pair per slot,
picked by a tensor index at call time (the micro search keeps one copy of an
op's weights per input the op may read).

Under a mixed policy x comes in the compute dtype (bfloat16) and so does y,
but the normalization runs in float32, as Keras' own batch norm does: the
oneDNN kernels for a bfloat16 x were slower than the float32 ones plus two
casts (its backward ~4x at the macro search's size). Scale, offset and the
statistics are float32 variables either way.
"""

import keras
import tensorflow as tf


def pick(weight, slot):
    """The slot's copy of a stacked weight, or the weight itself.

    Slicing (not tf.gather) keeps the gradient dense: IndexedSlices coming
    out of switch_case branches made the micro search step ~35% slower to
    trace and optimize.
    """
    return weight if slot is None else tf.convert_to_tensor(weight)[slot]


def normalize(x, scale, offset, epsilon):
    """Normalizes NHWC ``x`` with its batch statistics: (y, mean, unbiased variance)."""
    # tf.compat.v1 holds the only Python wrapper of the fused kernel in TF 2.
    return tf.compat.v1.nn.fused_batch_norm(
        x, scale, offset, epsilon=epsilon, is_training=True)


@keras.saving.register_keras_serializable(package="enas_tf")
class FusedBatchNorm(keras.layers.Layer):
    """Batch normalization of the channel axis of NHWC images.

    Call: ``bn(x, training=False, slot=None)``. Training normalizes with the
    batch statistics and moves the averages by ``1 - momentum`` (the
    official decay 0.9); inference uses the moving averages. ``slot`` (int
    scalar, possibly a tensor) is required exactly when ``slots`` is set.
    """

    def __init__(self, momentum=0.9, epsilon=1e-3, batch_stats_only=False,
                 slots=None, **kwargs):
        super().__init__(**kwargs)
        if slots is not None and not batch_stats_only:
            raise ValueError("slots needs batch_stats_only=True (per-slot moving "
                             f"averages are not supported). Received: slots={slots}")
        if slots is not None and slots < 1:
            raise ValueError(f"slots must be >= 1. Received: slots={slots}")
        self.momentum = momentum
        self.epsilon = epsilon
        self.batch_stats_only = batch_stats_only
        self.slots = slots

    def build(self, input_shape):
        shape = (input_shape[-1],) if self.slots is None else (self.slots, input_shape[-1])
        # float32 under a mixed policy too (autocast=False): see the module docstring.
        self.gamma = self.add_weight(shape=shape, initializer="ones", name="gamma",
                                     autocast=False)
        self.beta = self.add_weight(shape=shape, initializer="zeros", name="beta",
                                    autocast=False)
        if not self.batch_stats_only:
            self.moving_mean = self.add_weight(
                shape=shape, initializer="zeros", trainable=False, name="moving_mean",
                autocast=False)
            self.moving_variance = self.add_weight(
                shape=shape, initializer="ones", trainable=False, name="moving_variance",
                autocast=False)

    def call(self, x, training=False, slot=None):
        if (slot is None) != (self.slots is None):
            raise ValueError(f"slot must be given exactly when slots is set. "
                             f"Received: slot={slot!r} with slots={self.slots}")
        gamma, beta = pick(self.gamma, slot), pick(self.beta, slot)
        if x.dtype != tf.float32:
            return tf.cast(self._normalize(tf.cast(x, tf.float32), gamma, beta, training),
                           x.dtype)
        return self._normalize(x, gamma, beta, training)

    def _normalize(self, x, gamma, beta, training):
        if self.batch_stats_only or training:
            y, mean, variance = normalize(x, gamma, beta, self.epsilon)
            if not self.batch_stats_only:
                rate = 1.0 - self.momentum
                self.moving_mean.assign_sub((self.moving_mean - mean) * rate)
                self.moving_variance.assign_sub((self.moving_variance - variance) * rate)
            return y
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, mean=self.moving_mean, variance=self.moving_variance,
            epsilon=self.epsilon, is_training=False)
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, epsilon=self.epsilon,
                      batch_stats_only=self.batch_stats_only, slots=self.slots)
        return config
