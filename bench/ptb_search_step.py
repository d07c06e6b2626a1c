"""Seconds per PTB search step at the paper's size, and what they achieve.

Times the two compiled steps of a search, after warm-up, with every result
fetched: the shared-weight step (a fresh controller-sampled arc each time)
and the controller step (sample an arc, reward it on a validation batch,
accumulate its policy gradient; the Adam update every
``controller_num_aggregate`` arcs is timed separately). FLOPs are counted
from the shapes (matmuls only; backward = 2x forward).

    python bench/ptb_search_step.py --data_path=../shared/data/ptb
    python bench/ptb_search_step.py --data_path=testdata/ptb --hidden_size=64 --steps=5
"""

import json
import platform
import statistics
import time

import tensorflow as tf
from absl import app
from absl import flags

from enas_tf.cli import common
from enas_tf.controller import rnn_controller
from enas_tf.data import ptb
from enas_tf.models import ptb_child
from enas_tf.training import ptb_task

flags.DEFINE_integer("hidden_size", 1000, "Hidden = embedding size.")
flags.DEFINE_integer("num_nodes", 12, "Cell nodes.")
flags.DEFINE_integer("bptt", 35, "BPTT length.")
flags.DEFINE_integer("steps", 20, "Timed steps of each kind (after 3 warm-up).")
flags.DEFINE_string("json_out", "", "Also write the figures here.")
FLAGS = flags.FLAGS


def step_flops(batch, bptt, hidden, nodes, vocab):
    """Forward matmul FLOPs of one window: node 0's input part, N nodes, softmax."""
    tokens = batch * bptt
    cell = 2 * tokens * hidden * 2 * hidden * (nodes + 1)
    softmax = 2 * tokens * hidden * vocab
    return cell + softmax


def timed(fn, steps):
    for _ in range(3):
        fn()
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return seconds


def describe(seconds):
    return {"median": statistics.median(seconds), "min": min(seconds),
            "max": max(seconds), "n": len(seconds)}


def main(argv):
    del argv
    data = ptb.load_ptb(FLAGS.data_path)
    config = ptb_task.PtbConfig(
        num_nodes=FLAGS.num_nodes, hidden_size=FLAGS.hidden_size,
        batch_size=FLAGS.batch_size, bptt=FLAGS.bptt,
        keep_probs=ptb_child.KeepProbs(0.75, 0.25, 0.75, 0.25))
    rng = tf.random.Generator.from_seed(0)
    task = ptb_task.PtbTask(config, data, rng)
    controller = rnn_controller.RnnController(
        FLAGS.num_nodes, lstm_size=100, tanh_constant=2.5, temperature=5.0)
    reinforce = common.build_reinforce(controller)
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

    child = timed(child_step, FLAGS.steps)
    ctrl = timed(controller_step, FLAGS.steps)
    upd = timed(controller_update, FLAGS.steps)
    forward = step_flops(FLAGS.batch_size, FLAGS.bptt, FLAGS.hidden_size,
                         FLAGS.num_nodes, data.vocab.size)
    results = {
        "machine": platform.processor() or platform.machine(),
        "tensorflow": tf.__version__,
        "threads": {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter": tf.config.threading.get_inter_op_parallelism_threads()},
        "shape": {"hidden": FLAGS.hidden_size, "nodes": FLAGS.num_nodes,
                  "batch": FLAGS.batch_size, "bptt": FLAGS.bptt, "vocab": data.vocab.size},
        "child_step_seconds": describe(child),
        "controller_step_seconds": describe(ctrl),
        "controller_update_seconds": describe(upd),
        "child_step_gflop": 3 * forward / 1e9,
        "controller_step_gflop": forward / 1e9,
        "child_gflops_per_second": 3 * forward / 1e9 / statistics.median(child),
        "controller_gflops_per_second": forward / 1e9 / statistics.median(ctrl),
        "traces": dict(task.traces(), sample_arc=sample.experimental_get_tracing_count(),
                       controller_score=score.experimental_get_tracing_count()),
    }
    print(f"{'step':<22}{'median s':>10}{'min s':>10}{'max s':>10}{'GFLOP':>9}{'GFLOP/s':>9}")
    for name, gflop in (("child_step", results["child_step_gflop"]),
                        ("controller_step", results["controller_step_gflop"]),
                        ("controller_update", 0.0)):
        s = results[f"{name}_seconds"]
        rate = gflop / s["median"] if gflop else float("nan")
        print(f"{name:<22}{s['median']:>10.3f}{s['min']:>10.3f}{s['max']:>10.3f}"
              f"{gflop:>9.1f}{rate:>9.1f}")
    print("traces:", results["traces"])
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    app.run(main)
