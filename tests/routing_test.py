"""Routing by the arc: routed reads of earlier states against plain indexing."""

import numpy as np
import pytest
import tensorflow as tf

from enas_tf.layers import routing

NUM_READERS = 6  # reader k picks among the first k // 2 + 2 states, as in a micro cell


def counts():
    return [k // 2 + 2 for k in range(NUM_READERS)]


def build(x0, x1, weights, add, read):
    """States 0, 1, then one per reader pair, each a product of the pair's two reads."""
    add(x0)
    add(x1)
    for b in range(NUM_READERS // 2):
        add(tf.tanh(read(2 * b) * weights[2 * b]) * read(2 * b + 1) * weights[2 * b + 1])


def weighted_sum(states):
    """A loss that reaches every state, each with its own weight."""
    return tf.reduce_sum(tf.stack(states) * tf.range(1.0, len(states) + 1)[:, None, None])


def routed_loss(choices, x0, x1, weights):
    routed = routing.RoutedStates(tf.unstack(choices), counts())
    build(x0, x1, weights, routed.add, routed.read)
    return weighted_sum(routed.outputs)


def indexed_loss(choices, x0, x1, weights):
    states = []
    build(x0, x1, weights, states.append, lambda k: states[choices[k]])
    return weighted_sum(states)


def value_and_grads(loss_fn, choices, inputs):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        loss = loss_fn(choices, *inputs)
    return [loss] + tape.gradient(loss, inputs)


class RoutedStatesTest:

    @pytest.mark.parametrize("choices", [
        [0, 0, 0, 0, 0, 0],        # state 0 read by every reader, states 1.. by none
        [1, 0, 2, 2, 3, 2],        # a node read twice, input 1 once
        [1, 0, 2, 0, 3, 1],        # states 0-3 all read, the inputs twice
    ])
    def test_compiled_reads_and_gradients_equal_plain_indexing(self, choices):
        rng = np.random.default_rng(sum(choices))
        inputs = [tf.constant(rng.normal(size=(3, 4)), tf.float32) for _ in range(2)]
        inputs.append(tf.constant(rng.normal(size=(NUM_READERS, 4)), tf.float32))
        compiled = tf.function(lambda c, *xs: value_and_grads(routed_loss, c, list(xs)))
        got = compiled(tf.constant(choices, tf.int32), *inputs)
        want = value_and_grads(indexed_loss, choices, inputs)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-6)

    def test_one_trace_serves_every_choice(self):
        inputs = [tf.ones((2, 3)), tf.ones((2, 3)), tf.ones((NUM_READERS, 3))]
        compiled = tf.function(lambda c, *xs: value_and_grads(routed_loss, c, list(xs)))
        losses = {float(compiled(tf.constant(c, tf.int32), *inputs)[0])
                  for c in ([0, 0, 0, 0, 0, 0], [1, 1, 2, 2, 3, 3])}
        assert len(losses) == 2
        assert compiled.experimental_get_tracing_count() == 1

    def test_eager_choices_are_read_by_value(self):
        states = [tf.constant([1.0]), tf.constant([2.0])]
        routed = routing.RoutedStates([tf.constant(1), tf.constant(0)], [2, 2])
        for x in states:
            routed.add(x)
        assert [float(routed.read(k)[0]) for k in (0, 1)] == [2.0, 1.0]
        assert routed.outputs == states


class DispatchTest:
    """``routing.dispatch`` against calling the chosen fn directly."""

    def setup_method(self):
        rng = np.random.default_rng(0)
        self.x = tf.constant(rng.normal(size=(2, 3)), tf.float32)
        self.w = [tf.Variable(rng.normal(size=(3, 3)).astype(np.float32), name=f"w{i}")
                  for i in range(2)]
        # One counter per fn: tf.function chains the updates of one resource,
        # so options must not share one (dispatch's docstring).
        self.runs = [tf.Variable(0) for _ in range(3)]
        self.fns = [self.counted(0, lambda x: tf.tanh(x @ self.w[0])),
                    self.counted(1, lambda x: x @ self.w[1] * x),
                    self.counted(2, tf.identity)]

    def counted(self, i, fn):
        """``fn`` that counts its runs (an update that reads its input, as a BN's does)."""
        def run(x):
            y = fn(x)
            count = tf.cast(tf.math.is_finite(tf.reduce_sum(y)), tf.int32)  # reads y's values
            self.runs[i].assign_add(count)
            return y
        return run

    def loss_and_grads(self, fn):
        with tf.GradientTape() as tape:
            tape.watch(self.x)
            loss = tf.reduce_sum(fn() * tf.range(1.0, 4.0))
        return [loss] + tape.gradient(loss, [self.x] + self.w)

    @pytest.mark.parametrize("choice", [0, 1, 2])
    def test_compiled_value_and_gradients_equal_the_chosen_fn(self, choice):
        compiled = tf.function(lambda c: self.loss_and_grads(
            lambda: routing.dispatch(c, self.fns, self.x)))
        got = compiled(tf.constant(choice))
        want = self.loss_and_grads(lambda: self.fns[choice](self.x))
        for i, (g, w) in enumerate(zip(got, want)):
            if w is None:  # a weight the chosen fn does not read: zeros, not None
                np.testing.assert_array_equal(g.numpy(), 0.0, err_msg=str(i))
            else:
                np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, err_msg=str(i))
        assert compiled.experimental_get_tracing_count() == 1

    def test_only_the_chosen_fn_runs(self):
        compiled = tf.function(lambda c: self.loss_and_grads(
            lambda: routing.dispatch(c, self.fns, self.x)))
        compiled(tf.constant(1))
        compiled(tf.constant(2))
        assert [int(r) for r in self.runs] == [0, 1, 1]

    def test_a_fn_that_ignores_its_input_cannot_answer_for_another(self):
        fns = [lambda x: tf.fill([2, 3], 7.0), lambda x: x + 1.0]
        compiled = tf.function(lambda c: routing.dispatch(c, fns, self.x))
        for _ in range(5):
            np.testing.assert_array_equal(compiled(tf.constant(1)).numpy(), self.x + 1.0)
        np.testing.assert_array_equal(compiled(tf.constant(0)).numpy(), 7.0)

    def test_an_int_or_eager_choice_calls_the_fn(self):
        want = self.fns[1](self.x).numpy()
        for choice in (1, tf.constant(1)):
            np.testing.assert_array_equal(routing.dispatch(choice, self.fns, self.x), want)
        assert [int(r) for r in self.runs] == [0, 3, 0]
