"""Stateless dropout masks for the PTB model's variational dropouts.

Masks are drawn with stateless ops from an explicit seed so a run resumed
from a checkpoint (which stores the seed generator) draws the same masks.
"""

import tensorflow as tf


def keep_mask(shape, keep_prob, seed, dtype=tf.float32):
    """A {0, 1/keep_prob} mask; the constant 1 when keep_prob >= 1."""
    if keep_prob >= 1.0:
        return tf.ones(shape, dtype)
    uniform = tf.random.stateless_uniform(shape, seed, dtype=dtype)
    return tf.cast(uniform < keep_prob, dtype) / keep_prob
