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
