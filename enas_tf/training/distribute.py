"""Data-parallel child training through tf.distribute.

``none`` is TensorFlow's default strategy (one device, one replica), so the
tasks keep a single code path. ``mirrored`` copies the child onto every local
GPU (or onto ``num_cpu_devices`` logical CPU devices when there is no GPU);
``multi_worker_mirrored`` onto every worker named in ``TF_CONFIG``, one
replica per worker without GPUs. Keras 3 ``fit`` does not run under the
multi-worker strategy, so the tasks use their own loop: ``strategy.run`` of
a replica step, gradients summed across replicas, applied once.

Every replica receives the whole global batch (every worker builds the same
batches from the same seeds) and takes its own slice of it, so a step over
R replicas trains on exactly the batch of a one-device step. The controller
stays outside the strategy: each worker samples the arc itself from an
identically seeded generator, and the step checks that all of them agree.
"""

import json
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from enas_tf.training import errors

STRATEGIES = ("none", "mirrored", "multi_worker_mirrored")


class DistributionError(errors.NamesParameters, ValueError):
    """A strategy that cannot be built here; the message is one line, its
    parameters marked ``{strategy}``, ``{num_cpu_devices}``, ``{batch_size}``."""


class SummedGradients:
    """Optimizer mixin: the step hands over gradients it already summed over
    the replicas (it clips their global norm first), so the Keras optimizer
    must not all-reduce them again. One replica: the same as without it."""

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return grads_and_vars


@keras.saving.register_keras_serializable(package="enas_tf")
class SummedGradientsSGD(SummedGradients, keras.optimizers.SGD):
    """Keras SGD taking gradients already summed over replicas."""


def build_strategy(name, num_cpu_devices=1):
    """The tf.distribute strategy ``name`` (one of STRATEGIES).

    Call it before TensorFlow runs anything: logical CPU devices and the
    multi-worker runtime can only be set up at the start of a process.
    """
    if name not in STRATEGIES:
        raise DistributionError(f"{{strategy}} must be one of "
                                f"{', '.join(STRATEGIES)}. Received: {name!r}")
    if num_cpu_devices < 1:
        raise DistributionError(f"{{num_cpu_devices}} must be >= 1. Received: {num_cpu_devices}")
    if num_cpu_devices > 1 and name != "mirrored":
        raise DistributionError("{num_cpu_devices} splits the CPU for "
                                "{strategy}=mirrored only. "
                                f"Received: {{strategy}}={name}")
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(_mirrored_devices(num_cpu_devices))
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=_cluster_resolver())


def _mirrored_devices(num_cpu_devices):
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if num_cpu_devices > 1:
            raise DistributionError(f"this machine has {len(gpus)} GPU(s), which "
                                    "mirrored uses: drop {num_cpu_devices}")
        return [f"/gpu:{i}" for i in range(len(gpus))]
    if num_cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * num_cpu_devices)
        except RuntimeError:
            raise DistributionError("{num_cpu_devices} must be set before TensorFlow "
                                    "starts: build the strategy first") from None
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def _cluster_resolver():
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise DistributionError("{strategy}=multi_worker_mirrored needs "
                                "TF_CONFIG naming the cluster and this task, e.g. "
                                '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                                '"task": {"type": "worker", "index": 0}}')
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise DistributionError("TF_CONFIG must be JSON with cluster.worker (a list of "
                                "host:port) and task.type and task.index. "
                                f"Received: {text[:200]}") from None
    if not isinstance(workers, list) or not workers:
        raise DistributionError(f"TF_CONFIG cluster.worker must be a non-empty list of "
                                f"host:port. Received: {workers!r}")
    return tf.distribute.cluster_resolver.TFConfigClusterResolver()


def is_chief(strategy):
    """Whether this process writes the run's files: always, except on a
    multi-worker cluster, where only the chief (or worker 0 without one) does."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_output_dir(strategy, output_dir):
    """Where this process writes: ``output_dir`` on the chief; elsewhere a new
    temporary directory (every worker must save its checkpoints, as TF's
    multi-worker guide says, but only the chief's are kept). It starts with
    a copy of ``output_dir``'s checkpoints, when this worker can see them,
    so that every worker resumes from the same one."""
    if is_chief(strategy):
        return output_dir
    resolver = strategy.cluster_resolver
    path = tempfile.mkdtemp(prefix=f"enas_{resolver.task_type}{resolver.task_id}_")
    checkpoints = os.path.join(output_dir, "checkpoints")
    if os.path.isdir(checkpoints):
        shutil.copytree(checkpoints, os.path.join(path, "checkpoints"))
    return path


def check_global_batch(strategy, batch_size):
    """Every replica must get an equal slice of the global batch."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise DistributionError(f"{{batch_size}}={batch_size} must be a multiple of the "
                                f"{replicas} replicas of the distribution strategy")


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def first_local(strategy, value):
    """One replica's copy of a value that all replicas hold equally."""
    return strategy.experimental_local_results(value)[0]


# Inside a replica step (strategy.run) ------------------------------------
def num_replicas():
    return tf.distribute.get_replica_context().num_replicas_in_sync


def local_slice(tensor):
    """This replica's equal share of a global batch (axis 0)."""
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    if replicas == 1:
        return tensor
    parts = tf.reshape(tensor, [replicas, -1] + tensor.shape[1:].as_list())
    return parts[context.replica_id_in_sync_group]


def replica_seed(seed):
    """A stateless seed of its own for each replica (dropout masks differ per
    slice); the seed itself with one replica."""
    context = tf.distribute.get_replica_context()
    if context.num_replicas_in_sync == 1:
        return seed
    return tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)


def sum_across_replicas(values):
    """The sums over all replicas of a list of tensors, in one collective."""
    context = tf.distribute.get_replica_context()
    if context.num_replicas_in_sync == 1:
        return list(values)
    return context.all_reduce(tf.distribute.ReduceOp.SUM,
                              [tf.convert_to_tensor(v) for v in values])


def average_variables(variables):
    """Sets each replica's copy of ``variables`` to their mean over replicas
    (e.g. batch-norm moving averages, which each replica moved with its own
    batch statistics)."""
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    if replicas == 1 or not variables:
        return
    sums = context.all_reduce(tf.distribute.ReduceOp.SUM,
                              [tf.convert_to_tensor(v) for v in variables])
    for variable, total in zip(variables, sums):
        variable.assign(total / replicas)


def assert_same_on_all_replicas(values, message):
    """Fails the step unless every replica holds the same int32 ``values``
    (e.g. the arc each worker sampled). All equal iff R * sum(v^2) == sum(v)^2."""
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    if replicas == 1:
        return tf.no_op()
    values = tf.cast(values, tf.int64)
    total, squares = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                        [values, tf.square(values)])
    return tf.debugging.assert_equal(replicas * squares, tf.square(total), message=message)
