"""bin/export_child: export a run's trained child as a SavedModel, without training.

Fixed run:   bin/export_child --output_dir=runs/ptb_final_quick
Search run:  bin/export_child --output_dir=runs/ptb_search_quick   (its best_arc.txt,
             or --child_fixed_arc / --child_fixed_arc_file)
Supernet:    bin/export_child --output_dir=runs/ptb_search_quick --supernet

The task is rebuilt from the run's own flags.cfg (PTB or CIFAR-10 macro or
micro), its latest checkpoint restored, and the task's export code writes
the next version under <export_dir>/<model_name>/. Only --output_dir,
--export_dir, --model_name, the arc flags and the data location come from
this command line.
"""

import os

import tensorflow as tf
from absl import app
from absl import flags

from enas_tf.cli import common
from enas_tf.cli import search_cifar
from enas_tf.cli import search_ptb
from enas_tf.data import cifar10
from enas_tf.data import ptb
from enas_tf.search_space import rnn
from enas_tf.training import cifar_task
from enas_tf.training import ptb_task
from enas_tf.training import run_dir

FLAGS = flags.FLAGS

flags.DEFINE_boolean("supernet", False, "Export a search run's shared-weight model with "
                     "the arc as a second signature input, answering for every arc.")

# Taken from this command line; every other flag comes from the run's flags.cfg.
_OWN_FLAGS = ("output_dir", "export_dir", "model_name", "child_fixed_arc",
              "child_fixed_arc_file", "data_path", "tfds_data_dir")


def _check_run_dir(output_dir):
    """The run's latest checkpoint; one-line errors for what a run must hold."""
    if not FLAGS["output_dir"].present:
        raise common.UsageError("--output_dir must name the directory of a run of "
                                "bin/search_ptb or bin/search_cifar")
    if not os.path.isdir(output_dir):
        raise common.UsageError(f"--output_dir={output_dir} does not exist")
    if not os.path.isfile(os.path.join(output_dir, run_dir.FLAGS)):
        raise common.UsageError(f"--output_dir={output_dir} has no {run_dir.FLAGS}: not a "
                                "run of bin/search_ptb or bin/search_cifar")
    checkpoint = tf.train.latest_checkpoint(os.path.join(output_dir, run_dir.CHECKPOINTS))
    if not checkpoint:
        raise common.UsageError(f"--output_dir={output_dir} has no checkpoint in "
                                f"{run_dir.CHECKPOINTS}/: nothing trained to export")
    return checkpoint


def _load_run_flags(output_dir):
    """Sets FLAGS to the run's flags.cfg, keeping this command line's own flags.

    Returns the run's arc text (a fixed-arc run) or None (a search).
    """
    given = {name: FLAGS[name].value for name in _OWN_FLAGS if FLAGS[name].present}
    for name in _OWN_FLAGS:
        FLAGS[name].unparse()
    FLAGS(["export_child"] + FLAGS.read_flags_from_files(
        [f"--flagfile={os.path.join(output_dir, run_dir.FLAGS)}"], force_gnu=False))
    best_arc = os.path.join(output_dir, run_dir.BEST_ARC)
    try:
        run_arc = common.fixed_arc_text()
    except common.UsageError:
        # The recorded arc file has gone; a finished fixed run wrote its arc too.
        if not os.path.isfile(best_arc):
            raise
        with open(best_arc, encoding="utf-8") as f:
            run_arc = f.read()
    for name in ("child_fixed_arc", "child_fixed_arc_file"):
        FLAGS[name].unparse()  # from here on, the arc asked for on this command line
    for name, value in given.items():
        FLAGS[name].value = value
    return run_arc


def _requested_arc(output_dir, space, run_arc):
    """The arc to export (None: the fixed run's own, or every arc with --supernet)."""
    arc_text = common.fixed_arc_text()
    if FLAGS.supernet and arc_text is not None:
        raise common.UsageError("--supernet exports every arc: drop --child_fixed_arc "
                                "and --child_fixed_arc_file")
    if run_arc is not None:
        if FLAGS.supernet:
            raise common.UsageError(f"--output_dir={output_dir} is a fixed-arc run: "
                                    "--supernet needs a search run's shared weights")
        if arc_text is not None and (space.to_string(space.from_string(arc_text))
                                     != space.to_string(run_arc)):
            raise common.UsageError(f"--output_dir={output_dir} trained only the arc "
                                    f"'{space.to_string(run_arc)}'; its checkpoint cannot "
                                    "export another")
        return None
    if FLAGS.supernet:
        return None
    if arc_text is None:
        best_arc = os.path.join(output_dir, run_dir.BEST_ARC)
        if not os.path.isfile(best_arc):
            raise common.UsageError(f"--output_dir={output_dir} is a search without "
                                    f"{run_dir.BEST_ARC} yet: give --child_fixed_arc or "
                                    "--child_fixed_arc_file, or --supernet")
        with open(best_arc, encoding="utf-8") as f:
            arc_text = f.read()
    return space.from_string(arc_text)


def _ptb_run(output_dir, fixed):
    """(space, task builder, space name, default model name, binary) of a PTB run."""
    del fixed  # the PTB config is the same for searches and fixed runs
    config = search_ptb.config_from_flags()

    def build(run_arc, rng):
        data = ptb.load_ptb(FLAGS.data_path)
        vocab_path = os.path.join(output_dir, "vocab.txt")
        if (os.path.isfile(vocab_path)
                and ptb.Vocabulary.load(vocab_path).words != data.vocab.words):
            raise common.UsageError(f"--data_path={FLAGS.data_path} gives another "
                                    f"vocabulary than the run's {vocab_path}")
        return ptb_task.PtbTask(config, data, rng, fixed_arc=run_arc)

    return rnn.RnnSpace(config.num_nodes), build, "ptb", "enas_ptb", search_ptb


def _cifar_run(output_dir, fixed):
    """(space, task builder, space name, default model name, binary) of a CIFAR run."""
    del output_dir  # the data path alone gives the CIFAR data
    config = search_cifar.config_from_flags(fixed=fixed)

    def build(run_arc, rng):
        data = search_cifar.load_data(config.num_valid)
        return cifar_task.CifarTask(config, data, rng, fixed_arc=run_arc)

    return (cifar_task.build_space(config), build, config.space,
            f"enas_cifar10_{config.space}", search_cifar)


def _restore(task, checkpoint):
    """Restores the child's weights (and batch-norm statistics) only."""
    try:
        status = tf.train.Checkpoint(model=task.model).restore(checkpoint).expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        reason = " ".join(str(e).split())[:300]
        raise common.UsageError(f"{checkpoint} does not hold the model of the run's "
                                f"{run_dir.FLAGS} ({reason})") from None


def export_child():
    """Rebuilds the run's task, restores its checkpoint and exports; returns the path."""
    output_dir = FLAGS.output_dir
    name_given = FLAGS["model_name"].present
    checkpoint = _check_run_dir(output_dir)
    run_arc = _load_run_flags(output_dir)
    describe_run = _cifar_run if FLAGS.search_for in ("macro", "micro") else _ptb_run
    space, build_task, space_name, default_name, run_module = describe_run(
        output_dir, fixed=run_arc is not None)
    run_arc = None if run_arc is None else space.from_string(run_arc)
    arc = _requested_arc(output_dir, space, run_arc)
    task = build_task(run_arc, tf.random.Generator.from_seed(FLAGS.seed))
    _restore(task, checkpoint)
    model_name = FLAGS.model_name or default_name
    if FLAGS.supernet and not name_given:
        model_name += "_supernet"  # never a new version of the run's fixed child
    exported = arc if arc is not None else task.fixed_arc
    metadata = {"space": space_name, "flags": common.effective_flags([common, run_module]),
                "arc": None if exported is None else task.space.to_string(exported),
                "checkpoint": checkpoint}
    path = task.export(FLAGS.export_dir or os.path.join(output_dir, "export"), model_name,
                       metadata, arc=arc, supernet=FLAGS.supernet)
    print(f"arc: {metadata['arc'] or 'any (supernet: the arc is an input)'}")
    print(f"export_path: {path}")
    return path


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    common.exit_on_user_error(export_child,
                              user_errors=(ptb.PtbDataError, cifar10.CifarDataError))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
