"""Random search with weight sharing (search_strategy="random"): uniform arcs, no
controller, the derivation spending the controller's validation budget."""

import dataclasses
import glob
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from enas_tf.data import ptb
from enas_tf.training import ptb_task
from enas_tf.training import run_config
from enas_tf.training import run_dir
from enas_tf.training import search

DATA = ptb.load_ptb(os.path.join(os.path.dirname(__file__), "..", "testdata", "ptb"))
TASK = ptb_task.PtbConfig(num_nodes=4, hidden_size=8, batch_size=4, bptt=5,
                          eval_batch_size=20, lr=1.0, steps_per_epoch=3)
# Controller epochs 0 and 2 of 3, 1 x 3 arcs each: 6 reward batches, which
# the random derivation spends as ceil(6 / 4) = 2 more arcs of 4 batches.
LOOP = search.LoopConfig(num_epochs=3, controller_train_every=2, controller_train_steps=1,
                         controller_num_aggregate=3, derive_num_samples=2,
                         derive_num_batches=4, verbose=False, search_strategy="random")


def make_loop(output_dir, loop_config=LOOP, seed=0):
    keras.utils.set_random_seed(seed)
    rng = tf.random.Generator.from_seed(seed)
    task = ptb_task.PtbTask(TASK, DATA, rng)
    controller = reinforce = None
    if loop_config.search_strategy == "enas":
        controller, reinforce = run_config.build_controller(
            "ptb", TASK, run_config.ControllerConfig(
                lstm_size=8, tanh_constant=2.5, temperature=5.0, lr=1e-3,
                entropy_weight=1e-4, baseline_decay=0.99))
    os.makedirs(output_dir, exist_ok=True)  # unlocked: a resume in this process reopens it
    return search.SearchLoop(task, loop_config, output_dir, rng, controller=controller,
                             reinforce=reinforce), task


def scalar_tags(output_dir):
    tags = set()
    for path in glob.glob(os.path.join(output_dir, run_dir.TENSORBOARD, "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def uniformity_p_values(samples, bounds):
    """Chi-square p-value of each position with bound > 1 against the uniform law
    (scipy.stats.chisquare's, computed here: scipy is no dependency of the tests)."""
    p_values = []
    for i, bound in enumerate(bounds):
        if bound > 1:
            counts = np.bincount(samples[:, i], minlength=bound)
            expected = len(samples) / bound
            statistic = ((counts - expected) ** 2 / expected).sum()
            # The chi-square survival function with bound - 1 degrees of freedom.
            p_values.append(float(tf.math.igammac(tf.constant((bound - 1) / 2, tf.float64),
                                                  statistic / 2)))
    return p_values


class LoopConfigTest:

    def test_a_bad_strategy_names_the_parameter_and_the_choices(self):
        with pytest.raises(search.LoopConfigError) as raised:
            search.LoopConfig(search_strategy="evolution")
        assert raised.value.worded({"search_strategy": "--search_strategy"}) == (
            "--search_strategy must be one of enas, random. Received: 'evolution'")

    @pytest.mark.parametrize("field, value, message", [
        ("entropy_collapse_ratio", 0.0, "entropy_collapse_ratio must be in (0, 1]. Received: 0.0"),
        ("entropy_collapse_ratio", 1.5, "entropy_collapse_ratio must be in (0, 1]. Received: 1.5"),
        ("reward_stall_epochs", 0, "reward_stall_epochs must be at least 1. Received: 0"),
    ])
    def test_the_policy_warnings_settings_are_range_checked(self, field, value, message):
        with pytest.raises(search.LoopConfigError) as raised:
            search.LoopConfig(**{field: value})
        assert str(raised.value) == message

    def test_random_derives_the_controller_budget_in_arcs(self):
        assert LOOP.controller_arcs() == 2 * 1 * 3
        assert LOOP.derive_arcs() == 2 + math.ceil(6 / 4)
        enas = dataclasses.replace(LOOP, search_strategy="enas")
        assert enas.derive_arcs() == 2

    def test_a_random_loop_refuses_a_controller(self, tmp_path):
        enas_loop, _ = make_loop(str(tmp_path / "enas"), search.LoopConfig(verbose=False))
        with pytest.raises(search.LoopConfigError, match="has no controller"):
            search.SearchLoop(enas_loop.task, LOOP, str(tmp_path / "random"), enas_loop.rng,
                              controller=enas_loop.controller, reinforce=enas_loop.reinforce)


class UniformSamplingTest:

    def test_every_position_is_uniform_over_its_bound_with_one_trace(self, tmp_path):
        loop, task = make_loop(str(tmp_path))
        samples = np.stack([loop._sample_arc().numpy() for _ in range(2000)])
        bounds = task.space.bounds
        assert ((samples >= 0) & (samples < bounds)).all()
        p_values = uniformity_p_values(samples, bounds)
        assert len(p_values) == sum(b > 1 for b in bounds) >= 4
        assert min(p_values) > 1e-3, p_values
        assert loop._sample_arc.experimental_get_tracing_count() == 1

    def test_the_check_rejects_a_biased_sampler(self):
        bounds = np.array([4, 2, 3])
        # Value v drawn with probability proportional to v + 1.
        rng = np.random.default_rng(0)
        samples = np.stack([rng.choice(b, size=2000, p=np.arange(1, b + 1) / (b * (b + 1) / 2))
                            for b in bounds], axis=1)
        assert max(uniformity_p_values(samples, bounds)) < 1e-3


@pytest.mark.slow  # whole searches in-process: about 45 s
class RandomSearchRunTest:

    @pytest.fixture(scope="class")
    def runs(self, tmp_path_factory):
        """The same search, random and ENAS; their directories and summaries."""
        out = {}
        for strategy in search.SEARCH_STRATEGIES:
            output_dir = str(tmp_path_factory.mktemp(strategy))
            loop, _ = make_loop(output_dir, dataclasses.replace(LOOP, search_strategy=strategy))
            out[strategy] = output_dir, loop.run()
        return out

    def test_no_controller_is_checkpointed_or_logged(self, runs):
        for strategy, has_controller in (("random", False), ("enas", True)):
            output_dir, summary = runs[strategy]
            checkpoint = tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints"))
            objects = {name.split("/")[0] for name, _ in tf.train.list_variables(checkpoint)}
            assert bool(objects & {"controller", "controller_optimizer", "reinforce"}) == (
                has_controller)
            assert any(t.startswith("controller/") for t in scalar_tags(output_dir)) == (
                has_controller)
            assert (summary["controller_steps"] > 0) == has_controller
            assert summary["search_strategy"] == strategy

    def test_the_derivation_spends_the_controller_budget(self, runs):
        _, random_summary = runs["random"]
        _, enas_summary = runs["enas"]
        assert random_summary["derive_num_samples_used"] == LOOP.derive_arcs()
        assert enas_summary["derive_num_samples_used"] == LOOP.derive_num_samples
        spent = random_summary["validation_batches_evaluated"]
        enas_spent = enas_summary["validation_batches_evaluated"]
        assert enas_spent == enas_summary["controller_steps"] * 3 + 2 * 4
        assert enas_spent <= spent < enas_spent + LOOP.derive_num_batches

    def test_arcs_log_holds_the_derived_arcs_and_the_best_wins(self, runs):
        output_dir, summary = runs["random"]
        records = run_dir.ArcLog(output_dir).read()
        assert {r["phase"] for r in records} == {"derive"}
        assert len(records) == summary["derive_num_samples_used"]
        best = max(records, key=lambda r: r["reward"])
        assert summary["best_arc"] == best["arc"]
        assert summary["best_reward"] == pytest.approx(best["reward"])
        with open(os.path.join(output_dir, run_dir.BEST_ARC), encoding="utf-8") as f:
            assert f.read().strip() == best["arc"]

    def test_resumed_run_equals_an_uninterrupted_one(self, tmp_path):
        two = dataclasses.replace(LOOP, num_epochs=2)
        one = dataclasses.replace(LOOP, num_epochs=1)
        straight_loop, straight = make_loop(str(tmp_path / "straight"), two)
        straight_summary = straight_loop.run()
        make_loop(str(tmp_path / "resumed"), one)[0].run()
        resumed_loop, resumed = make_loop(str(tmp_path / "resumed"), two, seed=1)
        resumed_summary = resumed_loop.run()
        assert resumed_summary["best_arc"] == straight_summary["best_arc"]
        assert resumed_summary["best_reward"] == straight_summary["best_reward"]
        for a, b in zip(straight.model.weights, resumed.model.weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
