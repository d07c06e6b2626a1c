"""The macro controller against a hand walk of the official policy; the skip KL."""

import numpy as np
import pytest
import tensorflow as tf

from enas_tf.controller import macro_controller
from enas_tf.search_space import known_arcs
from enas_tf.search_space import macro
from numpy_policy import Tally, lstm, sigmoid, weights

L = 5


def numpy_walk(ctrl, arc, tanh_constant, temperature, skip_target):
    """The policy by hand for ``arc``: (sum log p, sum entropy, skip KL penalty)."""
    w = weights(ctrl)

    def shape(logits):
        return tanh_constant * np.tanh(logits / temperature)

    tally = Tally()
    kls = []
    pos = 0
    c = h = np.zeros([1, ctrl.lstm_size])
    x = w["g_emb"]
    anchors = []
    for layer in range(ctrl.num_layers):
        c, h = lstm(w["w_lstm"], x, c, h)
        tally.decide(shape((h @ w["w_soft"]).ravel()), arc[pos])
        c, h = lstm(w["w_lstm"], w["w_emb"][arc[pos]][None], c, h)
        pos += 1
        if layer:
            a = np.concatenate(anchors, 0)
            q = (np.tanh(a @ w["w_attn_anchor"] + h @ w["w_attn_query"]) @ w["v_attn"]).ravel()
            q = shape(q)
            kl = 0.0
            for j in range(layer):
                tally.decide([-q[j], q[j]], arc[pos + j])
                p = sigmoid(2 * q[j])  # P(skip) of softmax([-q, q])
                kl += (p * np.log(p / skip_target)
                       + (1 - p) * np.log((1 - p) / (1 - skip_target)))
            kls.append(kl)
            bits = np.array(arc[pos:pos + layer], np.float64)
            x = (bits @ a)[None] / (1 + bits.sum())
            pos += layer
        else:
            x = w["g_emb"]
        anchors.append(h)
    return tally.log_prob, tally.entropy, np.mean(kls)


def make(num_layers=L, num_branches=6, tanh_constant=1.5, temperature=2.0,
         skip_target=0.4, init_range=0.5, seed=0):
    """A built controller with reproducible uniform weights."""
    ctrl = macro_controller.MacroController(
        num_layers, num_branches=num_branches, lstm_size=8, tanh_constant=tanh_constant,
        temperature=temperature, skip_target=skip_target)
    ctrl.build()
    rng = np.random.default_rng(seed)
    for weight in ctrl.weights:
        weight.assign(rng.uniform(-init_range, init_range, weight.shape))
    return ctrl


class MacroControllerTest:

    def test_log_prob_entropy_and_penalty_match_a_hand_walk(self):
        ctrl = make()
        for seed in range(3):
            sample = ctrl.sample(tf.constant([seed, 7]))
            want = numpy_walk(ctrl, sample.arc.numpy(), 1.5, 2.0, 0.4)
            np.testing.assert_allclose(sample.log_prob.numpy(), want[0], rtol=1e-4)
            np.testing.assert_allclose(sample.entropy.numpy(), want[1], rtol=1e-4)
            np.testing.assert_allclose(sample.penalty.numpy(), want[2], rtol=1e-4)

    def test_scoring_a_given_arc_returns_it_and_its_log_prob(self):
        ctrl = make(num_branches=4)
        space = macro.MacroSpace(L, num_branches=4)
        arc = space.random_arc(np.random.default_rng(0))
        scored = ctrl.sample(None, arc=tf.constant(arc))
        assert np.array_equal(scored.arc.numpy(), arc)
        want = numpy_walk(ctrl, arc, 1.5, 2.0, 0.4)
        np.testing.assert_allclose(scored.log_prob.numpy(), want[0], rtol=1e-4)
        np.testing.assert_allclose(scored.penalty.numpy(), want[2], rtol=1e-4)

    def test_scores_the_published_final_arc(self):
        ctrl = make(num_layers=24, num_branches=4)
        arc = macro.MacroSpace(24, num_branches=4).from_string(known_arcs.CIFAR_MACRO_FINAL)
        scored = ctrl.sample(None, arc=tf.constant(arc))
        assert np.array_equal(scored.arc.numpy(), arc)
        assert np.isfinite(scored.log_prob.numpy()) and scored.log_prob.numpy() < 0

    def test_same_seed_same_arc_and_many_valid_arcs(self):
        ctrl = make(num_branches=4)
        space = macro.MacroSpace(L, num_branches=4)
        a = [ctrl.sample(tf.constant([1, s])).arc.numpy() for s in range(30)]
        b = [ctrl.sample(tf.constant([1, s])).arc.numpy() for s in range(30)]
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        assert len({tuple(x) for x in a}) > 25
        for arc in a:
            space.validate(arc)
        assert max(arc[space.op_position(layer)] for arc in a for layer in range(L)) == 3

    def test_one_trace_for_many_samples(self):
        ctrl = make()
        sample = tf.function(lambda s: ctrl.sample(s).log_prob)
        for s in range(25):
            sample(tf.constant([s, 1], tf.int64))
        assert sample.experimental_get_tracing_count() == 1

    def test_uniform_skips_pay_the_kl_from_one_half(self):
        ctrl = make(skip_target=0.4)
        ctrl.v_attn.assign(tf.zeros_like(ctrl.v_attn))  # every P(skip) = 1/2
        per_skip = 0.5 * np.log(0.5 / 0.4) + 0.5 * np.log(0.5 / 0.6)
        # Layer i has i skips; the official code averages over layers 1..L-1.
        want = per_skip * np.mean(np.arange(1, L))
        penalty = ctrl.sample(tf.constant([0, 0])).penalty.numpy()
        np.testing.assert_allclose(penalty, want, rtol=1e-5)

    def test_penalty_is_zero_when_skips_follow_the_target(self):
        ctrl = make(skip_target=0.5)
        ctrl.v_attn.assign(tf.zeros_like(ctrl.v_attn))
        assert abs(float(ctrl.sample(tf.constant([0, 0])).penalty)) < 1e-7
        # The formula on its own, at P(skip) = sigmoid(2q) = 0.4 exactly.
        q = 0.5 * np.log(0.4 / 0.6)
        logits = tf.constant([[-q, q]] * 3, tf.float32)
        assert abs(float(macro_controller.skip_kl(logits, 0.4))) < 1e-6
        assert float(macro_controller.skip_kl(-logits, 0.4)) > 0.01

    def test_penalty_has_a_gradient_and_is_zero_for_one_layer(self):
        ctrl = make()
        with tf.GradientTape() as tape:
            penalty = ctrl.sample(tf.constant([3, 3])).penalty
        grad = tape.gradient(penalty, ctrl.v_attn)
        assert grad is not None and float(tf.norm(grad)) > 0
        assert float(make(num_layers=1).sample(tf.constant([0, 0])).penalty) == 0.0

    def test_sampled_skips_follow_the_policy(self):
        # One branch: the op is fixed, so layer 1's skip is the only free choice.
        ctrl = make(num_layers=2, num_branches=1, init_range=1.5)
        p_skip = np.exp(numpy_walk(ctrl, [0, 0, 1], 1.5, 2.0, 0.4)[0])
        sample = tf.function(lambda s: ctrl.sample(s).arc)
        bits = [int(sample(tf.constant([s, 5]))[2]) for s in range(2000)]
        assert abs(p_skip - 0.5) > 0.05
        assert np.mean(bits) == pytest.approx(p_skip, abs=0.035)

    def test_config_round_trip(self):
        ctrl = make(num_branches=4, skip_target=0.3)
        clone = macro_controller.MacroController.from_config(ctrl.get_config())
        assert (clone.num_layers, clone.num_branches, clone.skip_target) == (L, 4, 0.3)
        with pytest.raises(ValueError, match="skip_target=1.0"):
            macro_controller.MacroController(3, skip_target=1.0)
