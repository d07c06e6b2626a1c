"""The micro controller against a hand walk of the official policy; its op biases."""

import numpy as np
import pytest
import tensorflow as tf

from enas_tf.controller import micro_controller
from enas_tf.search_space import known_arcs
from enas_tf.search_space import micro
from numpy_policy import Tally, log_softmax, lstm, weights

B = 3


def numpy_walk(ctrl, arc, tanh_constant, op_tanh, temperature):
    """The policy by hand for ``arc``: (sum log p, sum entropy)."""
    w = weights(ctrl)
    num_nodes, num_ops = ctrl.num_nodes, ctrl.num_ops
    normal_bias = np.array([0.25, 0.25, -0.25, -0.25, -0.25])[:num_ops]

    tally = Tally()
    c = h = np.zeros([1, ctrl.lstm_size])
    for cell in range(2):
        cell_arc = arc[4 * num_nodes * cell:4 * num_nodes * (cell + 1)]
        x = w["g_emb"]
        anchors, keys = [], []
        for _ in range(2):
            c, h = lstm(w["w_lstm"], x, c, h)
            anchors.append(np.zeros_like(h))
            keys.append(h @ w["w_attn_anchor"])
        for node in range(num_nodes):
            for field in (0, 2):
                c, h = lstm(w["w_lstm"], x, c, h)
                q = np.tanh(np.concatenate(keys) + h @ w["w_attn_query"]) @ w["v_attn"]
                choice = cell_arc[4 * node + field]
                tally.decide(tanh_constant * np.tanh(q.ravel() / temperature), choice)
                x = anchors[choice]
            for field in (1, 3):
                c, h = lstm(w["w_lstm"], x, c, h)
                logits = op_tanh * np.tanh((h @ w["w_soft"] + w["b_soft"]).ravel() / temperature)
                if cell == 0:
                    logits = logits + normal_bias
                choice = cell_arc[4 * node + field]
                tally.decide(logits, choice)
                x = w["w_emb"][choice][None]
            c, h = lstm(w["w_lstm"], x, c, h)
            anchors.append(h)
            keys.append(h @ w["w_attn_anchor"])
            x = w["g_emb"]
    return tally.log_prob, tally.entropy


def make(num_nodes=B, num_ops=5, tanh_constant=1.1, op_tanh_reduce=2.5,
         temperature=1.5, init_range=0.5, seed=0):
    """A built controller with reproducible uniform weights."""
    ctrl = micro_controller.MicroController(
        num_nodes, num_ops=num_ops, lstm_size=8, tanh_constant=tanh_constant,
        op_tanh_reduce=op_tanh_reduce, temperature=temperature)
    ctrl.build()
    rng = np.random.default_rng(seed)
    for weight in ctrl.weights:
        if weight.name != "b_soft":
            weight.assign(rng.uniform(-init_range, init_range, weight.shape))
    return ctrl


def zero_except_biases(ctrl):
    """Uniform input choices and op logits made of the biases alone."""
    for weight in (ctrl.v_attn, ctrl.w_soft):
        weight.assign(tf.zeros_like(weight))


class MicroControllerTest:

    def test_log_prob_and_entropy_match_a_hand_walk(self):
        ctrl = make()
        for seed in range(3):
            sample = ctrl.sample(tf.constant([seed, 7]))
            want = numpy_walk(ctrl, sample.arc.numpy(), 1.1, 1.1 / 2.5, 1.5)
            np.testing.assert_allclose(sample.log_prob.numpy(), want[0], rtol=1e-4)
            np.testing.assert_allclose(sample.entropy.numpy(), want[1], rtol=1e-4)
            assert float(sample.penalty) == 0.0

    def test_scoring_a_given_arc_returns_it_and_its_log_prob(self):
        ctrl = make(num_nodes=5)
        arc = micro.MicroSpace().from_string(known_arcs.CIFAR_MICRO_FINAL)
        scored = ctrl.sample(None, arc=tf.constant(arc))
        assert np.array_equal(scored.arc.numpy(), arc)
        np.testing.assert_allclose(scored.log_prob.numpy(),
                                   numpy_walk(ctrl, arc, 1.1, 0.44, 1.5)[0], rtol=1e-4)

    def test_same_seed_same_arc_and_many_valid_arcs(self):
        ctrl = make(init_range=1.0)
        space = micro.MicroSpace(B)
        sample = tf.function(lambda s: ctrl.sample(s).arc)
        a = [sample(tf.constant([1, s])).numpy() for s in range(40)]
        b = [sample(tf.constant([1, s])).numpy() for s in range(40)]
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        assert len({tuple(x) for x in a}) > 35
        for arc in a:
            space.validate(arc)
        # Node b's inputs reach b + 1, so the arcs do use earlier nodes.
        last_inputs = np.stack(a)[:, [space.position(r, B - 1, f)
                                      for r in (False, True) for f in (0, 2)]]
        assert last_inputs.max() == B

    def test_one_trace_for_many_samples(self):
        ctrl = make()
        sample = tf.function(lambda s: ctrl.sample(s).log_prob)
        for s in range(25):
            sample(tf.constant([s, 1], tf.int64))
        assert sample.experimental_get_tracing_count() == 1

    @pytest.mark.parametrize("op_tanh_reduce", [2.5, 1.0])
    def test_op_probabilities_follow_the_biases(self, op_tanh_reduce):
        ctrl = make(num_nodes=1, tanh_constant=1.1, op_tanh_reduce=op_tanh_reduce,
                    temperature=None)
        zero_except_biases(ctrl)
        learned = 1.1 / op_tanh_reduce * np.tanh(np.array([10.0, 10, 0, 0, 0]))
        normal = log_softmax(learned + np.array([0.25, 0.25, -0.25, -0.25, -0.25]))
        reduction = log_softmax(learned)
        for ops in [(0, 1, 2, 4), (4, 3, 1, 0)]:
            # One node per cell: inputs uniform over {0, 1}, then the two ops.
            arc = [0, ops[0], 1, ops[1], 1, ops[2], 0, ops[3]]
            want = (4 * np.log(0.5) + normal[ops[0]] + normal[ops[1]]
                    + reduction[ops[2]] + reduction[ops[3]])
            got = ctrl.sample(None, arc=tf.constant(arc)).log_prob.numpy()
            np.testing.assert_allclose(got, want, rtol=1e-5)

    def test_biases_for_other_op_counts_favour_the_separable_convolutions(self):
        ctrl = make(num_nodes=1, num_ops=3, tanh_constant=None, temperature=None)
        zero_except_biases(ctrl)
        np.testing.assert_allclose(ctrl.b_soft.numpy(), [10.0, 10.0, 0.0])
        normal = log_softmax(np.array([10.25, 10.25, -0.25]))
        reduction = log_softmax(np.array([10.0, 10.0, 0.0]))
        arc = [1, 2, 0, 0, 0, 2, 1, 1]
        want = 4 * np.log(0.5) + normal[2] + normal[0] + reduction[2] + reduction[1]
        np.testing.assert_allclose(ctrl.sample(None, arc=tf.constant(arc)).log_prob.numpy(),
                                   want, rtol=1e-5)
        with_walk = make(num_nodes=2, num_ops=3)
        arc = micro.MicroSpace(2, num_ops=3).random_arc(np.random.default_rng(0))
        np.testing.assert_allclose(
            with_walk.sample(None, arc=tf.constant(arc)).log_prob.numpy(),
            numpy_walk(with_walk, arc, 1.1, 0.44, 1.5)[0], rtol=1e-4)

    def test_b_soft_is_learned(self):
        ctrl = make()
        arc = tf.constant(micro.MicroSpace(B).random_arc(np.random.default_rng(1)))
        with tf.GradientTape() as tape:
            log_prob = ctrl.sample(None, arc=arc).log_prob
        assert float(tf.norm(tape.gradient(log_prob, ctrl.b_soft))) > 0

    def test_config_round_trip(self):
        ctrl = make(num_ops=4, op_tanh_reduce=2.0)
        clone = micro_controller.MicroController.from_config(ctrl.get_config())
        assert (clone.num_nodes, clone.num_ops, clone.op_tanh_reduce) == (B, 4, 2.0)
        assert clone.tanh_constant == 1.1
