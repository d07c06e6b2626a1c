"""Rewards of K architectures in one compiled call.

The controller phase scores many sampled arcs; one call per arc pays the
per-call and per-op overheads K times. Here arc i is rewarded on its own
batch i, and reward i equals ``task.reward(arcs[i], batch_i)``.

The K rewards run as an in-graph loop of the one-arc reward (two
iterations at a time), which saves the per-call overhead. They are not
vectorized over the arcs (``tf.vectorized_map``): the children route their
choices with ``Switch``/``Merge``, which pfor cannot convert (inside the
CIFAR ops' former ``switch_case`` branches the per-slot weight picks and the
depthwise convolutions fell back to while loops, which failed when no arc
took a branch).
"""

import tensorflow as tf


def stack_batches(batches):
    """K batches (tuples of tensors of equal shapes) -> one tuple of [K, ...] tensors."""
    return tuple(tf.stack(parts) for parts in zip(*batches))


def rewards(task, arcs, batches):
    """``task.reward`` of arc i on batch i: arcs int [K, L], batches [K, ...] -> ([K], [K])."""
    def one(args):
        return task.reward(*args)

    return tf.map_fn(one, (arcs, batches), parallel_iterations=2,
                     fn_output_signature=(tf.TensorSpec([], tf.float32),) * 2)
