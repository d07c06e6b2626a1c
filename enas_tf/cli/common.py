"""Flags shared by the search binaries, and the code that turns them into a run.

Flag names are the official scripts' own, so their command lines work
unchanged. Flags those scripts pass but the official programs never defined
(``--nochild_lstm_e_skip``, ``--controller_selection_threshold``,
``--child_num_cell_layers``) are accepted and ignored with a warning.
"""

import os
import sys

import tensorflow as tf
from absl import flags
from absl import logging

from enas_tf.search_space import arcs
from enas_tf.search_space import ops
from enas_tf.training import distribute
from enas_tf.training import errors
from enas_tf.training import precision
from enas_tf.training import run_config as run_config_lib
from enas_tf.training import run_dir
from enas_tf.training import runner
from enas_tf.training import search

FLAGS = flags.FLAGS

# Where and how long -------------------------------------------------------
flags.DEFINE_string("output_dir", "outputs", "Directory of the run's checkpoints, "
                    "TensorBoard events, arcs.jsonl, best_arc.txt and summary.json. "
                    "An existing run there resumes unless --reset_output_dir.")
flags.DEFINE_boolean("reset_output_dir", False, "Delete --output_dir before starting.")
flags.DEFINE_string("data_path", None, "Directory holding the data set.")
flags.DEFINE_enum("search_for", None, ["enas", "macro", "micro"],
                  "Search space: 'enas' (PTB cell), 'macro' or 'micro' (CIFAR-10).")
flags.DEFINE_integer("batch_size", 64, "Training minibatch size.", lower_bound=1)
flags.DEFINE_integer("eval_batch_size", 10, "Batch size of full-set evaluation.",
                     lower_bound=1)
flags.DEFINE_integer("num_epochs", 150, "Epochs (child phase + controller phase each).",
                     lower_bound=1)
flags.DEFINE_integer("child_steps_per_epoch", 0, "Shared-weight steps per epoch; "
                     "0 = one full pass over the training data.", lower_bound=0)
flags.DEFINE_integer("log_every", 50, "Write child scalars every this many steps.",
                     lower_bound=1)
flags.DEFINE_integer("eval_every_epochs", 1, "Full validation every this many epochs.",
                     lower_bound=1)
flags.DEFINE_integer("max_checkpoints", 3, "Checkpoints kept in --output_dir.",
                     lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of weight init, dropout and arc sampling.")
flags.DEFINE_integer("max_consecutive_bad_steps", 10, "After this many non-finite "
                     "child steps in a row, roll back to the last checkpoint and lower "
                     "the learning rate (0: never).", lower_bound=0)
flags.DEFINE_float("rollback_lr_factor", 0.5, "Learning-rate factor of each rollback.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_boolean("verbose", True, "Show a progress bar for the child phase.")

flags.DEFINE_multi_string("op_module", [], "Python module (dotted name, importable from "
                          "the working directory or PYTHONPATH) that registers candidate "
                          "ops with enas_tf.search_space.ops.register_op; repeatable. "
                          "Recorded in config.json, so resumes and exports import it too.")

# The child (shared by all spaces) ------------------------------------------
flags.DEFINE_string("child_fixed_arc", None, "Train this architecture from scratch "
                    "(official space-separated format) instead of searching.")
flags.DEFINE_string("child_fixed_arc_file", None, "Like --child_fixed_arc, read "
                    "from a file such as a search's best_arc.txt.")
flags.DEFINE_integer("child_num_layers", 1, "PTB: recurrent layers (1 only); "
                     "CIFAR: layers of the network.", lower_bound=1)
flags.DEFINE_float("child_lr", 20.0, "Child learning rate (PTB; CIFAR uses "
                   "--child_lr_max with the cosine schedule).", lower_bound=0.0)
flags.DEFINE_float("child_l2_reg", 1e-7, "l2 weight of the child.", lower_bound=0.0)
flags.DEFINE_float("child_grad_bound", 0.25, "Global-norm gradient clip of the child.",
                   lower_bound=0.0)
flags.DEFINE_enum("child_optim_algo", "sgd", ["sgd", "momentum"],
                  "Child optimizer: plain SGD (PTB) or Nesterov momentum (CIFAR).")
flags.DEFINE_enum("child_precision", "float32", precision.PRECISIONS,
                  "Child arithmetic: 'float32', or 'mixed_bfloat16' (Keras mixed "
                  "precision: float32 variables, bfloat16 matmuls and convolutions, "
                  "softmax, losses, rewards and batch-norm statistics in float32; "
                  "faster on CPUs with AVX-512 BF16 / AMX). Exports answer in float32.")

# The search ------------------------------------------------------------------
flags.DEFINE_enum("search_strategy", "enas", search.SEARCH_STRATEGIES, "How a search "
                  "samples arcs. 'enas': the controller, trained by REINFORCE; it scores "
                  "--controller_train_steps x --controller_num_aggregate arcs (one "
                  "validation batch each) per controller epoch, then derives "
                  "--derive_num_samples arcs. 'random': random search with weight sharing: "
                  "the shared weights train on uniformly sampled arcs (every position "
                  "uniform over its choices), no controller and no controller phase; the "
                  "same validation budget goes to the derivation, which scores "
                  "--derive_num_samples + ceil(C x --controller_train_steps x "
                  "--controller_num_aggregate / --derive_num_batches) uniform arcs, C the "
                  "epochs with a controller phase. Either way each derived arc is scored "
                  "on the same --derive_num_batches validation batches and the best kept. "
                  "Fixed-arc runs ignore it.")

# The controller -------------------------------------------------------------
flags.DEFINE_boolean("controller_training", True, "Train the controller (search). "
                     "--nocontroller_training trains the architecture of "
                     "--child_fixed_arc or --child_fixed_arc_file from scratch; without "
                     "one it is an error (a search without a controller is "
                     "--search_strategy=random).")
flags.DEFINE_integer("controller_train_every", 1, "Controller phase every N epochs.",
                     lower_bound=1)
flags.DEFINE_integer("controller_train_steps", 100, "Controller updates per phase.",
                     lower_bound=1)
flags.DEFINE_integer("controller_num_aggregate", 10, "Sampled arcs averaged per "
                     "controller update.", lower_bound=1)
flags.DEFINE_integer("controller_batch_arcs", 1, "Arcs sampled and rewarded per "
                     "compiled call in the controller phase (arc i on its own "
                     "validation batch, as one call per arc); must divide "
                     "--controller_num_aggregate.", lower_bound=1)
flags.DEFINE_float("controller_lr", 0.00035, "Controller Adam learning rate.",
                   lower_bound=0.0)
flags.DEFINE_float("controller_adam_epsilon", 1e-3, "Epsilon of the controller's Adam "
                   "(official 1e-3: below it Adam turns into SGD at lr / epsilon, and "
                   "small rewards then leave the policy where it started; 1e-8 does not).",
                   lower_bound=1e-12)
flags.DEFINE_boolean("controller_shared_batch", False, "Score the arcs of one controller "
                     "update on one validation batch and centre each reward on their mean "
                     "(removes the batch's effect from the policy gradient); needs "
                     "--controller_num_aggregate >= 2. Off: one batch per arc, EMA baseline "
                     "(official).")
flags.DEFINE_float("controller_tanh_constant", 2.5, "Logits become c * tanh(logits).",
                   lower_bound=0.0)
flags.DEFINE_float("controller_temperature", 5.0, "Logits are divided by this first "
                   "(0 disables).", lower_bound=0.0)
flags.DEFINE_float("controller_entropy_weight", 1e-4, "Weight of the sample entropy "
                   "added to the reward.", lower_bound=0.0)
flags.DEFINE_float("controller_bl_dec", 0.99, "Decay of the reward's moving-average "
                   "baseline.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("controller_lstm_size", 100, "Controller LSTM size "
                     "(official: 100 PTB, 64 CIFAR).", lower_bound=1)
flags.DEFINE_boolean("controller_sync_replicas", True, "Accepted for the official "
                     "scripts; gradients of --controller_num_aggregate arcs are always "
                     "averaged per update.")
flags.DEFINE_integer("derive_num_samples", 100, "Arcs sampled at the end of a search "
                     "to pick the best (the paper's 'several'); a random search adds "
                     "the controller's budget (see --search_strategy).", lower_bound=1)
flags.DEFINE_integer("derive_num_batches", 1, "Validation batches each derived arc is "
                     "scored on (the paper: one minibatch).", lower_bound=1)

# Scaling out --------------------------------------------------------------
flags.DEFINE_enum("distribution_strategy", "none", distribute.STRATEGIES,
                  "Data-parallel child training: 'none' (one device), 'mirrored' "
                  "(every local GPU, or --num_cpu_devices logical CPU devices), "
                  "'multi_worker_mirrored' (the workers named in TF_CONFIG, each run "
                  "with the same flags). Each replica trains on its slice of "
                  "--batch_size (the global batch); only the chief writes --output_dir.")
flags.DEFINE_integer("num_cpu_devices", 1, "With --distribution_strategy=mirrored and "
                     "no GPU: split the CPU into this many logical devices, one replica "
                     "each.", lower_bound=1)

# Export -------------------------------------------------------------------
flags.DEFINE_string("export_dir", None, "Fixed-arc runs export a SavedModel to "
                    "<export_dir>/<model_name>/<version>/ (default <output_dir>/export).")
flags.DEFINE_string("model_name", None, "Model name in the TF Serving layout.")

# Accepted for the official scripts, never defined by the official programs.
flags.DEFINE_boolean("child_lstm_e_skip", False, "Ignored: passed by the official PTB "
                     "scripts but never defined by the official program.")
flags.DEFINE_integer("controller_selection_threshold", None, "Ignored: passed by "
                     "ptb_final.sh but never defined by the official program.")
flags.DEFINE_integer("child_num_cell_layers", None, "Ignored: passed by the official "
                     "macro scripts but never defined by the official program.")

_IGNORED_FLAGS = ("child_lstm_e_skip", "controller_selection_threshold",
                  "child_num_cell_layers")


class UsageError(ValueError):
    """A flag combination that cannot run; the message is one line."""


# The flags behind the parameters that library errors name (errors.NamesParameters).
_FLAG_NAMES = {"strategy": "--distribution_strategy", "num_cpu_devices": "--num_cpu_devices",
               "batch_size": "--batch_size", "output_dir": "--output_dir",
               "reset_output_dir": "--reset_output_dir",
               "controller_batch_arcs": "--controller_batch_arcs",
               "controller_num_aggregate": "--controller_num_aggregate",
               "controller_shared_batch": "--controller_shared_batch",
               "search_strategy": "--search_strategy",
               "arc": "--child_fixed_arc (or --child_fixed_arc_file)",
               "supernet": "--supernet", "data_path": "--data_path"}


def _worded(error):
    """A library error's message, naming this binary's flags."""
    if isinstance(error, errors.NamesParameters):
        return error.worded(_FLAG_NAMES)
    return str(error)


def warn_ignored_flags():
    for name in _IGNORED_FLAGS:
        if FLAGS[name].present:
            logging.warning("--%s is accepted for the official scripts and ignored.", name)


def fixed_arc_text():
    """The fixed arc from --child_fixed_arc or --child_fixed_arc_file, or None."""
    if FLAGS.child_fixed_arc and FLAGS.child_fixed_arc_file:
        raise UsageError("give --child_fixed_arc or --child_fixed_arc_file, not both")
    if FLAGS.child_fixed_arc_file:
        try:
            with open(FLAGS.child_fixed_arc_file, encoding="utf-8") as f:
                return f.read()
        except OSError as e:
            raise UsageError(f"--child_fixed_arc_file={FLAGS.child_fixed_arc_file}: "
                             f"cannot read it ({e.strerror})") from None
    return FLAGS.child_fixed_arc


def require_arc_for_fixed_run(arc_text, quick_search, quick_arc_file):
    """A fixed-arc run (--nocontroller_training) without an arc is an error.

    Checked before anything else reads the flags: it names the binary's
    quick search (``quick_search``, a command line) and the arc file it writes.
    """
    if arc_text is None and not FLAGS.controller_training:
        raise UsageError(
            "--nocontroller_training trains a fixed architecture, and none was given: pass "
            "--child_fixed_arc=\"...\" or --child_fixed_arc_file=FILE, such as the "
            f"{quick_arc_file} that `{quick_search}` writes")


def check_mode(fixed_arc):
    """A fixed arc (already parsed and checked) trains without a controller."""
    if fixed_arc is not None and FLAGS.controller_training:
        raise UsageError("a fixed arc trains without a controller: add "
                         "--nocontroller_training, or drop --child_fixed_arc to search")


def write_flags_file(output_dir, modules):
    """Writes the effective flags of ``modules`` as a reusable --flagfile."""
    lines = ["# Effective flags of this run; rerun with --flagfile=<this file>."]
    by_module = FLAGS.flags_by_module_dict()
    for module in modules:
        for flag in sorted(by_module.get(module.__name__, []), key=lambda f: f.name):
            if flag.value is not None:
                lines.append(flag.serialize())
    run_dir.write_text(os.path.join(output_dir, run_dir.FLAGS), "\n".join(lines) + "\n")


def effective_flags(modules):
    by_module = FLAGS.flags_by_module_dict()
    return {flag.name: flag.value for module in modules
            for flag in by_module.get(module.__name__, [])}


def op_names(flag_name):
    """The op names of a comma-separated op flag, or None (the official ops)."""
    value = FLAGS[flag_name].value
    if not value:
        return None
    return tuple(name.strip() for name in value.split(","))


def run_config(family, task_config, arc_text, data, modules, output_dir, chief=True,
               **controller_settings):
    """The flags' run as a RunConfig; ``controller_settings`` are the family's own
    controller flags. A worker other than the ``chief`` exports below its own
    ``output_dir`` (a temporary one), never to --export_dir.
    """
    run_config_lib.import_op_modules(FLAGS.op_module)
    space = run_config_lib.build_space(family, task_config)
    fixed_arc = None if arc_text is None else space.to_string(space.from_string(arc_text))
    try:
        loop = search.LoopConfig(
            num_epochs=FLAGS.num_epochs,
            controller_training=FLAGS.controller_training,
            controller_train_every=FLAGS.controller_train_every,
            controller_train_steps=FLAGS.controller_train_steps,
            controller_num_aggregate=FLAGS.controller_num_aggregate,
            controller_batch_arcs=FLAGS.controller_batch_arcs,
            eval_every_epochs=FLAGS.eval_every_epochs,
            derive_num_samples=FLAGS.derive_num_samples,
            derive_num_batches=FLAGS.derive_num_batches,
            log_every=FLAGS.log_every,
            max_checkpoints=FLAGS.max_checkpoints,
            max_consecutive_bad_steps=FLAGS.max_consecutive_bad_steps,
            rollback_lr_factor=FLAGS.rollback_lr_factor,
            export_dir=(chief and FLAGS.export_dir) or os.path.join(output_dir, "export"),
            model_name=FLAGS.model_name or run_config_lib.default_model_name(
                family, data.dataset),
            verbose=FLAGS.verbose,
            search_strategy=FLAGS.search_strategy)
    except ValueError as e:
        raise UsageError(_worded(e)) from None
    controller = run_config_lib.ControllerConfig(
        lstm_size=FLAGS.controller_lstm_size, tanh_constant=FLAGS.controller_tanh_constant,
        temperature=FLAGS.controller_temperature, lr=FLAGS.controller_lr,
        entropy_weight=FLAGS.controller_entropy_weight,
        baseline_decay=FLAGS.controller_bl_dec,
        adam_epsilon=FLAGS.controller_adam_epsilon,
        shared_batch=FLAGS.controller_shared_batch, **controller_settings)
    return run_config_lib.RunConfig(
        family=family, task=task_config, loop=loop, controller=controller, data=data,
        seed=FLAGS.seed, strategy=FLAGS.distribution_strategy,
        num_cpu_devices=FLAGS.num_cpu_devices, fixed_arc=fixed_arc, output_dir=output_dir,
        flags=effective_flags(modules), op_modules=tuple(FLAGS.op_module))


def run_search(run, data, strategy, output_dir, modules):
    """Both binaries' shared end: the run (``runner.run``), then the printed results."""
    summary = runner.run(run, data, reset_output_dir=FLAGS.reset_output_dir,
                         strategy=strategy, output_dir=output_dir,
                         before_run=lambda directory: write_flags_file(directory, modules))
    metric = "ppl" if run.family == "ptb" else "acc"
    valid, test = f"valid_{metric}", f"test_{metric}"
    logging.info("Done: best arc %s; %s %s; %s %s", summary.get("best_arc"),
                 valid, summary.get(valid), test, summary.get(test))
    print_results(summary, ("best_reward", valid, test, "num_params", "export_path"))
    return summary


def print_results(summary, keys):
    """Prints a finished run's best arc and the given summary values, one per line."""
    print(f"best_arc: {summary.get('best_arc')}")
    for key in keys:
        if summary.get(key) is not None:
            print(f"{key}: {summary[key]}")


def build_strategy():
    """The flags' tf.distribute strategy and this process's output directory;
    call it before TensorFlow runs anything (see ``runner.build_strategy``)."""
    return runner.build_strategy(FLAGS.distribution_strategy, FLAGS.num_cpu_devices,
                                 FLAGS.output_dir)


def exit_on_user_error(fn, user_errors=()):
    """Runs ``fn``; bad input ends the process with its one-line message
    (library errors worded with the flags behind their parameters)."""
    try:
        return fn()
    except (UsageError, arcs.ArcError, run_dir.OutputDirBusyError,
            search.CheckpointMismatchError, distribute.DistributionError,
            run_config_lib.RunConfigError, ops.OpError) + tuple(user_errors) as e:
        # Teardown warnings (e.g. of a refused checkpoint) must not follow the error.
        tf.get_logger().setLevel("ERROR")
        print(f"error: {_worded(e)}", file=sys.stderr)
        sys.exit(2)
