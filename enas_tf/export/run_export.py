"""Exports a finished or stopped run's trained child from its run directory.

The task is rebuilt from the run's RunConfig and data, the run's latest
checkpoint restored into it (weights and batch-norm statistics only), and
the task's export code writes the next version under
``<export_dir>/<model_name>/``. Which arc: a fixed run's own; for a search,
the arc asked for, else its best_arc.txt; with ``supernet`` every arc (the
arc becomes an input of the signature). ``bin/export_child`` and
``Results.export`` both call ``export_run``.
"""

import os

import tensorflow as tf

from enas_tf.data import ptb
from enas_tf.training import errors
from enas_tf.training import run_config
from enas_tf.training import run_dir


class RunExportError(errors.NamesParameters, ValueError):
    """A run that cannot export as asked; the message is one line."""


def latest_checkpoint(output_dir):
    """The run's latest checkpoint; RunExportError if the run has none."""
    checkpoint = tf.train.latest_checkpoint(os.path.join(output_dir, run_dir.CHECKPOINTS))
    if not checkpoint:
        raise RunExportError(f"{{output_dir}}={output_dir} has no checkpoint in "
                             f"{run_dir.CHECKPOINTS}/: nothing trained to export")
    return checkpoint


def requested_arc(run, output_dir, arc_text=None, supernet=False):
    """The arc to export as int32 numpy, or None (a fixed run's own arc, or
    every arc with ``supernet``)."""
    space = run.space()
    if supernet and arc_text is not None:
        raise RunExportError("{supernet} exports every arc: drop {arc}")
    if run.fixed_arc is not None:
        if supernet:
            raise RunExportError(f"{{output_dir}}={output_dir} is a fixed-arc run: "
                                 "{supernet} needs a search run's shared weights")
        if arc_text is not None and (space.to_string(space.from_string(arc_text))
                                     != run.fixed_arc):
            raise RunExportError(f"{{output_dir}}={output_dir} trained only the arc "
                                 f"'{run.fixed_arc}'; its checkpoint cannot export another")
        return None
    if supernet:
        return None
    if arc_text is None:
        best_arc = os.path.join(output_dir, run_dir.BEST_ARC)
        if not os.path.isfile(best_arc):
            raise RunExportError(f"{{output_dir}}={output_dir} is a search without "
                                 f"{run_dir.BEST_ARC} yet: give {{arc}}, or {{supernet}}")
        with open(best_arc, encoding="utf-8") as f:
            arc_text = f.read()
    return space.from_string(arc_text)


def run_data(run, output_dir, data=None):
    """The run's data set (``data`` or loaded from the run's config); for PTB,
    checked against the vocabulary the run trained on (vocab.txt)."""
    data = run_config.load_data(run) if data is None else data
    vocab_path = os.path.join(output_dir, "vocab.txt")
    if (run.family == "ptb" and os.path.isfile(vocab_path)
            and ptb.Vocabulary.load(vocab_path).words != data.vocab.words):
        raise RunExportError(f"{{data_path}}={run.data.path} gives another vocabulary "
                             f"than the run's {vocab_path}")
    return data


def restore(task, checkpoint, source):
    """Restores the child's weights (and batch-norm statistics) only."""
    try:
        status = tf.train.Checkpoint(model=task.model).restore(checkpoint).expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        reason = " ".join(str(e).split())[:300]
        raise RunExportError(f"{checkpoint} does not hold the model of the run's "
                             f"{source} ({reason})") from None


def export_run(run, output_dir, *, data=None, arc_text=None, supernet=False,
               source=run_dir.CONFIG):
    """Exports the run ``run`` (its RunConfig) found in ``output_dir``; returns
    the version's path. ``source`` names where ``run`` came from, for errors."""
    checkpoint = latest_checkpoint(output_dir)
    arc = requested_arc(run, output_dir, arc_text, supernet)
    task = run_config.build_task(run, run_data(run, output_dir, data),
                                 tf.random.Generator.from_seed(run.seed))
    restore(task, checkpoint, source)
    exported = arc if arc is not None else task.fixed_arc
    metadata = {"space": run.family, "flags": run.flags,
                "arc": None if exported is None else task.space.to_string(exported),
                "checkpoint": checkpoint}
    return task.export(run.loop.export_dir, run.loop.model_name, metadata, arc=arc,
                       supernet=supernet)
