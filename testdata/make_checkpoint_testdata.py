"""Writes checkpoints of tiny PTB, macro and micro runs, searches and
fixed-arc trainings, and what their restored models score, into
testdata/checkpoints/.

The committed files were written by the code of commit cc4533f (before the
task contract was rewritten), so ``tests/checkpoint_compat_test.py`` shows
that checkpoints written by earlier code still restore, variable for
variable, and score the same. Only public, stable API is used, so the same
``build`` rebuilds the runs under today's code.

Usage: python testdata/make_checkpoint_testdata.py [--out_dir DIR]
"""

import argparse
import json
import os
import shutil

import keras
import tensorflow as tf

from enas_tf.controller import macro_controller
from enas_tf.controller import micro_controller
from enas_tf.controller import reinforce
from enas_tf.controller import rnn_controller
from enas_tf.data import cifar10
from enas_tf.data import ptb
from enas_tf.training import cifar_task
from enas_tf.training import ptb_task
from enas_tf.training import run_dir
from enas_tf.training import search

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ("ptb", "macro", "micro")
RUNS = [f"{family}_{mode}" for family in FAMILIES for mode in ("search", "fixed")]
ARCS = {"ptb": "1 0 0 1 3 0 2", "macro": "0 1 1 2 0 1",
        "micro": "0 4 1 2 1 0 0 3 1 1 1 0 2 4 0 2"}


def build(run, output_dir):
    """The task and the loop of ``run`` (e.g. "micro_fixed") in ``output_dir``."""
    family, mode = run.split("_")
    fixed_arc = [int(v) for v in ARCS[family].split()] if mode == "fixed" else None
    keras.utils.set_random_seed(0)
    rng = tf.random.Generator.from_seed(0)
    if family == "ptb":
        config = ptb_task.PtbConfig(num_nodes=4, hidden_size=8, batch_size=4, bptt=5,
                                    eval_batch_size=20, lr=1.0, steps_per_epoch=4)
        task = ptb_task.PtbTask(config, ptb.load_ptb(os.path.join(HERE, "ptb")), rng,
                                fixed_arc=fixed_arc)
    else:
        shape = (dict(num_layers=3) if family == "macro"
                 else dict(num_layers=1, num_cells=2))
        config = cifar_task.CifarConfig(space=family, out_filters=4, batch_size=8,
                                        eval_batch_size=50, num_valid=100, steps_per_epoch=4,
                                        **shape)
        data = cifar10.load_cifar10(os.path.join(HERE, "cifar10"))
        task = cifar_task.CifarTask(config, data, rng, fixed_arc=fixed_arc)
    controller = trainer = None
    if mode == "search":
        controller = {"ptb": lambda: rnn_controller.RnnController(4, lstm_size=8),
                      "macro": lambda: macro_controller.MacroController(3, lstm_size=8),
                      "micro": lambda: micro_controller.MicroController(2, lstm_size=8)}[family]()
        trainer = reinforce.Reinforce(controller, keras.optimizers.Adam(1e-3))
    loop_config = search.LoopConfig(num_epochs=1, controller_train_steps=1,
                                    controller_num_aggregate=2, derive_num_samples=2,
                                    max_checkpoints=1, verbose=False)
    loop = search.SearchLoop(task, loop_config, output_dir, rng, controller=controller,
                             reinforce=trainer)
    return task, loop


def scores(task, run):
    """What the restored weights give the family's arc: PTB its valid loss,
    CIFAR the mean cross-entropy on the first reward batch."""
    family, mode = run.split("_")
    arc = None if mode == "fixed" else task.space.from_string(ARCS[family])
    if family == "ptb":
        return task.evaluate(arc, "valid")["valid_loss"]
    images, labels = task.reward_batches[0]
    logits = task.model(images, None if arc is None else tf.constant(arc), training=False)
    return float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=tf.cast(logits, tf.float32))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", default=os.path.join(HERE, "checkpoints"))
    args = parser.parse_args()
    expected = {}
    for run in RUNS:
        output_dir = os.path.join(args.out_dir, run)
        run_dir.prepare(output_dir, reset=True)
        task, loop = build(run, output_dir)
        loop.run()
        expected[run] = scores(task, run)
        for name in os.listdir(output_dir):  # the test needs the checkpoints only
            if name != run_dir.CHECKPOINTS:
                path = os.path.join(output_dir, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    with open(os.path.join(args.out_dir, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
