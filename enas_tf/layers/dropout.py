"""Stateless dropout masks for the PTB model's variational dropouts.

Masks are drawn with stateless ops from an explicit seed so a run resumed
from a checkpoint (which stores the seed generator) draws the same masks.
"""

import tensorflow as tf


def keep_mask(shape, keep_prob, seed, dtype=tf.float32):
    """A {0, 1/keep_prob} mask of ``dtype``; the constant 1 when keep_prob >= 1.

    The draw is float32 whatever ``dtype``, so a bfloat16 model drops the same
    units as a float32 one with the same seed.
    """
    if keep_prob >= 1.0:
        return tf.ones(shape, dtype)
    uniform = tf.random.stateless_uniform(shape, seed, dtype=tf.float32)
    return tf.cast(tf.cast(uniform < keep_prob, tf.float32) / keep_prob, dtype)
