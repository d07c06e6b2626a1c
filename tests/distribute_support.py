"""Subprocess side of distribute_test: logical devices and a multi-worker
runtime must be set up before TensorFlow starts, so each runs in a fresh
process and writes what it measured as JSON or .npz.

  python tests/distribute_support.py mirrored SPACE OUT.json
  TF_CONFIG=... python tests/distribute_support.py worker SEED OUT.npz
"""

import json
import os
import sys

import numpy as np

from enas_tf.training import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PTB = dict(num_nodes=4, hidden_size=8, batch_size=4, bptt=5, eval_batch_size=3, lr=1.0,
           l2_reg=1e-3, slowness_reg=0.1)
CIFAR = {"macro": dict(num_layers=3, out_filters=4),
         "micro": dict(num_layers=1, num_cells=2, out_filters=4, use_aux_heads=True)}


def make_task(space, strategy, seed=1):
    import tensorflow as tf
    rng = tf.random.Generator.from_seed(seed)
    if space == "ptb":
        from enas_tf.data import ptb
        from enas_tf.training import ptb_task
        data = ptb.load_ptb(os.path.join(ROOT, "testdata", "ptb"))
        return ptb_task.PtbTask(ptb_task.PtbConfig(**PTB), data, rng, strategy=strategy)
    from enas_tf.data import cifar10
    from enas_tf.training import cifar_task
    data = cifar10.load_cifar10(os.path.join(ROOT, "testdata", "cifar10"))
    config = cifar_task.CifarConfig(space=space, batch_size=8, num_valid=50, keep_prob=1.0,
                                    l2_reg=1e-3, data_seed=3, **CIFAR[space])
    return cifar_task.CifarTask(config, data, rng, strategy=strategy)


def copies(variable):
    """Every replica's copy of a (Keras) variable, as numpy arrays."""
    value = getattr(variable, "value", variable)
    return [v.numpy() for v in getattr(value, "values", [value])]


def global_batch(task, space):
    """The first training batch; for CIFAR its first half twice, so that each
    replica's batch-norm statistics are the global batch's (no dropout anywhere)."""
    import tensorflow as tf
    task.begin_epoch(0)
    if space == "ptb":
        return next(task._iterator)
    images, labels = next(task._iterator)
    half = images.shape[0] // 2
    return tf.concat([images[:half]] * 2, 0), tf.concat([labels[:half]] * 2, 0)


def train_twice(task, batch, arc):
    """Two compiled steps on ``batch`` (PTB carries its state between them)."""
    import tensorflow as tf
    arc = tf.constant(arc, tf.int32)
    carry = task.initial_carry()
    for _ in range(2):
        _, carry, _, _ = task._train_step(batch, carry, arc)


def mirrored(space, out_path):
    """Two replicas over two logical CPU devices against one device, same batch and arc."""
    strategy = distribute.build_strategy("mirrored", num_cpu_devices=2)
    one, two = make_task(space, None), make_task(space, strategy)
    for target, source in zip(two.model.variables, one.model.variables):
        target.assign(source)
    initial = [copies(v)[0] for v in one.model.variables]
    arc = one.space.random_arc(np.random.default_rng(0))
    for task in (one, two):
        train_twice(task, global_batch(task, space), arc)
    report = {"replicas": strategy.num_replicas_in_sync, "variables": [
        {"name": a.path, "trainable": a.trainable,
         "diff": float(np.max(np.abs(copies(a)[0] - copies(b)[0]))),
         "diff_norm": float(np.linalg.norm(copies(a)[0] - copies(b)[0])),
         "update_norm": float(np.linalg.norm(copies(a)[0] - start)),
         "replicas_equal": all(np.array_equal(copies(b)[0], c) for c in copies(b)),
         "changed": bool(np.any(copies(a)[0] != start))}
        for a, b, start in zip(one.model.variables, two.model.variables, initial)]}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(report, f)


def worker(seed, out_path):
    """A few PTB steps on this worker of the TF_CONFIG cluster; arcs from ``seed``."""
    strategy = distribute.build_strategy("multi_worker_mirrored")
    task = make_task("ptb", strategy, seed=int(seed))
    before = [copies(v)[0] for v in task.model.trainable_variables]
    task.begin_epoch(0)
    arcs = np.random.default_rng(int(seed))
    for _ in range(3):
        task.train_step(task.space.random_arc(arcs))
    after = [copies(v)[0] for v in task.model.trainable_variables]
    np.savez(out_path, replicas=strategy.num_replicas_in_sync,
             traces=task.traces()["child_train_step"],
             **{f"before_{i}": v for i, v in enumerate(before)},
             **{f"after_{i}": v for i, v in enumerate(after)})


if __name__ == "__main__":
    {"mirrored": mirrored, "worker": worker}[sys.argv[1]](*sys.argv[2:])
