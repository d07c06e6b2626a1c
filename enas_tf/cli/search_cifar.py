"""bin/search_cifar: search an image classifier (macro) or cell pair (micro), or train one.

CIFAR-10 by default; --dataset picks CIFAR-100, a folder of class folders or a
prepared tensorflow-datasets image set, of any image size and class count.

Search:  bin/search_cifar --flagfile=flags/cifar10_macro_search.cfg --data_path=DIR
Final:   bin/search_cifar --flagfile=flags/cifar10_macro_final.cfg --data_path=DIR \\
             --child_fixed_arc_file=<search output_dir>/best_arc.txt
(``micro`` likewise, with the cifar10_micro_*.cfg files.)
"""

import sys

from absl import app
from absl import flags
from absl import logging

from enas_tf.cli import common
from enas_tf.data import cifar10
from enas_tf.data import images as image_data
from enas_tf.search_space import macro
from enas_tf.search_space import micro
from enas_tf.training import cifar_task
from enas_tf.training import distribute
from enas_tf.training import run_config

FLAGS = flags.FLAGS

# Data ---------------------------------------------------------------------
flags.DEFINE_string("dataset", "cifar10", "Image data set: 'cifar10' or 'cifar100' (the "
                    "official files in --data_path), 'folder' (--data_path holds one "
                    "sub-folder of images per class; see --test_data_path), or "
                    "'tfds:<name>' (a prepared tensorflow-datasets image-classification "
                    "set in --tfds_data_dir, never downloaded).")
flags.DEFINE_enum("data_source", "auto", cifar10.DATA_SOURCES, "How --data_path holds "
                  "CIFAR-10 or CIFAR-100: the official binary or python-pickle batches "
                  "('auto' finds either), or for CIFAR-10 'tfds': a prepared "
                  "tensorflow-datasets copy in --tfds_data_dir (never downloaded).")
flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets directory for "
                    "--data_source=tfds and --dataset=tfds:<name> (default: tfds' own).")
flags.DEFINE_string("test_data_path", None, "--dataset=folder: the test split's class "
                    "folders (default: hold out --test_fraction of each class).")
flags.DEFINE_float("test_fraction", 0.1, "--dataset=folder without --test_data_path: "
                   "the share of each class held out as the test split.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_string("image_size", None, "--dataset=folder: resize every image to "
                    "HEIGHTxWIDTH (e.g. 64x48); without it all images must share one size.")
flags.DEFINE_string("child_ops", None, "Candidate ops of the space, comma-separated, in "
                    "order (an arc's op codes index this list); registered names: the "
                    "official ones and those of --op_module; replaces "
                    "--child_num_branches. Default: the official ops (macro: the first "
                    "--child_num_branches).")
flags.DEFINE_integer("num_valid_images", None, "Last training images held out for the "
                     "controller's reward and the validation accuracy. Default: 5000 "
                     "when searching (45,000 train the shared weights), 0 with a fixed "
                     "arc (train on all 50,000, report only test accuracy), as the "
                     "official code.", lower_bound=0)
flags.DEFINE_enum("data_format", "NHWC", ["NHWC", "NCHW"], "Accepted for the official "
                  "scripts (which pass NCHW, a GPU layout); this CPU build always runs NHWC.")

# The child ----------------------------------------------------------------
flags.DEFINE_integer("child_out_filters", 36, "Channels of the first layers (doubled at "
                     "each reduction of a fixed net, and of every micro net).",
                     lower_bound=1)
flags.DEFINE_integer("child_num_branches", None, "Macro: candidate ops per layer, the "
                     "first N of conv3x3, sep3x3, conv5x5, sep5x5, avg pool, max pool "
                     "(default all 6; the official final net uses 4). Micro: must be 5.",
                     lower_bound=1, upper_bound=len(macro.OPS))
flags.DEFINE_integer("child_num_cells", 5, "Micro: computed nodes per cell (B).",
                     lower_bound=1)
flags.DEFINE_float("child_keep_prob", 0.9, "Keep probability of the dropout before the "
                   "classifier.")
flags.DEFINE_float("child_drop_path_keep_prob", 1.0, "Micro, fixed arc: final keep "
                   "probability of drop-path (1 disables); ignored by the search models "
                   "and by macro, as in the official code.")
flags.DEFINE_boolean("child_use_aux_heads", False, "Micro: train an auxiliary "
                     "classifier after the second reduction cell (loss weight 0.4); "
                     "ignored by macro, as in the official code.")
flags.DEFINE_integer("child_cutout_size", 0, "Cutout square side in pixels (0: none; "
                     "at most the image's smaller side).", lower_bound=0)
flags.DEFINE_boolean("child_lr_cosine", True, "Cosine learning rate with warm restarts "
                     "per epoch (the only schedule here; every official CIFAR script "
                     "uses it).")
flags.DEFINE_float("child_lr_max", 0.05, "Cosine schedule: learning rate at each restart.",
                   lower_bound=0.0)
flags.DEFINE_float("child_lr_min", 0.0005, "Cosine schedule: learning rate at the end "
                   "of each period.", lower_bound=0.0)
flags.DEFINE_integer("child_lr_T_0", 10, "Cosine schedule: epochs of the first period.",
                     lower_bound=1)
flags.DEFINE_integer("child_lr_T_mul", 2, "Cosine schedule: growth factor of each "
                     "next period.", lower_bound=1)

# The controllers ----------------------------------------------------------
flags.DEFINE_boolean("controller_search_whole_channels", True, "Accepted for the "
                     "official scripts: the macro search always picks whole-channel ops.")
flags.DEFINE_float("controller_op_tanh_reduce", 2.5, "Micro: op logits use "
                   "--controller_tanh_constant divided by this.")
flags.DEFINE_float("controller_skip_target", 0.4, "Macro: prior probability of a skip "
                   "connection, the target of the skip KL penalty.")
flags.DEFINE_float("controller_skip_weight", 0.8, "Macro: weight of the skip KL penalty "
                   "in the controller loss.", lower_bound=0.0)

flags.register_validator("child_keep_prob", lambda v: 0.0 < v <= 1.0,
                         message="--child_keep_prob must be in (0, 1]")
flags.register_validator("child_drop_path_keep_prob", lambda v: 0.0 < v <= 1.0,
                         message="--child_drop_path_keep_prob must be in (0, 1]")
flags.register_validator("controller_skip_target", lambda v: 0.0 < v < 1.0,
                         message="--controller_skip_target must be in (0, 1)")
flags.register_validator("controller_op_tanh_reduce", lambda v: v > 0.0,
                         message="--controller_op_tanh_reduce must be > 0")

# Flags the official CIFAR scripts leave unset take the official CIFAR
# program's defaults here (common.py's defaults are PTB's).
_CIFAR_DEFAULTS = {"child_optim_algo": "momentum", "child_grad_bound": 5.0,
                   "controller_lstm_size": 64, "controller_temperature": 0.0,
                   "eval_batch_size": 100}
_SEARCH_VALID_IMAGES = 5000
_DATA_PATHS = {"cifar10": "a directory holding cifar-10-batches-bin or cifar-10-batches-py, "
                          "or use --data_source=tfds",
               "cifar100": "a directory holding cifar-100-binary or cifar-100-python",
               "folder": "a directory with one sub-folder of images per class"}


def _check_flags(fixed):
    """Rejects flag combinations that cannot run; warns about ignored ones."""
    space = FLAGS.search_for
    if space not in ("macro", "micro"):
        raise common.UsageError("bin/search_cifar searches CIFAR-10: --search_for must be "
                                f"'macro' or 'micro'. Received: {space}")
    if FLAGS.child_optim_algo != "momentum":
        raise common.UsageError("the CIFAR child trains with Nesterov momentum: "
                                "--child_optim_algo must be 'momentum'. "
                                f"Received: {FLAGS.child_optim_algo}")
    if not FLAGS.child_lr_cosine:
        raise common.UsageError("only the cosine schedule is implemented for CIFAR: "
                                "drop --nochild_lr_cosine")
    if FLAGS.child_lr_min > FLAGS.child_lr_max:
        raise common.UsageError(f"--child_lr_min={FLAGS.child_lr_min} must not exceed "
                                f"--child_lr_max={FLAGS.child_lr_max}")
    ops = common.op_names("child_ops")
    if ops and FLAGS.child_num_branches not in (None, len(ops)):
        logging.warning("--child_ops gives %d ops: --child_num_branches=%d is ignored.",
                        len(ops), FLAGS.child_num_branches)
    if space == "micro" and not ops and FLAGS.child_num_branches not in (None, len(micro.OPS)):
        raise common.UsageError(f"the micro child has all {len(micro.OPS)} ops: "
                                f"--child_num_branches must be {len(micro.OPS)}. "
                                f"Received: {FLAGS.child_num_branches}")
    if space == "macro" and not fixed and not FLAGS.controller_search_whole_channels:
        raise common.UsageError("only whole-channel macro search is implemented: drop "
                                "--nocontroller_search_whole_channels")
    needs_path = FLAGS.data_source != "tfds" and not FLAGS.dataset.startswith("tfds:")
    if needs_path and not FLAGS.data_path:
        raise common.UsageError(f"--dataset={FLAGS.dataset} needs --data_path: "
                                + _DATA_PATHS.get(FLAGS.dataset, "the data set's directory"))
    if FLAGS.dataset != "folder":
        for name in ("test_data_path", "image_size"):
            if FLAGS[name].value is not None:
                raise common.UsageError(f"--{name} is for --dataset=folder. "
                                        f"Received: --dataset={FLAGS.dataset}")
    if FLAGS.data_format == "NCHW":
        logging.warning("--data_format=NCHW: this CPU build runs NHWC (same results).")
    if space == "macro":
        for name, default in (("child_use_aux_heads", False),
                              ("child_drop_path_keep_prob", 1.0)):
            if FLAGS[name].value != default:
                logging.warning("--%s is ignored by the macro child (as officially).", name)


def _num_valid(fixed):
    num_valid = FLAGS.num_valid_images
    if num_valid is None:
        num_valid = 0 if fixed else _SEARCH_VALID_IMAGES
    if not fixed and num_valid < FLAGS.batch_size:
        raise common.UsageError(
            f"a search rewards arcs on --batch_size={FLAGS.batch_size} held-out images: "
            f"--num_valid_images must be at least that. Received: {num_valid}")
    return num_valid


def _image_size():
    """--image_size as (height, width), or None."""
    if FLAGS.image_size is None:
        return None
    parts = FLAGS.image_size.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise common.UsageError("--image_size must be HEIGHTxWIDTH in pixels, e.g. 64x48. "
                                f"Received: {FLAGS.image_size!r}")
    return tuple(int(p) for p in parts)


def data_config():
    """The flags' data set as a DataConfig."""
    tfds_dir = FLAGS.tfds_data_dir
    return run_config.DataConfig(
        path=tfds_dir if FLAGS.dataset.startswith("tfds:") else FLAGS.data_path,
        source=FLAGS.data_source, tfds_data_dir=tfds_dir, dataset=FLAGS.dataset,
        test_path=FLAGS.test_data_path, test_fraction=FLAGS.test_fraction,
        image_size=_image_size())


def config_from_flags(fixed):
    _check_flags(fixed)
    space = FLAGS.search_for
    ops = common.op_names("child_ops")
    return cifar_task.CifarConfig(
        space=space,
        num_layers=FLAGS.child_num_layers,
        out_filters=FLAGS.child_out_filters,
        num_branches=len(ops) if ops else FLAGS.child_num_branches or (
            len(macro.OPS) if space == "macro" else len(micro.OPS)),
        ops=ops,
        num_cells=FLAGS.child_num_cells,
        keep_prob=FLAGS.child_keep_prob,
        drop_path_keep_prob=FLAGS.child_drop_path_keep_prob,
        use_aux_heads=space == "micro" and FLAGS.child_use_aux_heads,
        cutout_size=FLAGS.child_cutout_size,
        batch_size=FLAGS.batch_size,
        eval_batch_size=FLAGS.eval_batch_size,
        num_valid=_num_valid(fixed),
        num_epochs=FLAGS.num_epochs,
        lr_max=FLAGS.child_lr_max,
        lr_min=FLAGS.child_lr_min,
        lr_t_0=FLAGS.child_lr_T_0,
        lr_t_mul=FLAGS.child_lr_T_mul,
        l2_reg=FLAGS.child_l2_reg,
        grad_bound=FLAGS.child_grad_bound,
        steps_per_epoch=FLAGS.child_steps_per_epoch,
        data_seed=FLAGS.seed,
        precision=FLAGS.child_precision)


def load_data(run):
    data = run_config.load_data(run)
    count = len(data.train_labels)
    if run.task.cutout_size > min(data.image_shape[:2]):
        raise common.UsageError(f"--child_cutout_size={run.task.cutout_size} exceeds the "
                                f"{data.image_shape[0]}x{data.image_shape[1]} images")
    if run.task.num_valid >= count:
        raise common.UsageError(f"--num_valid_images={run.task.num_valid} leaves no training "
                                f"images of the {count} in the data")
    return data


def run_config_from_flags(arc_text, output_dir, chief=True):
    """The run the flags describe, with ``arc_text`` its fixed arc (None: a search)."""
    config = config_from_flags(fixed=arc_text is not None)
    return common.run_config(
        config.space, config, arc_text,
        data_config(),
        [common, sys.modules[__name__]], output_dir, chief,
        op_tanh_reduce=FLAGS.controller_op_tanh_reduce,
        skip_target=FLAGS.controller_skip_target, skip_weight=FLAGS.controller_skip_weight)


def quick_search(space):
    """The README's quick search of ``space`` and the arc file it writes."""
    space = space if space in ("macro", "micro") else "micro"
    return (f"bin/search_cifar --flagfile=flags/cifar10_{space}_search_quick.cfg",
            f"runs/cifar10_{space}_search_quick/best_arc.txt")


def search_cifar():
    """Parses flags into a run config, then runs the search or the fixed training."""
    common.warn_ignored_flags()
    strategy, output_dir = common.build_strategy()
    arc_text = common.fixed_arc_text()
    common.require_arc_for_fixed_run(arc_text, *quick_search(FLAGS.search_for))
    run = run_config_from_flags(arc_text, output_dir, distribute.is_chief(strategy))
    common.check_mode(run.fixed_arc)
    data = load_data(run)
    return common.run_search(run, data, strategy, output_dir, [common, sys.modules[__name__]])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    common.exit_on_user_error(search_cifar, user_errors=(image_data.ImageDataError,))


def run():
    for name, value in _CIFAR_DEFAULTS.items():
        FLAGS.set_default(name, value)
    app.run(main)


if __name__ == "__main__":
    run()
