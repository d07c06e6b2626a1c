"""Seconds per CIFAR-10 search step (macro or micro), and what they achieve.

Times the compiled steps of the search loop on the real data, after
warm-up, with every result fetched: the shared-weight step (a fresh
controller-sampled arc each time), the controller step (sample an arc,
reward it on a held-out batch, accumulate its policy gradient) and the
controller's Adam update. The task and controllers are the ones
bin/search_cifar builds, with the paper's settings (see setups.py).
FLOPs are counted per sampled arc from its op choices (cifar_flops.py;
training = 3x forward, the micro aux head included as the paper's micro
search trains it); the conv2d ceiling is measured in the same run at the
child's first-stage shape (batch x 32 x 32, filters in and out, 3x3), and
the peak memory is the process's max RSS. Time to first step is what a
user waits for: from the process's start (imports, data, model, tracing
and graph building included) to the end of the first shared-weight step,
with the peak RSS at that moment (most of it the compiled graph's).

    python bench/cifar_search_step.py --space=macro --data_path=../shared/data/cifar10
    python bench/cifar_search_step.py --space=micro --data_path=testdata/cifar10 \\
        --num_layers=2 --out_filters=8 --batch_size=16 --steps=5
    python bench/cifar_search_step.py --space=macro --data_path=../shared/data/cifar10 \\
        --child_precision=mixed_bfloat16
"""

import time

PROCESS_START = time.perf_counter()  # before TensorFlow's import: part of the wait

import tempfile

from absl import app
from absl import flags

import cifar_flops
import harness
import machine_limit
import setups
# Defines the flags this benchmark reads (data_path, batch_size, child_precision).
from enas_tf.cli import common  # noqa: F401  pylint: disable=unused-import
from enas_tf.data import cifar10
from enas_tf.training import cifar_task

flags.DEFINE_enum("space", "macro", ["macro", "micro"], "Search space.")
flags.DEFINE_integer("num_layers", None, "Child layers (default: the paper's, "
                     "12 macro, 6 micro).", lower_bound=1)
flags.DEFINE_integer("out_filters", None, "Child filters (default: the paper's, "
                     "36 macro, 20 micro).", lower_bound=2)
flags.DEFINE_integer("steps", 10, "Timed steps of each kind (after 3 warm-up).",
                     lower_bound=1)
flags.mark_flag_as_required("data_path")
FLAGS = flags.FLAGS


def sizes():
    """(layers, filters, batch): the flags, else the paper's sizes for --space."""
    paper = setups.CIFAR_PAPER[FLAGS.space]
    batch = FLAGS.batch_size if FLAGS["batch_size"].present else paper["batch_size"]
    return (FLAGS.num_layers or paper["num_layers"],
            FLAGS.out_filters or paper["out_filters"], batch)


def gflop_figures(flops, seconds):
    """GFLOP per step and achieved GFLOP/s, each step with its own arc's count."""
    return {"gflop": harness.describe([f / 1e9 for f in flops]),
            "gflops_per_second": harness.describe(
                [f / 1e9 / s for f, s in zip(flops, seconds)])}


def main(argv):
    del argv
    num_layers, filters, batch = sizes()
    data = cifar10.load_cifar10(FLAGS.data_path)
    config = setups.cifar_config(FLAGS.space, num_layers, filters, batch,
                                 len(data.train_labels), precision=FLAGS.child_precision)
    rng = setups.seeded_rng()
    task = cifar_task.CifarTask(config, data, rng)
    controller, reinforce = setups.cifar_controller(config)
    child_arcs, scored_arcs, first_step = [], [], {}
    with tempfile.TemporaryDirectory() as scratch:
        loop = setups.search_loop(task, controller, reinforce, rng, scratch)
        task.begin_epoch(0)

        def child_step():
            arc = loop._sample_arc()  # pylint: disable=protected-access
            task.train_step(arc)  # fetches loss, accuracy, norm
            child_arcs.append(arc.numpy())
            if len(child_arcs) == 1:
                first_step.update(seconds=time.perf_counter() - PROCESS_START,
                                  peak_rss_mb=harness.peak_rss_mb())

        def controller_step():
            out = loop._score(task.reward_batch())  # pylint: disable=protected-access
            scored_arcs.append(out["arc"].numpy())
            out["reward"].numpy()

        def controller_update():
            loop._apply().numpy()  # pylint: disable=protected-access

        child = harness.timed(child_step, FLAGS.steps)
        ctrl = harness.timed(controller_step, FLAGS.steps)
        update = harness.timed(controller_update, FLAGS.steps)
        traces = loop._traces()  # pylint: disable=protected-access
    ceiling = machine_limit.conv2d_ceiling(batch, cifar_flops.IMAGE_SIZE, filters, filters)
    train_flops = [3 * cifar_flops.forward(task.space, arc, config, batch,
                                           aux_head=config.use_aux_heads)
                   for arc in child_arcs[-FLAGS.steps:]]
    reward_flops = [cifar_flops.forward(task.space, arc, config, batch)
                    for arc in scored_arcs[-FLAGS.steps:]]
    steps = {"child_step": dict(seconds=harness.describe(child),
                                **gflop_figures(train_flops, child)),
             "controller_step": dict(seconds=harness.describe(ctrl),
                                     **gflop_figures(reward_flops, ctrl)),
             "controller_update": {"seconds": harness.describe(update)}}
    peak = ceiling["gflops_per_second"]["median"]
    for figures in steps.values():
        if "gflops_per_second" in figures:
            figures["fraction_of_conv2d_ceiling"] = figures["gflops_per_second"]["median"] / peak
    rows = []
    for name, figures in steps.items():
        s, g = figures["seconds"], figures.get("gflop", {})
        r = figures.get("gflops_per_second", {})
        rows.append((name, s["median"], s["min"], s["max"], g.get("median"), r.get("median"),
                     figures.get("fraction_of_conv2d_ceiling")))
    harness.print_table([("step", 20, ""), ("median s", 10, ".3f"), ("min s", 9, ".3f"),
                         ("max s", 9, ".3f"), ("GFLOP", 9, ".2f"), ("GFLOP/s", 9, ".1f"),
                         ("of ceiling", 11, ".2f")], rows)
    results = harness.finish({
        "space": FLAGS.space,
        "precision": FLAGS.child_precision,
        "shape": {"layers": num_layers, "filters": filters, "batch": batch,
                  "aux_head": config.use_aux_heads, "num_valid": config.num_valid},
        "steps": steps, "conv2d_ceiling": dict(
            shape=[batch, cifar_flops.IMAGE_SIZE, cifar_flops.IMAGE_SIZE, filters, filters, 3],
            **ceiling),
        "peak_rss_mb": harness.peak_rss_mb(), "first_step": first_step, "traces": traces})
    print(f"conv2d ceiling {peak:.1f} GFLOP/s; peak RSS {results['peak_rss_mb']:.0f} MB; "
          f"first step after {first_step['seconds']:.1f} s (peak RSS then "
          f"{first_step['peak_rss_mb']:.0f} MB); traces: {traces}")


if __name__ == "__main__":
    app.run(main)
