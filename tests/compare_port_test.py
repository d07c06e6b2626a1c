"""compare_port.py turns each run's JSON into the right ratios and ceiling fractions.

Hand-written JSON in the shapes ptb_search_step.py and the port's time_port.py
write; nothing is timed.
"""

import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "bench")
if not os.path.isdir(BENCH):
    pytest.skip("bench/ is not beside the tests", allow_module_level=True)
sys.path.insert(0, BENCH)
import compare_port  # pylint: disable=wrong-import-position

SHAPE = {"hidden": 1000, "nodes": 12, "batch": 64, "bptt": 35, "vocab": 10000}


def ours(child, controller, ceiling_dtype="float32", ceiling=400.0):
    return {"shape": dict(SHAPE), "ceiling_dtype": ceiling_dtype, "gpus": [],
            "child_step_seconds": {"median": child}, "child_step_gflop": 480.0,
            "controller_step_seconds": {"median": controller}, "controller_step_gflop": 160.0,
            "matmul_ceilings_gflops_per_second": {"square_2048": ceiling, "cell_node": 1.0}}


def port(shared, controller, ceiling=320.0):
    return {"shape": dict(SHAPE, embed=1000),
            "shared_step_seconds": {"median": shared}, "shared_step_gflop": 480.0,
            "controller_step_seconds": {"median": controller}, "controller_step_gflop": 160.0,
            "matmul_ceilings_gflops_per_second": {"square_2048": {"median": ceiling}}}


ROUNDS = [{"ours_float32": ours(2.0, 0.5), "port": port(3.0, 0.8),
           "ours_bfloat16": ours(1.5, 0.4, ceiling_dtype="bfloat16", ceiling=1500.0)},
          {"ours_float32": ours(2.4, 0.4), "port": port(2.4, 0.9),
           "ours_bfloat16": ours(1.2, 0.45, ceiling_dtype="bfloat16", ceiling=1500.0)}]


def test_ratios_are_port_over_ours_round_by_round_with_their_spread():
    summary = compare_port.summarize(ROUNDS)
    shared = summary["shared-weight step"]
    assert shared["seconds_median_per_round"]["port"] == [3.0, 2.4]
    assert shared["ratio_per_round"]["port/ours_float32"] == pytest.approx([1.5, 1.0])
    assert shared["ratio_per_round"]["port/ours_bfloat16"] == pytest.approx([2.0, 2.0])
    assert shared["ratio_spread"]["port/ours_float32"] == pytest.approx(
        {"min": 1.0, "max": 1.5, "median": 1.25})
    ctrl = summary["controller step"]["ratio_per_round"]["port/ours_float32"]
    assert ctrl == pytest.approx([1.6, 2.25])
    # No port-over-port or ours-over-ours pairs.
    assert set(summary["controller step"]["ratio_per_round"]) == {
        "port/ours_float32", "port/ours_bfloat16"}


def test_fractions_use_each_runs_own_float32_square_ceiling_and_none_for_bfloat16():
    fractions = compare_port.summarize(ROUNDS)["shared-weight step"][
        "fraction_of_f32_2048_ceiling_per_round"]
    assert fractions["ours_float32"] == pytest.approx([480 / 2.0 / 400, 480 / 2.4 / 400])
    assert fractions["port"] == pytest.approx([480 / 3.0 / 320, 480 / 2.4 / 320])
    assert fractions["ours_bfloat16"] == [None, None]


def test_a_port_run_without_ceilings_has_no_fraction():
    rounds = [{"ours_float32": ours(2.0, 0.5), "port": port(3.0, 0.8)} for _ in range(2)]
    for runs in rounds:
        del runs["port"]["matmul_ceilings_gflops_per_second"]
    fractions = compare_port.summarize(rounds)["controller step"][
        "fraction_of_f32_2048_ceiling_per_round"]
    assert fractions["port"] == [None, None]
    assert fractions["ours_float32"] == pytest.approx([160 / 0.5 / 400] * 2)


def test_runs_of_different_sizes_are_refused():
    rounds = [{"ours_float32": ours(2.0, 0.5), "port": port(3.0, 0.8)} for _ in range(2)]
    rounds[1]["port"]["shape"]["vocab"] = 10001
    with pytest.raises(ValueError, match="round 2 port"):
        compare_port.summarize(rounds)


def test_devices_say_where_each_contender_ran():
    rounds = [{"ours_float32": dict(ours(2.0, 0.5), gpus=["/physical_device:GPU:0"]),
               "port": port(3.0, 0.8)}]
    assert compare_port.devices(rounds) == {"ours_float32": "GPU", "port": "CPU"}
