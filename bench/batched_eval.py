"""Arcs scored per second in the controller phase: K arcs per call vs one per call.

Scoring an arc is the controller phase's unit of work: sample it, reward
it on its validation batch, accumulate its policy gradient, fetch the
results. For each space and each K the search loop's own step scores K
arcs in one compiled call (``--controller_batch_arcs=K``) and, in the same
run, K arcs one call each (the default); both start from the same
controller and batches. Small sizes run on the bundled samples by default;
``--paper_size`` uses the paper's (give ``--data_path`` for the real data; the default is testdata/).

    python bench/batched_eval.py --json_out=batched_eval.json
    python bench/batched_eval.py --spaces=ptb --paper_size --data_path=../shared/data/ptb
"""

import os
import tempfile

from absl import app
from absl import flags

import harness
import setups
from enas_tf.data import cifar10
from enas_tf.data import ptb
from enas_tf.training import cifar_task
from enas_tf.training import ptb_task
from enas_tf.training import search

flags.DEFINE_list("spaces", ["ptb", "macro", "micro"], "Spaces to measure.")
flags.DEFINE_list("ks", ["1", "10", "20"], "Arcs per call.")
flags.DEFINE_boolean("paper_size", False, "The paper's sizes (PTB: 12 nodes, hidden "
                     "1000, batch 64, BPTT 35; CIFAR: setups.CIFAR_PAPER) instead of small ones.")
flags.DEFINE_integer("runs", 3, "Timed calls of each kind (after one warm-up).")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_PTB = dict(hidden_size=64, num_nodes=8, batch_size=16, bptt=20)  # ptb_search_quick
PAPER_PTB = dict(hidden_size=1000, num_nodes=12, batch_size=64, bptt=35)
SMALL_CIFAR = {"macro": dict(num_layers=4, out_filters=12, batch_size=32),
               "micro": dict(num_layers=2, out_filters=8, batch_size=32)}


def build(space):
    """(task, controller, reinforce, rng, size) for one space at the chosen size."""
    rng = setups.seeded_rng()
    if space == "ptb":
        size = PAPER_PTB if FLAGS.paper_size else SMALL_PTB
        data = ptb.load_ptb(FLAGS.data_path or os.path.join(ROOT, "testdata", "ptb"))
        task = ptb_task.PtbTask(setups.ptb_config(**size), data, rng)
        return (task, *setups.ptb_controller(size["num_nodes"]), rng, size)
    size = (setups.CIFAR_PAPER if FLAGS.paper_size else SMALL_CIFAR)[space]
    data = cifar10.load_cifar10(FLAGS.data_path or os.path.join(ROOT, "testdata", "cifar10"))
    config = setups.cifar_config(space, num_images=len(data.train_labels), **size)
    task = cifar_task.CifarTask(config, data, rng)
    return (task, *setups.cifar_controller(config), rng, size)


def measure(space, ks, scratch):
    task, controller, reinforce, rng, size = build(space)
    task.begin_epoch(0)

    def loop(k):
        config = search.LoopConfig(controller_num_aggregate=k, controller_batch_arcs=k,
                                   verbose=False)
        return search.SearchLoop(task, config, os.path.join(scratch, f"{space}_{k}"), rng,
                                 controller=controller, reinforce=reinforce)

    one = loop(1)
    rows = []
    for k in ks:
        sequential = harness.timed(lambda: [one._score_arcs() for _ in range(k)],
                                   FLAGS.runs, warmup=1)
        row = {"space": space, "k": k, "sequential_arcs_per_second":
               k / harness.describe(sequential)["median"],
               "sequential_seconds": harness.describe(sequential)}
        if k > 1:
            batched_loop = loop(k)
            batched = harness.timed(batched_loop._score_arcs, FLAGS.runs, warmup=1)
            row.update(batched_arcs_per_second=k / harness.describe(batched)["median"],
                       batched_seconds=harness.describe(batched),
                       traces=batched_loop._traces()["controller_score_batch"])
            row["speedup"] = row["batched_arcs_per_second"] / row["sequential_arcs_per_second"]
        rows.append(row)
        print(f"{space} K={k}: {row}", flush=True)
    return {"size": size, "rows": rows}


def main(argv):
    del argv
    ks = [int(k) for k in FLAGS.ks]
    results = {"paper_size": FLAGS.paper_size, "spaces": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for space in FLAGS.spaces:
            results["spaces"][space] = measure(space, ks, scratch)
    harness.print_table(
        [("space", 8, ""), ("K", 4, "d"), ("sequential arcs/s", 19, ".1f"),
         ("batched arcs/s", 16, ".1f"), ("speedup", 9, ".2f")],
        [(r["space"], r["k"], r["sequential_arcs_per_second"],
          r.get("batched_arcs_per_second"), r.get("speedup"))
         for s in results["spaces"].values() for r in s["rows"]])
    harness.finish(results)


if __name__ == "__main__":
    app.run(main)
