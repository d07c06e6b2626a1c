"""Runs what a RunConfig describes: a search or a fixed-arc training, in its run directory.

This is the one way in below the binaries and the Python API: both build a
``RunConfig`` and call ``run``. A run directory that holds a run resumes it
(``SearchLoop.restore``); a finished run returns at once. Only the chief
worker of a multi-worker strategy writes ``config.output_dir``; the others
write to a temporary directory removed at exit, as multi-worker
checkpointing needs.
"""

import atexit
import shutil

import keras
import tensorflow as tf

from enas_tf.training import distribute
from enas_tf.training import run_config as run_config_lib
from enas_tf.training import run_dir
from enas_tf.training import search


def build_strategy(name, num_cpu_devices, output_dir):
    """The tf.distribute strategy ``name`` and this process's output directory
    (``output_dir`` on the chief).

    Call it before TensorFlow runs anything (logical CPU devices and the
    multi-worker runtime are set up at the start of a process).
    """
    strategy = distribute.build_strategy(name, num_cpu_devices)
    worker_dir = distribute.worker_output_dir(strategy, output_dir)
    if worker_dir != output_dir:
        atexit.register(shutil.rmtree, worker_dir, ignore_errors=True)
    return strategy, worker_dir


def seed_everything(seed):
    """Seeds weight init; returns the checkpointed generator for everything else."""
    keras.utils.set_random_seed(seed)
    return tf.random.Generator.from_seed(seed)


def run(config, data=None, *, reset_output_dir=False, strategy=None, output_dir=None,
        before_run=None):
    """Runs ``config`` to its end and returns its summary (the summary.json dict).

    ``data`` is the loaded data set (default: ``run_config.load_data(config)``).
    ``strategy`` and ``output_dir`` come from ``build_strategy`` when the
    caller built them already (the binaries do, before parsing the rest).
    ``before_run(output_dir)`` writes the caller's own files (the binaries'
    flags.cfg) once the directory is known to hold this run, not another's.
    """
    if strategy is None:
        strategy, output_dir = build_strategy(config.strategy, config.num_cpu_devices,
                                              config.output_dir)
    output_dir = output_dir or config.output_dir
    data = run_config_lib.load_data(config) if data is None else data
    lock = run_dir.prepare(output_dir, reset_output_dir)
    try:
        return _run_locked(config, data, strategy, output_dir, before_run)
    finally:
        lock.release()


def _run_locked(config, data, strategy, output_dir, before_run):
    rng = seed_everything(config.seed)
    task = run_config_lib.build_task(config, data, rng, strategy)
    controller = reinforce = None
    if config.fixed_arc is None and config.loop.search_strategy == "enas":
        controller, reinforce = run_config_lib.build_controller(
            config.family, config.task, config.controller)
    loop = search.SearchLoop(
        task, config.loop, output_dir, rng, controller=controller, reinforce=reinforce,
        run_metadata={"space": config.family, "flags": config.flags})
    loop.restore()  # a checkpoint of another model fails before anything is written
    if before_run:
        before_run(output_dir)
    run_config_lib.save(config, output_dir)
    task.write_run_files(output_dir)
    return loop.run()
