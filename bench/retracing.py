"""Trace counts of every compiled search step across many distinct sampled arcs.

One compiled graph must serve every architecture: retracing per arc would
recompile the child (seconds to minutes each) and grow memory. For the PTB
cell, the macro and the micro search, this drives the search loop's own
compiled steps (as setups.py builds them) with fresh controller-sampled
arcs until ``--arcs`` distinct ones have been seen: per arc one
shared-weight train step, one evaluation over the validation split, one
controller step (sample, reward, accumulate), one derive reward; a
controller update every ``--aggregate`` arcs. It prints, per step, how many
calls and distinct arcs it saw and its trace count (target: exactly 1).
Sizes are small on purpose: tracing depends on the graph's structure (the
arc is an int32 tensor of fixed length), not on widths, batch or data, so
small models on the bundled samples answer the question for the paper's
sizes; the layer counts are kept small only to compile fast.

    python bench/retracing.py
"""

import collections
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
setups.define_families_flag()
flags.DEFINE_integer("arcs", 200, "Distinct sampled arcs to see per family.", lower_bound=1)
flags.DEFINE_integer("aggregate", 10, "Arcs per controller update.", lower_bound=1)
flags.DEFINE_string("ptb_data_path", os.path.join(ROOT, "testdata", "ptb"), "PTB directory.")
flags.DEFINE_string("cifar_data_path", os.path.join(ROOT, "testdata", "cifar10"),
                    "CIFAR-10 directory.")
FLAGS = flags.FLAGS

SHAPES = {
    "ptb": dict(hidden_size=32, num_nodes=8, batch_size=8, bptt=10),
    "macro": dict(num_layers=6, out_filters=8, batch_size=8),
    "micro": dict(num_layers=2, out_filters=8, batch_size=8),
}


def build(family, rng):
    """(task, controller, reinforce) of one family at its small shape."""
    shape = SHAPES[family]
    if family == "ptb":
        task = ptb_task.PtbTask(setups.ptb_config(**shape),
                                ptb.load_ptb(FLAGS.ptb_data_path), rng)
        return (task,) + setups.ptb_controller(shape["num_nodes"])
    data = cifar10.load_cifar10(FLAGS.cifar_data_path)
    config = setups.cifar_config(family, num_images=len(data.train_labels), **shape)
    task = cifar_task.CifarTask(config, data, rng)
    return (task,) + setups.cifar_controller(config)


def drive(family):
    """Calls and distinct arcs per step name, and the loop's trace counts."""
    rng = setups.seeded_rng()
    task, controller, reinforce = build(family, rng)
    calls = collections.Counter()
    arcs = collections.defaultdict(set)

    def saw(step, arc):
        calls[step] += 1
        if arc is not None:
            arcs[step].add(tuple(arc.numpy().tolist()))

    # pylint: disable=protected-access  (the loop's own compiled steps)
    with tempfile.TemporaryDirectory() as scratch:
        loop = setups.search_loop(task, controller, reinforce, rng, scratch)
        task.begin_epoch(0)
        for i in range(4 * FLAGS.arcs):
            if len(arcs["sample_arc"]) >= FLAGS.arcs:
                break
            arc = loop._sample_arc()
            saw("sample_arc", arc)
            setups.train_step(task, arc)
            saw("child_train_step", arc)
            task.evaluate(arc.numpy(), "valid")
            saw("child_eval_step", arc)
            saw("controller_score", loop._score(task.reward_batch())["arc"])
            loop._reward(arc, task.reward_batch())[0].numpy()
            saw("derive_reward", arc)
            if (i + 1) % FLAGS.aggregate == 0:
                loop._apply().numpy()
                saw("controller_update", None)
        traces = loop._traces()
    return {name: {"calls": calls[name], "distinct_arcs": len(arcs[name]),
                   "traces": count} for name, count in traces.items()}


def main(argv):
    del argv
    families, rows = {}, []
    for family in FLAGS.families:
        families[family] = {"shape": SHAPES[family], "steps": drive(family)}
        for name, figures in families[family]["steps"].items():
            rows.append((f"{family} {name}", figures["calls"], figures["distinct_arcs"],
                         figures["traces"]))
    harness.print_table([("step", 30, ""), ("calls", 8, "d"), ("distinct arcs", 15, "d"),
                         ("traces", 8, "d")], rows)
    harness.finish({"target_traces": 1, "families": families})
    bad = [row[0] for row in rows if row[3] != 1]
    print("every step traced once" if not bad else f"not traced exactly once: {bad}")


if __name__ == "__main__":
    app.run(main)
