"""REINFORCE arithmetic: reward, EMA baseline, aggregated policy gradient."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from enas_tf.controller import reinforce
from enas_tf.controller import rnn_controller
from enas_tf.training import ptb_task
from enas_tf.training import run_config


def make(entropy_weight=0.0, decay=0.9, lr=1.0):
    ctrl = rnn_controller.RnnController(3, lstm_size=4, init_range=0.3)
    ctrl.build()
    return reinforce.Reinforce(ctrl, keras.optimizers.SGD(lr), baseline_decay=decay,
                               entropy_weight=entropy_weight)


class ReinforceTest:

    def test_reward_adds_weighted_entropy(self):
        rl = make(entropy_weight=0.5)
        assert float(rl.reward(tf.constant(2.0), tf.constant(3.0))) == pytest.approx(3.5)

    def test_baseline_starts_at_first_reward_then_moves_by_ema(self):
        rl = make(decay=0.9)
        old = [float(rl.update_baseline(tf.constant(r))) for r in (10.0, 20.0, 0.0)]
        assert old == pytest.approx([10.0, 10.0, 11.0])
        assert float(rl.baseline) == pytest.approx(11.0 - 0.1 * 11.0)

    def test_score_uses_the_baseline_before_its_update(self):
        rl = make(decay=0.5)
        rewards = iter([4.0, 8.0])
        out1 = rl.score(tf.constant([0, 1]), lambda arc: (tf.constant(next(rewards)), 1.0))
        out2 = rl.score(tf.constant([0, 2]), lambda arc: (tf.constant(next(rewards)), 2.0))
        assert float(out2["metric"]) == 2.0
        assert float(out1["advantage"]) == pytest.approx(0.0)
        assert float(out2["baseline"]) == pytest.approx(4.0)
        assert float(out2["advantage"]) == pytest.approx(4.0)
        assert float(rl.baseline) == pytest.approx(6.0)

    def test_update_is_the_mean_policy_gradient_of_the_aggregated_arcs(self):
        rl = make(decay=0.0, lr=1.0)
        ctrl = rl.controller
        before = [v.numpy().copy() for v in rl.variables_to_train]
        seeds = [tf.constant([3, s]) for s in range(3)]
        rewards = [1.0, 5.0, 2.0]
        outs = [rl.score(seed, lambda arc, r=r: (tf.constant(r), 0.0))
                for seed, r in zip(seeds, rewards)]
        # By hand: grad of -log p(arc_i) * advantage_i, averaged.
        expected = [np.zeros_like(b) for b in before]
        for out in outs:
            with tf.GradientTape() as tape:
                loss = -ctrl.sample(None, arc=out["arc"]).log_prob * float(out["advantage"])
            grads = tape.gradient(loss, rl.variables_to_train)
            for e, g in zip(expected, grads):
                e += tf.convert_to_tensor(g).numpy() / 3
        assert int(rl.num_accumulated) == 3
        rl.apply()
        for b, v, e in zip(before, rl.variables_to_train, expected):
            np.testing.assert_allclose(v.numpy(), b - e, rtol=1e-4, atol=1e-6)
        assert int(rl.num_accumulated) == 0
        assert all(not np.any(a.numpy()) for a in rl.accumulators)

    def test_a_centred_update_subtracts_the_updates_mean_reward(self):
        ctrl = rnn_controller.RnnController(3, lstm_size=4, init_range=0.3)
        ctrl.build()
        rl = reinforce.Reinforce(ctrl, keras.optimizers.SGD(1.0), baseline_decay=0.9,
                                 penalty_weight=0.0, centered=True)
        before = [v.numpy().copy() for v in rl.variables_to_train]
        rewards = [1.0, 5.0, np.nan, 3.0]  # the NaN arc is dropped
        outs = [rl.score(tf.constant([3, s]), lambda arc, r=r: (tf.constant(r), 0.0))
                for s, r in enumerate(rewards)]
        kept = [out for out in outs if np.isfinite(float(out["reward"]))]
        mean = np.mean([float(out["reward"]) for out in kept])
        expected = [np.zeros_like(b) for b in before]
        for out in kept:
            with tf.GradientTape() as tape:
                loss = -ctrl.sample(None, arc=out["arc"]).log_prob * (float(out["reward"]) - mean)
            for e, g in zip(expected, tape.gradient(loss, rl.variables_to_train)):
                e += tf.convert_to_tensor(g).numpy() / len(kept)
        # The EMA baseline still moves and is reported.
        assert float(outs[1]["baseline"]) == pytest.approx(1.0)
        rl.apply()
        for b, v, e in zip(before, rl.variables_to_train, expected):
            np.testing.assert_allclose(v.numpy(), b - e, rtol=1e-4, atol=1e-6)
        assert float(rl.reward_sum) == 0.0
        assert all(not np.any(a.numpy()) for a in rl.score_accumulators)

    def test_positive_advantage_makes_the_arc_more_likely(self):
        rl = make(decay=0.0, lr=0.5)
        rl.update_baseline(tf.constant(0.0))
        out = rl.score(tf.constant([9, 9]), lambda arc: (tf.constant(1.0), 0.0))
        before = float(rl.controller.sample(None, arc=out["arc"]).log_prob)
        rl.apply()
        after = float(rl.controller.sample(None, arc=out["arc"]).log_prob)
        assert after > before


@pytest.mark.parametrize("epsilon, moves", [(1e-3, False), (1e-8, True)])
def test_small_rewards_move_the_policy_only_below_adams_epsilon(epsilon, moves):
    """Rewards of a PTB search at hidden 64 (about 0.15, arcs 0.015 apart)
    give gradient entries far below the official epsilon of 1e-3."""
    settings = dataclasses.replace(run_config.controller_defaults("ptb"), lstm_size=32,
                                   lr=0.005, adam_epsilon=epsilon)
    _, rl = run_config.build_controller("ptb", ptb_task.PtbConfig(num_nodes=4), settings)
    # The first decision is node 1's activation: activation 0 earns 0.015 more.
    good, bad = tf.constant([0, 0, 0, 0, 0, 1, 0]), tf.constant([1, 0, 0, 0, 0, 1, 0])

    def gap():
        return float(rl.controller.sample(None, arc=good).log_prob
                     - rl.controller.sample(None, arc=bad).log_prob)

    before = gap()
    for step in range(20):
        for i in range(5):
            rl.score(tf.constant([step, i]), lambda arc: (
                0.15 + 0.015 * tf.cast(arc[0] == 0, tf.float32), 0.0))
        rl.apply()
    moved = gap() - before
    if moves:
        assert moved > 0.1
    else:
        assert abs(moved) < 0.01
