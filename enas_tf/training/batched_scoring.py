"""Rewards of K architectures in one compiled call.

The controller phase scores many sampled arcs; one call per arc pays the
per-call and per-op overheads K times. Here arc i is rewarded on its own
batch i, and reward i equals ``task.reward(arcs[i], batch_i)``.

The PTB reward vectorizes: ``tf.vectorized_map`` runs the K arcs as one
batched computation (each arc's edge weights gathered into batched matmuls,
each ``tf.switch_case`` a partition of the K arcs by choice, each
perplexity over that arc's own tokens). The CIFAR children do not: inside
their ``switch_case`` branches the per-slot weight picks and the depthwise
convolutions fall back to while loops, which fail when no arc takes a
branch. Their K rewards run as an in-graph loop of the one-arc reward
(two iterations at a time), which saves the per-call overhead only.
"""

import tensorflow as tf


def stack_batches(batches):
    """K batches (tuples of tensors of equal shapes) -> one tuple of [K, ...] tensors."""
    return tuple(tf.stack(parts) for parts in zip(*batches))


def rewards(task, arcs, batches):
    """``task.reward`` of arc i on batch i: arcs int [K, L], batches [K, ...] -> ([K], [K])."""
    def one(args):
        return task.reward(*args)

    if task.reward_vectorizes:
        return tf.vectorized_map(one, (arcs, batches))
    return tf.map_fn(one, (arcs, batches), parallel_iterations=2,
                     fn_output_signature=(tf.TensorSpec([], tf.float32),) * 2)
