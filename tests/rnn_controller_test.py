"""The PTB controller: sampling, scoring, determinism, tracing."""

import numpy as np
import tensorflow as tf

from enas_tf.controller import rnn_controller
from enas_tf.search_space import rnn
from numpy_policy import Tally, log_softmax, lstm, weights

N = 5


def numpy_log_prob(ctrl, arc, tanh_constant, temperature):
    """Walks the policy by hand for ``arc``; returns (sum log p, sum entropy)."""
    w = weights(ctrl)

    def shape(logits):
        return tanh_constant * np.tanh(logits / temperature)

    tally, pos = Tally(), 0
    c = h = np.zeros([1, ctrl.lstm_size])
    x = w["g_emb"]
    anchors = []
    for node in range(N):
        c, h = lstm(w["w_lstm"], x, c, h)
        if node:
            a = np.concatenate(anchors, 0)
            query = np.tanh(a @ w["w_attn_anchor"] + h @ w["w_attn_query"])
            logits = shape((query @ w["v_attn"]).ravel())
            logits = logits - (node - np.arange(node)) ** 2 / 6.0
            prev = arc[pos]
            tally.decide(logits, prev)
            pos += 1
            x = a[prev][None] / (0.1 + node - prev)
        else:
            x = w["g_emb"]
        anchors.append(h)
        c, h = lstm(w["w_lstm"], x, c, h)
        tally.decide(shape((h @ w["w_soft"]).ravel()), arc[pos])
        x = w["w_emb"][arc[pos]][None]
        pos += 1
    return tally.log_prob, tally.entropy


def make(tanh_constant=2.5, temperature=5.0, init_range=0.5):
    ctrl = rnn_controller.RnnController(N, lstm_size=8, tanh_constant=tanh_constant,
                                        temperature=temperature, init_range=init_range)
    ctrl.build()
    return ctrl


class RnnControllerTest:

    def test_log_prob_and_entropy_match_a_hand_computation(self):
        ctrl = make()
        for seed in range(3):
            sample = ctrl.sample(tf.constant([seed, 7]))
            want_lp, want_ent = numpy_log_prob(ctrl, sample.arc.numpy(), 2.5, 5.0)
            np.testing.assert_allclose(sample.log_prob.numpy(), want_lp, rtol=1e-4)
            np.testing.assert_allclose(sample.entropy.numpy(), want_ent, rtol=1e-4)

    def test_scoring_a_given_arc_returns_its_log_prob(self):
        ctrl = make()
        arc = np.array([3, 0, 1, 1, 2, 0, 0, 3, 1], np.int32)
        scored = ctrl.sample(None, arc=tf.constant(arc))
        assert np.array_equal(scored.arc.numpy(), arc)
        np.testing.assert_allclose(scored.log_prob.numpy(),
                                   numpy_log_prob(ctrl, arc, 2.5, 5.0)[0], rtol=1e-4)

    def test_same_seed_same_arc_and_arcs_are_valid(self):
        ctrl = make()
        space = rnn.RnnSpace(N)
        a = [ctrl.sample(tf.constant([1, s])).arc.numpy() for s in range(30)]
        b = [ctrl.sample(tf.constant([1, s])).arc.numpy() for s in range(30)]
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        assert len({tuple(x) for x in a}) > 20
        for arc in a:
            space.validate(arc)

    def test_sampling_frequencies_follow_the_policy(self):
        ctrl = make(tanh_constant=None, temperature=None, init_range=1.0)
        sample = tf.function(lambda s: ctrl.sample(s).arc)
        first = np.array([sample(tf.constant([s, 0])).numpy()[0] for s in range(3000)])
        freqs = np.bincount(first, minlength=4) / len(first)
        # The first decision's distribution, by hand: two LSTM steps from g_emb.
        w = weights(ctrl)
        c = h = np.zeros([1, 8])
        for _ in range(2):
            c, h = lstm(w["w_lstm"], w["g_emb"], c, h)
        want = np.exp(log_softmax((h @ w["w_soft"]).ravel()))
        np.testing.assert_allclose(freqs, want, atol=0.03)

    def test_one_trace_for_many_samples(self):
        ctrl = make()
        sample = tf.function(lambda s: ctrl.sample(s).log_prob)
        for s in range(25):
            sample(tf.constant([s, 1], tf.int64))
        assert sample.experimental_get_tracing_count() == 1

    def test_temperature_and_tanh_shape_logits(self):
        ctrl = make(tanh_constant=2.0, temperature=4.0)
        logits = tf.constant([[-100.0, 0.0, 8.0]])
        np.testing.assert_allclose(ctrl.shape_logits(logits).numpy(),
                                   2.0 * np.tanh(np.array([[-25.0, 0.0, 2.0]])), rtol=1e-6)
