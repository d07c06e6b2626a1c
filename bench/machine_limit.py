"""The machine's ceilings through TensorFlow: matmul and conv2d GFLOP/s.

Each op runs inside a tf.function that repeats it ``--inner`` times and
returns a scalar that depends on every result, so the timing covers work
that was really done; the scalar is fetched (``.numpy()``) before the clock
stops. Shapes: a large square matmul, the PTB cell's own matmuls at the
paper's size, and the CIFAR search children's 3x3 convolutions. Those
repeats are independent, so TensorFlow may run two at once; the PTB node
chain is also measured with each matmul reading the last one's output
(the cell's forward shape, then its backward data-gradient shape), as the
recurrence must, once on one weight and once over the 12 nodes' own
weights, streamed as the step reads them (96 MB, which the cache does not
keep): the ceiling of the step's sequential part.
``conv2d_ceiling`` serves other benchmarks that divide by the ceiling at
their own shapes.

    python bench/machine_limit.py --json_out=machine_limit.json
"""

import tensorflow as tf
from absl import app
from absl import flags

import harness

flags.DEFINE_integer("repeats", 7, "Timed runs per ceiling case (after one warm-up).")
flags.DEFINE_integer("inner", 10, "Op executions per timed run of a ceiling case.")
FLAGS = flags.FLAGS

MATMULS = {
    "square 2048": (2048, 2048, 2048),
    "ptb node (64x1000 @ 1000x2000)": (64, 1000, 2000),
    "ptb softmax (2240x1000 @ 1000x10000)": (2240, 1000, 10000),
}
CHAIN_NAME, CHAIN_SHAPE = "ptb node chain (dependent, fwd + bwd shapes)", (64, 1000, 2000)
CELL_CHAIN_NAME, CELL_NODES = "ptb cell chain (12 nodes' weights streamed)", 12
CONVS = {  # batch, size, channels in, channels out, kernel
    "macro search conv3x3 (128x32x32x36)": (128, 32, 36, 36, 3),
    "micro search conv3x3 (160x32x32x20)": (160, 32, 20, 20, 3),
}


def time_case(fn, flop):
    """GFLOP/s and seconds of ``--repeats`` runs of ``fn`` (``--inner`` ops each)."""
    seconds = harness.timed(lambda: fn().numpy(), FLAGS.repeats, warmup=1)
    return {"gflops_per_second": harness.describe(
                [flop * FLAGS.inner / s / 1e9 for s in seconds]),
            "seconds": harness.describe(seconds)}


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


def matmul_chain_case(m, k, n, dtype, distinct=1):
    """``--inner`` rounds over ``distinct`` weights ``[k, n]``: ``[m, k] @ W_i``, then
    ``[m, n] @ W_j^T`` with j counted from the other end, each reading the last.

    With ``distinct`` = the PTB cell's nodes this is its time chain as it
    runs: each node's weight read forward, then the backward reads them in
    reverse, ``distinct`` x 8 MB streamed each way instead of one weight
    kept in cache.
    """
    x = tf.cast(tf.random.normal([m, k]), dtype)
    # Scaled so values keep their size along the chain (no denormals, no overflow).
    weights = [tf.cast(tf.random.normal([k, n]) / (k * n) ** 0.25, dtype)
               for _ in range(distinct)]

    @tf.function
    def run():
        h = x
        for _ in range(FLAGS.inner):
            for i in range(distinct):
                h = tf.matmul(tf.matmul(h, weights[i]), weights[-1 - i], transpose_b=True)
        return tf.cast(tf.reduce_sum(h[0, :1]), tf.float32)
    return run, distinct * 2 * 2.0 * m * k * n


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


def conv2d_ceiling(batch, size, c_in, c_out, kernel=3, dtype=tf.float32):
    """The measured conv2d ceiling at one shape (see ``time_case``)."""
    return time_case(*conv_case(batch, size, c_in, c_out, kernel, dtype))


def main(argv):
    del argv
    cases = {}
    rows = []
    for dtype in (tf.float32, tf.bfloat16):
        named = [(name, matmul_case(*shape, dtype)) for name, shape in MATMULS.items()]
        named.append((CHAIN_NAME, matmul_chain_case(*CHAIN_SHAPE, dtype)))
        named.append((CELL_CHAIN_NAME, matmul_chain_case(*CHAIN_SHAPE, dtype, CELL_NODES)))
        named += [(name, conv_case(*shape, dtype)) for name, shape in CONVS.items()]
        for name, (fn, flop) in named:
            figures = time_case(fn, flop)
            cases[f"{name} {dtype.name}"] = figures
            rate = figures["gflops_per_second"]
            rows.append((name, dtype.name, rate["median"], rate["min"], rate["max"]))
    harness.print_table([("case", 42, ""), ("dtype", 10, ""), ("GFLOP/s", 10, ".1f"),
                         ("min", 9, ".1f"), ("max", 9, ".1f")], rows)
    harness.finish({"repeats": FLAGS.repeats, "inner": FLAGS.inner, "cases": cases})


if __name__ == "__main__":
    app.run(main)
