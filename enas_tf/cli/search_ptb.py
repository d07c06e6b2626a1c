"""bin/search_ptb: search a recurrent cell on PTB, or train a fixed one.

Search:  bin/search_ptb --flagfile=flags/ptb_search.cfg --data_path=DIR
Final:   bin/search_ptb --flagfile=flags/ptb_final.cfg --data_path=DIR \\
             --child_fixed_arc_file=<search output_dir>/best_arc.txt
"""

import sys

from absl import app
from absl import flags

from enas_tf.cli import common
from enas_tf.data import ptb
from enas_tf.models import ptb_child
from enas_tf.training import distribute
from enas_tf.training import ptb_task
from enas_tf.training import run_config

FLAGS = flags.FLAGS
# The README's quick search and the arc it writes, named when a fixed run has no arc.
QUICK_SEARCH = ("bin/search_ptb --flagfile=flags/ptb_search_quick.cfg",
                "runs/ptb_search_quick/best_arc.txt")

flags.DEFINE_string("train_file", "ptb.train.txt", "Training text in --data_path: one "
                    "sentence per line, words separated by spaces (any word-level corpus, "
                    "e.g. WikiText-2's wiki.train.tokens). The vocabulary comes from it.")
flags.DEFINE_string("valid_file", "ptb.valid.txt", "Validation text in --data_path.")
flags.DEFINE_string("test_file", "ptb.test.txt", "Test text in --data_path.")
flags.DEFINE_string("child_activations", None, "Activations of the cell's nodes, "
                    "comma-separated, in order (an arc's activation codes index this "
                    "list): the official tanh, ReLU, identity, sigmoid and those registered "
                    "by --op_module. Default: the official four.")
flags.DEFINE_integer("child_rhn_depth", 12, "Nodes of the recurrent cell (N).",
                     lower_bound=2)
flags.DEFINE_integer("child_lstm_hidden_size", 1000, "Hidden (and embedding) size.",
                     lower_bound=1)
flags.DEFINE_integer("child_bptt_steps", 35, "Truncated BPTT length.", lower_bound=1)
flags.DEFINE_float("child_lstm_e_keep", 1.0, "Keep probability of whole words "
                   "(embedding dropout).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("child_lstm_x_keep", 1.0, "Keep probability of the cell input "
                   "(variational).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("child_lstm_h_keep", 1.0, "Keep probability of the recurrent "
                   "state (variational).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("child_lstm_o_keep", 1.0, "Keep probability of the cell output "
                   "(variational).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("child_init_range", 0.04, "Weights start uniform in +-this.",
                   lower_bound=0.0)
flags.DEFINE_integer("child_lr_dec_start", 15, "First epoch of the lr staircase.",
                     lower_bound=0)
flags.DEFINE_integer("child_lr_dec_every", 1, "Epochs per lr decay.", lower_bound=1)
flags.DEFINE_float("child_lr_dec_rate", 0.96, "Factor of each lr decay.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("child_lr_dec_min", 0.0, "Floor of the decayed lr.", lower_bound=0.0)
flags.DEFINE_float("child_rnn_slowness_reg", 0.0, "Weight of the penalty on changes "
                   "of the cell output between steps.", lower_bound=0.0)
flags.DEFINE_float("controller_reward_constant", 80.0, "Reward = c / valid perplexity "
                   "(the paper leaves c unstated; the official code uses 80).",
                   lower_bound=0.0)


def config_from_flags():
    if FLAGS.search_for not in (None, "enas"):
        raise common.UsageError(f"bin/search_ptb searches the PTB cell: --search_for "
                                f"must be 'enas'. Received: {FLAGS.search_for}")
    if FLAGS.child_num_layers != 1:
        raise common.UsageError("the ENAS PTB cell has one recurrent layer: "
                                f"--child_num_layers must be 1. Received: {FLAGS.child_num_layers}")
    if FLAGS.child_optim_algo != "sgd":
        raise common.UsageError("the PTB child trains with plain SGD: --child_optim_algo "
                                f"must be 'sgd'. Received: {FLAGS.child_optim_algo}")
    if not FLAGS.data_path:
        raise common.UsageError(f"--data_path must name a directory holding {FLAGS.train_file}, "
                                f"{FLAGS.valid_file} and {FLAGS.test_file}")
    return ptb_task.PtbConfig(
        num_nodes=FLAGS.child_rhn_depth,
        hidden_size=FLAGS.child_lstm_hidden_size,
        batch_size=FLAGS.batch_size,
        bptt=FLAGS.child_bptt_steps,
        eval_batch_size=FLAGS.eval_batch_size,
        keep_probs=ptb_child.KeepProbs(
            embedding=FLAGS.child_lstm_e_keep, inputs=FLAGS.child_lstm_x_keep,
            state=FLAGS.child_lstm_h_keep, outputs=FLAGS.child_lstm_o_keep),
        init_range=FLAGS.child_init_range,
        lr=FLAGS.child_lr,
        lr_dec_start=FLAGS.child_lr_dec_start,
        lr_dec_every=FLAGS.child_lr_dec_every,
        lr_dec_rate=FLAGS.child_lr_dec_rate,
        lr_dec_min=FLAGS.child_lr_dec_min,
        grad_bound=FLAGS.child_grad_bound,
        l2_reg=FLAGS.child_l2_reg,
        slowness_reg=FLAGS.child_rnn_slowness_reg,
        reward_constant=FLAGS.controller_reward_constant,
        steps_per_epoch=FLAGS.child_steps_per_epoch,
        precision=FLAGS.child_precision,
        activations=common.op_names("child_activations"))


def run_config_from_flags(arc_text, output_dir, chief=True):
    """The run the flags describe, with ``arc_text`` its fixed arc (None: a search)."""
    config = config_from_flags()
    return common.run_config(
        "ptb", config, arc_text,
        run_config.DataConfig(path=FLAGS.data_path, train_file=FLAGS.train_file,
                              valid_file=FLAGS.valid_file, test_file=FLAGS.test_file),
        [common, sys.modules[__name__]],
        output_dir, chief)


def search_ptb():
    """Parses flags into a run config, then runs the search or the fixed training."""
    common.warn_ignored_flags()
    strategy, output_dir = common.build_strategy()
    arc_text = common.fixed_arc_text()
    common.require_arc_for_fixed_run(arc_text, *QUICK_SEARCH)
    run = run_config_from_flags(arc_text, output_dir, distribute.is_chief(strategy))
    common.check_mode(run.fixed_arc)
    data = run_config.load_data(run)
    return common.run_search(run, data, strategy, output_dir, [common, sys.modules[__name__]])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    common.exit_on_user_error(search_ptb, user_errors=(ptb.PtbDataError,))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
