"""bench/gpu_projection.py and ptb_flops.py: the paper searches' FLOPs from the
presets, hours from them, and the PTB step's floor."""

import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "bench")
if not os.path.isdir(BENCH):
    pytest.skip("bench/ is not beside the tests", allow_module_level=True)
sys.path.insert(0, BENCH)
import gpu_projection  # noqa: E402  pylint: disable=wrong-import-position
import ptb_flops  # noqa: E402  pylint: disable=wrong-import-position


def test_the_ptb_search_counts_150_epochs_of_414_steps_and_2000_scored_arcs():
    window = ptb_flops.step_flops(64, 35, 1000, 12, 10_000)
    # 929,589 training tokens in 64 rows of 14,524; targets are shifted by one, so
    # 14,523 inputs a row: 414 whole windows of 35.
    epoch = 414 * 3 * window + 200 * 10 * window + 73_760 * window / (64 * 35)
    counted = gpu_projection.ptb_search_flops()
    assert counted["total_pflop"] == pytest.approx((150 * epoch + 100 * window) / 1e15)
    assert counted["per_epoch_pflop"]["controller_arcs"] == pytest.approx(2000 * window / 1e15)


def test_a_micro_arc_costs_more_to_train_with_its_aux_head_and_every_arc_is_counted():
    counted = gpu_projection.cifar_search_flops("micro", num_arcs=4)
    parts = counted["per_epoch_pflop"]
    steps = -(-45_000 // 160)
    # Training includes the aux head, scoring does not: train > 3x the scored forward.
    per_train_step = parts["shared_steps"] / steps
    per_scored_arc = parts["controller_arcs"] / 300
    assert per_train_step > 3 * per_scored_arc
    assert counted["epochs"] == 150


def test_hours_are_flops_over_peak_times_fraction():
    hours = gpu_projection.project(36.0, 0.5)  # 36 PFLOP
    f32, bf16 = hours["A100 SXM"]
    assert f32 == pytest.approx(36e15 / (19.5e12 * 0.5) / 3600)
    assert bf16 == pytest.approx(36e15 / (312e12 * 0.5) / 3600)
    assert hours["GTX 1080 Ti"][1] is None  # no bfloat16 tensor cores


def test_the_ptb_floor_puts_the_time_chain_at_its_rate_and_the_rest_at_the_other():
    train = 3 * ptb_flops.step_flops(64, 35, 1000, 12, 10_000)
    chained = ptb_flops.chained_training_flops(64, 35, 1000, 12)
    # Forward: 12 chained [64, 1000] @ [1000, 2000] matmuls a time step (node 0's
    # hidden part and 11 nodes); backward: their input gradients, as many.
    assert chained == 2 * 35 * 12 * (2 * 64 * 1000 * 2000)
    assert chained < train / 2
    assert ptb_flops.floor_seconds(train, chained, 1e11, 1e11) == pytest.approx(train / 1e11)
    slow_chain = ptb_flops.floor_seconds(train, chained, 5e10, 1e11)
    assert slow_chain == pytest.approx(train / 1e11 + chained / 1e11)
