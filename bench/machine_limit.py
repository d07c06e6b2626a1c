"""The machine's ceilings through TensorFlow: matmul and conv2d GFLOP/s.

Each op runs inside a tf.function that repeats it ``--inner`` times and
returns a scalar that depends on every result, so the timing covers work
that was really done; the scalar is fetched (``.numpy()``) before the clock
stops. Shapes: a large square matmul, the PTB cell's own matmuls at the
paper's size, and the CIFAR search children's 3x3 convolutions.

    python bench/machine_limit.py --json_out=machine_limit.json
"""

import json
import platform
import statistics
import time

import tensorflow as tf
from absl import app
from absl import flags

flags.DEFINE_integer("repeats", 7, "Timed runs per case (after one warm-up).")
flags.DEFINE_integer("inner", 10, "Op executions per timed run.")
flags.DEFINE_string("json_out", "", "Also write the figures here.")
FLAGS = flags.FLAGS

MATMULS = {
    "square 2048": (2048, 2048, 2048),
    "ptb node (64x1000 @ 1000x2000)": (64, 1000, 2000),
    "ptb softmax (2240x1000 @ 1000x10000)": (2240, 1000, 10000),
}
CONVS = {  # batch, size, channels in, channels out, kernel
    "macro search conv3x3 (128x32x32x36)": (128, 32, 36, 36, 3),
    "micro search conv3x3 (160x32x32x20)": (160, 32, 20, 20, 3),
}


def time_case(fn, flop):
    fn().numpy()
    seconds = []
    for _ in range(FLAGS.repeats):
        started = time.perf_counter()
        fn().numpy()
        seconds.append(time.perf_counter() - started)
    rates = [flop * FLAGS.inner / s / 1e9 for s in seconds]
    return {"gflops_per_second": statistics.median(rates), "min": min(rates),
            "max": max(rates), "seconds_median": statistics.median(seconds)}


def matmul_case(m, k, n, dtype):
    a = tf.random.normal([m, k], dtype=tf.float32)
    b = tf.random.normal([k, n], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(b, dtype)

    @tf.function
    def run():
        total = tf.constant(0.0)
        for i in range(FLAGS.inner):
            # A different scaled operand each time defeats common-subexpression reuse.
            total += tf.cast(tf.reduce_sum(tf.matmul(a * tf.cast(i + 1, dtype), b)[0, :1]),
                             tf.float32)
        return total
    return run, 2.0 * m * k * n


def conv_case(batch, size, c_in, c_out, kernel, dtype):
    x = tf.cast(tf.random.normal([batch, size, size, c_in]), dtype)
    w = tf.cast(tf.random.normal([kernel, kernel, c_in, c_out]), dtype)

    @tf.function
    def run():
        total = tf.constant(0.0)
        for i in range(FLAGS.inner):
            y = tf.nn.conv2d(x * tf.cast(i + 1, dtype), w, 1, "SAME")
            total += tf.cast(tf.reduce_sum(y[0, 0, 0, :1]), tf.float32)
        return total
    return run, 2.0 * batch * size * size * c_in * c_out * kernel * kernel


def main(argv):
    del argv
    results = {"machine": platform.processor() or platform.machine(),
               "tensorflow": tf.__version__,
               "threads": {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                           "inter": tf.config.threading.get_inter_op_parallelism_threads()},
               "cases": {}}
    print(f"{'case':<42}{'dtype':>10}{'GFLOP/s':>10}{'min':>9}{'max':>9}")
    for dtype in (tf.float32, tf.bfloat16):
        cases = [(name, matmul_case(*shape, dtype)) for name, shape in MATMULS.items()]
        cases += [(name, conv_case(*shape, dtype)) for name, shape in CONVS.items()]
        for name, (fn, flop) in cases:
            figures = time_case(fn, flop)
            results["cases"][f"{name} {dtype.name}"] = figures
            print(f"{name:<42}{dtype.name:>10}{figures['gflops_per_second']:>10.1f}"
                  f"{figures['min']:>9.1f}{figures['max']:>9.1f}")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    app.run(main)
