"""Seconds per PTB search step at the paper's size, and what they achieve.

Times the two compiled steps of a search, after warm-up, with every result
fetched: the shared-weight step (a fresh controller-sampled arc each time)
and the controller step (sample an arc, reward it on a validation batch,
accumulate its policy gradient; the Adam update every
``controller_num_aggregate`` arcs is timed separately). FLOPs are counted
from the shapes (matmuls only; backward = 2x forward). The matmul
ceilings (2048 square; the cell's own 64x1000 @ 1000x2000, independent
repeats, a dependent chain on one weight, and one over the cell's N
weights, streamed as the step reads them) are measured in the same run,
in the child's compute dtype, and each step's rate is given as a fraction
of them; each step's floor is its matmuls alone, those chained through
time at the streamed chain's ceiling and the rest at the 2048 one. No
peer figures here: timings from another sitting do not compare;
``compare_port.py`` runs this script and the PyTorch port alternately in
one sitting.

    python bench/ptb_search_step.py --data_path=../shared/data/ptb
    python bench/ptb_search_step.py --data_path=testdata/ptb --hidden_size=64 --steps=5
    python bench/ptb_search_step.py --data_path=../shared/data/ptb \\
        --child_precision=mixed_bfloat16
"""

import statistics

import tensorflow as tf
from absl import app
from absl import flags

import harness
import machine_limit
import ptb_flops
# Defines the flags this benchmark reads (data_path, batch_size, child_precision).
from enas_tf.cli import common  # noqa: F401  pylint: disable=unused-import
from enas_tf.data import ptb
from enas_tf.models import ptb_child
from enas_tf.training import ptb_task
from enas_tf.training import run_config

flags.DEFINE_integer("hidden_size", 1000, "Hidden = embedding size.")
flags.DEFINE_integer("num_nodes", 12, "Cell nodes.")
flags.DEFINE_integer("bptt", 35, "BPTT length.")
flags.DEFINE_integer("steps", 20, "Timed steps of each kind (after 3 warm-up).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    data = ptb.load_ptb(FLAGS.data_path)
    config = ptb_task.PtbConfig(
        num_nodes=FLAGS.num_nodes, hidden_size=FLAGS.hidden_size,
        batch_size=FLAGS.batch_size, bptt=FLAGS.bptt,
        keep_probs=ptb_child.KeepProbs(0.75, 0.25, 0.75, 0.25),
        precision=FLAGS.child_precision)
    rng = tf.random.Generator.from_seed(0)
    task = ptb_task.PtbTask(config, data, rng)
    controller, reinforce = run_config.build_controller("ptb", config)
    sample = tf.function(lambda: controller.sample(rng.make_seeds(1)[:, 0]).arc)
    score = tf.function(lambda batch: reinforce.score(
        rng.make_seeds(1)[:, 0], lambda arc: task.reward(arc, batch)))
    update = tf.function(reinforce.apply)
    task.begin_epoch(0)

    def child_step():
        task.train_step(sample())

    def controller_step():
        out = score(task.reward_batch())
        out["reward"].numpy()

    def controller_update():
        update().numpy()

    child = harness.timed(child_step, FLAGS.steps)
    ctrl = harness.timed(controller_step, FLAGS.steps)
    upd = harness.timed(controller_update, FLAGS.steps)
    forward = ptb_flops.step_flops(FLAGS.batch_size, FLAGS.bptt, FLAGS.hidden_size,
                         FLAGS.num_nodes, data.vocab.size)
    results = {
        "precision": FLAGS.child_precision,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "shape": {"hidden": FLAGS.hidden_size, "nodes": FLAGS.num_nodes,
                  "batch": FLAGS.batch_size, "bptt": FLAGS.bptt, "vocab": data.vocab.size},
        "child_step_seconds": harness.describe(child),
        "controller_step_seconds": harness.describe(ctrl),
        "controller_update_seconds": harness.describe(upd),
        "child_step_gflop": 3 * forward / 1e9,
        "controller_step_gflop": forward / 1e9,
        "child_gflops_per_second": 3 * forward / 1e9 / statistics.median(child),
        "controller_gflops_per_second": forward / 1e9 / statistics.median(ctrl),
        "traces": dict(task.traces(), sample_arc=sample.experimental_get_tracing_count(),
                       controller_score=score.experimental_get_tracing_count()),
    }
    dtype = tf.bfloat16 if FLAGS.child_precision == "mixed_bfloat16" else tf.float32
    node_shape = (FLAGS.batch_size, FLAGS.hidden_size, 2 * FLAGS.hidden_size)
    ceilings = {name: machine_limit.time_case(*case)["gflops_per_second"]["median"]
                for name, case in (
                    ("square_2048", machine_limit.matmul_case(2048, 2048, 2048, dtype)),
                    ("cell_node", machine_limit.matmul_case(*node_shape, dtype)),
                    ("cell_chain", machine_limit.matmul_chain_case(*node_shape, dtype)),
                    ("cell_chain_streamed", machine_limit.matmul_chain_case(
                        *node_shape, dtype, FLAGS.num_nodes)))}
    results["matmul_ceilings_gflops_per_second"] = ceilings
    # The floor: each step's matmuls alone, those chained through time at the
    # ceiling of a chain over the cell's own weights (streamed, as the step
    # reads them), the rest at the 2048 ceiling (the controller step is a
    # forward pass: half the chained FLOPs).
    chained = ptb_flops.chained_training_flops(FLAGS.batch_size, FLAGS.bptt,
                                               FLAGS.hidden_size, FLAGS.num_nodes) / 1e9
    for name, chain in (("child_step", chained), ("controller_step", chained / 2)):
        floor = ptb_flops.floor_seconds(results[f"{name}_gflop"], chain,
                                        ceilings["cell_chain_streamed"], ceilings["square_2048"])
        results[f"{name}_floor"] = {
            "seconds": floor, "chained_gflop": chain,
            "fraction_of_2048_ceiling": results[f"{name}_gflop"] / floor / ceilings["square_2048"],
            "median_over_floor": results[f"{name}_seconds"]["median"] / floor}
    results["ceiling_dtype"] = dtype.name
    results["peak_rss_mb"] = harness.peak_rss_mb()
    rows = []
    for name, gflop in (("child_step", results["child_step_gflop"]),
                        ("controller_step", results["controller_step_gflop"]),
                        ("controller_update", 0.0)):
        s = results[f"{name}_seconds"]
        rate = gflop / s["median"] if gflop else None
        results[f"{name}_fraction_of_ceiling"] = (
            {k: rate / c for k, c in ceilings.items()} if rate else None)
        rows.append((name, s["median"], s["min"], s["max"], gflop or None, rate,
                     rate and rate / ceilings["square_2048"],
                     rate and rate / ceilings["cell_node"],
                     rate and rate / ceilings["cell_chain"]))
    harness.print_table([("step", 20, ""), ("median s", 10, ".3f"), ("min s", 9, ".3f"),
                         ("max s", 9, ".3f"), ("GFLOP", 8, ".1f"), ("GFLOP/s", 9, ".1f"),
                         ("/2048 ceil", 11, ".2f"), ("/node ceil", 11, ".2f"),
                         ("/chain ceil", 12, ".2f")], rows)
    print(f"matmul ceilings ({dtype.name}, GFLOP/s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in ceilings.items()))
    for name in ("child_step", "controller_step"):
        floor = results[f"{name}_floor"]
        print(f"{name} floor (matmuls alone, {floor['chained_gflop']:.1f} GFLOP chained at the "
              f"streamed chain ceiling, the rest at the 2048 one): {floor['seconds']:.3f} s = "
              f"{floor['fraction_of_2048_ceiling']:.2f} of the 2048 ceiling; "
              f"median step {floor['median_over_floor']:.2f}x the floor")
    print(f"peak RSS: {results['peak_rss_mb']:.0f} MB")
    print("traces:", results["traces"])
    harness.finish(results)


if __name__ == "__main__":
    app.run(main)
