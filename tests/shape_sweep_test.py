"""Forward and backward of every block of the three children at the shapes users pick.

Small and odd channel counts, strides 1 and 2, odd and even sizes, float32
and mixed_bfloat16: native kernels have crashed at such shapes (oneDNN's
filter gradient of a strided 1x1 convolution corrupts the heap at 8
filters on AVX-512 CPUs). Cases run in worker subprocesses
(``shape_sweep_support.py``), so a native crash is a failed case naming
its shape, not a dead test runner. The case a worker died in runs again
alone in a fresh process: heap corruption can surface in a later case than
the one that caused it, and the report says which it was.
"""

import itertools
import json
import os
import signal
import subprocess
import sys
from concurrent import futures

import pytest

pytestmark = pytest.mark.slow  # hundreds of compiled blocks in subprocesses

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "shape_sweep_support.py")
POLICIES = ("float32", "mixed_bfloat16")
# (input channels, filters): ones, odd counts, fewer and more filters than inputs.
CHANNELS = ((1, 1), (3, 2), (8, 4), (4, 8), (8, 8), (5, 7), (16, 8))
SIZES = (16, 9)  # the crash needed 16x16 or more; odd sizes pad differently
BATCH = 5  # the crash needed an odd batch: 1, 3, 5 and 25 crashed, 2, 8, 16 and 32 did not


def _case(block, policy, input_shape, **spec):
    spec.update(block=block, policy=policy, input=list(input_shape))
    spec["id"] = " ".join(f"{k}={v}" for k, v in sorted(spec.items()) if k != "id")
    return spec


def block_cases():
    """Every candidate op and building block of the CIFAR children."""
    for policy, (cin, filters), size in itertools.product(POLICIES, CHANNELS, SIZES):
        shape = (BATCH, size, size, cin)
        for kernel, separable, strides in itertools.product((1, 3), (False, True), (1, 2)):
            yield _case("conv_bn", policy, shape, filters=filters, kernel=kernel,
                        separable=separable, strides=strides)
        yield _case("factorized_reduce", policy, shape, filters=filters, strides=2)
        for op in ("conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3"):
            yield _case("macro_op", policy, shape, op=op, filters=filters)
        for op, strides in itertools.product(
                ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity"),
                (1, 2)):
            yield _case("micro_op", policy, shape, op=op, filters=filters, strides=strides)
        yield _case("micro_op", policy, shape, op="sep_conv_3x3", filters=filters, slots=3)
        yield _case("aux_head", policy, shape, filters=filters)


def network_cases():
    """Macro layers, micro cells, whole children and the PTB child.

    Fewer sizes than the blocks: these trace for seconds, not milliseconds.
    """
    for policy, search in itertools.product(POLICIES, (True, False)):
        for filters, layer_id in itertools.product((1, 3, 8), (0, 3)):
            yield _case("macro_layer", policy, (BATCH, 16, 16, filters), layer_id=layer_id,
                        filters=filters, search=search, seed=layer_id)
        for filters, reduction in itertools.product((1, 8), (False, True)):
            yield _case("micro_cell", policy, (BATCH, 16, 16, filters), num_nodes=2,
                        reduction=reduction, filters=filters, search=search, seed=filters)
        for filters in (1, 8):
            yield _case("child", policy, (BATCH, 32, 32, 3), space="macro", num_layers=4,
                        filters=filters, search=search, seed=filters)
        yield _case("child", policy, (BATCH, 32, 32, 3), space="micro", num_layers=2,
                    num_nodes=2, filters=3, search=search, seed=3)
        for hidden in (1, 3):
            yield _case("ptb_child", policy, (BATCH, 5), vocab=11, hidden=hidden,
                        num_nodes=4, search=search, seed=hidden)


def run_worker(cases):
    """(returncode, {id: "done" | "error ..."}, ids started) of one worker run.

    A worker that outlives its time (a corrupted heap can deadlock) is
    killed and gets returncode None.
    """
    try:
        proc = subprocess.run([sys.executable, WORKER], input=json.dumps(cases),
                              capture_output=True, text=True, timeout=60 + 10 * len(cases),
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        returncode, stdout = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as e:
        returncode, stdout = None, e.stdout or ""
        stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
    outcome, started = {}, []
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "start":
            started.append(rest)
        elif word == "done":
            outcome[rest] = "done"
        elif word == "error":
            case_id = next(c["id"] for c in cases if rest.startswith(c["id"] + " "))
            outcome[case_id] = rest[len(case_id) + 1:]
    return returncode, outcome, started


def crash_name(returncode):
    if returncode is None:
        return "hung (killed)"
    if returncode < 0:
        return f"native crash ({signal.Signals(-returncode).name})"
    return f"worker exited {returncode}"


def sweep(cases):
    """{case id: problem} over ``cases``; an empty dict when every case passed."""
    problems = {}
    todo = list(cases)
    while todo:
        returncode, outcome, started = run_worker(todo)
        for case_id, result in outcome.items():
            if result != "done":
                problems[case_id] = result
        if returncode == 0:
            break
        # The worker died in the last case it started: run that one again alone.
        last = todo[len(started) - 1]
        alone = run_worker([last])[0]
        problems[last["id"]] = crash_name(alone) if alone != 0 else (
            f"{crash_name(returncode)} after {len(started)} cases in one process, none "
            "alone (an earlier case may have corrupted the heap)")
        todo = todo[len(started):]
    return problems


def sweep_in_parallel(cases, workers=2):
    """``sweep`` over ``workers`` interleaved shares of the cases at once."""
    shares = [cases[i::workers] for i in range(workers)]
    with futures.ThreadPoolExecutor(workers) as pool:
        problems = {}
        for found in pool.map(sweep, shares):
            problems.update(found)
    return problems


def report(problems):
    return "\n".join(f"{case_id}: {problem}" for case_id, problem in sorted(problems.items()))


class ShapeSweepTest:

    @pytest.mark.parametrize("cases", [block_cases, network_cases],
                             ids=["blocks", "networks"])
    def test_every_block_trains_at_small_and_odd_shapes(self, cases):
        cases = list(cases())
        problems = sweep_in_parallel(cases)
        assert not problems, f"{len(problems)} of {len(cases)} cases failed:\n{report(problems)}"

    def test_a_crashing_case_is_reported_with_its_shape(self):
        # A worker that dies natively (SIGABRT, as a heap corruption does)
        # on one case: the sweep must name that case, and only that one.
        cases = [_case("factorized_reduce", "float32", (2, 8, 8, 2), filters=2, strides=2),
                 _case("crash", "float32", (1,)),
                 _case("factorized_reduce", "float32", (2, 9, 9, 4), filters=4, strides=2)]
        problems = sweep(cases)
        assert problems == {cases[1]["id"]: "native crash (SIGABRT)"}
