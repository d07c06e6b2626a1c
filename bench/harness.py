"""What every benchmark shares: timing after warm-up, summaries, the machine, output.

Each benchmark times callables that fetch their results (``.numpy()``)
before returning, so the clock covers work that was really done; it
summarises every figure as median, min, max and n over the timed runs,
prints a table and, with ``--json_out``, writes the figures together with
the machine, the TensorFlow version and the thread counts.
"""

import json
import os
import platform
import resource
import statistics
import time

import tensorflow as tf
from absl import flags

flags.DEFINE_string("json_out", "", "Also write the figures here (JSON).")
FLAGS = flags.FLAGS


def timed(fn, runs, warmup=3):
    """Seconds of each of ``runs`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return seconds


def describe(values):
    return {"median": statistics.median(values), "min": min(values),
            "max": max(values), "n": len(values)}


def environment():
    """The machine, TensorFlow and thread counts a set of figures was measured with."""
    return {"machine": platform.processor() or platform.machine(),
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "tensorflow": tf.__version__,
            "threads": {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                        "inter": tf.config.threading.get_inter_op_parallelism_threads()}}


def peak_rss_mb():
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def print_table(columns, rows):
    """Prints rows under headers; ``columns`` holds (title, width, format spec).

    The first column is left-aligned, the others right-aligned; a None
    cell prints empty.
    """
    def cell(i, value, spec):
        width = columns[i][1]
        text = "" if value is None else format(value, spec)
        return f"{text:<{width}}" if i == 0 else f"{text:>{width}}"

    print("".join(cell(i, title, "") for i, (title, _, _) in enumerate(columns)))
    for row in rows:
        print("".join(cell(i, value, columns[i][2]) for i, value in enumerate(row)))


def finish(results):
    """Adds the environment and writes ``results`` to --json_out, if given."""
    results = dict(environment(), **results)
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return results
