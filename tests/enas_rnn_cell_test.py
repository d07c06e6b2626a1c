"""The shared-weight ENAS cell: maths, dispatch, gradients, tracing, config."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from arc_check_support import check_message
from enas_tf.layers import cell_wiring
from enas_tf.layers import enas_rnn_cell
from enas_tf.search_space import rnn

N, H, E, B, T = 4, 6, 5, 3, 4
ACTS = [np.tanh, lambda v: np.maximum(v, 0), lambda v: v, lambda v: 1 / (1 + np.exp(-v))]


def numpy_cell(cell_layer, arc, x, h):
    """The paper's equations, written independently of the layer."""
    cell = rnn.RnnSpace(N).decode(arc)
    w_in, w_state = cell_layer.w_input.numpy(), cell_layer.w_state.numpy()
    w_edges = cell_layer.w_edges.numpy()
    outs = []
    for t in range(x.shape[1]):
        pre = x[:, t] @ w_in + h @ w_state
        nodes = []
        for node in range(N):
            src = h if node == 0 else nodes[cell.prev_nodes[node - 1]]
            if node:
                row = node - 1 if cell_layer.fixed_cell else \
                    enas_rnn_cell.edge_index(node, cell.prev_nodes[node - 1])
                pre = src @ w_edges[row]
            cand, gate = pre[:, :H], pre[:, H:]
            c = 1 / (1 + np.exp(-gate))
            nodes.append(c * ACTS[cell.activations[node]](cand) + (1 - c) * src)
        h = np.mean([nodes[i] for i in cell.loose_ends], axis=0)
        outs.append(h)
    return np.stack(outs, 1), h


def make_inputs(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(B, T, E)).astype(np.float32),
            rng.normal(size=(B, H)).astype(np.float32))


class EnasRnnCellTest:

    @pytest.mark.parametrize("training", [False, True])
    @pytest.mark.parametrize("compiled", [False, True])
    def test_search_mode_matches_the_equations_for_random_arcs(self, training, compiled):
        # Eagerly the arc is read by value; compiled, it is routed in the graph.
        layer = enas_rnn_cell.EnasRnnCell(N, H, init_range=0.5)
        x, h = make_inputs()
        layer(x, h, tf.zeros([7], tf.int32))
        run = lambda arc: layer(x, h, arc, training=training)  # noqa: E731
        if compiled:
            run = tf.function(run)
        rng = np.random.default_rng(0)
        for _ in range(5):
            arc = rnn.RnnSpace(N).random_arc(rng)
            out, state = run(tf.constant(arc))
            want_out, want_state = numpy_cell(layer, arc, x, h)
            np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(state.numpy(), want_state, rtol=1e-4, atol=1e-5)

    def test_fixed_mode_matches_the_equations_and_owns_only_chosen_edges(self):
        arc = np.array([1, 0, 3, 0, 2, 1, 0], np.int32)
        layer = enas_rnn_cell.EnasRnnCell(N, H, fixed_arc="1 0 3 0 2 1 0", init_range=0.5)
        x, h = make_inputs(1)
        out, _ = layer(x, h)
        np.testing.assert_allclose(out.numpy(), numpy_cell(layer, arc, x, h)[0],
                                   rtol=1e-4, atol=1e-5)
        assert layer.w_edges.shape == (N - 1, H, 2 * H)
        search = enas_rnn_cell.EnasRnnCell(N, H)
        search(x, h, tf.constant(arc))
        assert search.w_edges.shape == (N * (N - 1) // 2, H, 2 * H)

    def test_unknown_length_while_loop_equals_unrolled(self):
        layer = enas_rnn_cell.EnasRnnCell(N, H, init_range=0.5)
        x, h = make_inputs(2)
        arc = tf.constant([3, 0, 1, 1, 0, 2, 2])
        unrolled, _ = layer(x, h, arc)
        dynamic = tf.function(lambda x: layer(x, h, arc)[0], input_signature=[
            tf.TensorSpec([None, None, E], tf.float32)])
        np.testing.assert_allclose(dynamic(x).numpy(), unrolled.numpy(), rtol=1e-5)

    def test_only_chosen_edges_get_gradients(self):
        layer = enas_rnn_cell.EnasRnnCell(N, H)
        x, h = make_inputs(3)
        arc = np.array([0, 0, 1, 0, 2, 2, 3], np.int32)
        with tf.GradientTape() as tape:
            out, _ = layer(x, h, tf.constant(arc), training=True)
            loss = tf.reduce_sum(out ** 2)
        grad = tf.convert_to_tensor(tape.gradient(loss, layer.w_edges))
        norms = tf.reduce_sum(tf.abs(grad), axis=[1, 2]).numpy()
        cell = rnn.RnnSpace(N).decode(arc)
        chosen = {enas_rnn_cell.edge_index(n, p) for n, p in enumerate(cell.prev_nodes, 1)}
        assert {i for i, v in enumerate(norms) if v > 0} == chosen

    def test_edges_read_once_give_one_sparse_gradient_for_cell_and_l2(self):
        layer = enas_rnn_cell.EnasRnnCell(N, H)
        x, h = make_inputs(5)
        arc = tf.constant([0, 0, 1, 0, 2, 2, 3])
        layer(x, h, arc)

        def gradient(read_once):
            with tf.GradientTape() as tape:
                edges = layer.edge_weights_for(arc)
                out, _ = layer(x, h, arc, edge_weights=edges if read_once else None,
                               training=True)
                loss = tf.reduce_sum(out ** 2) + tf.reduce_sum(edges ** 2)
            return tape.gradient(loss, layer.w_edges)

        once, twice = gradient(True), gradient(False)
        assert isinstance(once, tf.IndexedSlices)
        assert once.indices.shape[0] == N - 1  # read twice: 2 (N - 1) rows
        assert twice.indices.shape[0] == 2 * (N - 1)
        np.testing.assert_allclose(tf.convert_to_tensor(once).numpy(),
                                   tf.convert_to_tensor(twice).numpy(), rtol=1e-5, atol=1e-7)

    def test_only_the_chosen_activation_runs(self):
        layer = enas_rnn_cell.EnasRnnCell(2, H, init_range=0.5)
        x, h = make_inputs(4)
        compiled = tf.function(lambda arc: layer(x, h, arc)[0])
        outs = [layer(x, h, tf.constant([a, 0, a]))[0].numpy() for a in range(4)]
        for i in range(4):
            np.testing.assert_allclose(compiled(tf.constant([i, 0, i])).numpy(), outs[i],
                                       rtol=1e-6)
            for j in range(i + 1, 4):
                assert not np.allclose(outs[i], outs[j])
        relu_out = layer(x, h, tf.constant([1, 0, 1]))[0]
        np.testing.assert_allclose(relu_out.numpy(), outs[1])

    def test_one_trace_for_many_arcs(self):
        layer = enas_rnn_cell.EnasRnnCell(N, H)
        x, h = make_inputs(5)
        layer(x, h, tf.zeros([7], tf.int32))  # variables exist before tracing
        step = tf.function(lambda arc: layer(x, h, arc)[1])
        rng = np.random.default_rng(5)
        for _ in range(20):
            step(tf.constant(rnn.RnnSpace(N).random_arc(rng)))
        assert step.experimental_get_tracing_count() == 1

    def test_a_bad_arc_tensor_fails_with_the_space_message(self):
        layer = enas_rnn_cell.EnasRnnCell(N, H)
        x, h = make_inputs(6)
        for bad, message in [
                ([4, 0, 0, 0, 0, 0, 0],
                 "ptb arc position 0 (node 0 activation) must be in [0, 3]. Received: 4"),
                ([0, 0, 0, 2, 0, 0, 0],
                 "ptb arc position 3 (node 2 previous node) must be in [0, 1]. Received: 2"),
                ([0, 0, 0], "ptb arc must have 7 integers")]:
            with pytest.raises(tf.errors.InvalidArgumentError) as error:
                layer(x, h, tf.constant(bad))
            assert check_message(error.value).startswith(message)
            with pytest.raises(tf.errors.InvalidArgumentError) as error:
                layer.edge_weights_for(tf.constant(bad))
            assert check_message(error.value).startswith(message)

    def test_training_a_routed_cell_needs_a_static_length(self):
        layer = enas_rnn_cell.EnasRnnCell(N, H)
        x, h = make_inputs(9)
        layer(x, h, tf.zeros([7], tf.int32))
        train = tf.function(lambda x, arc: layer(x, h, arc, training=True)[1],
                            input_signature=[tf.TensorSpec([B, None, E], tf.float32),
                                             tf.TensorSpec([7], tf.int32)])
        with pytest.raises(ValueError, match="static sequence length"):
            train(x, tf.zeros([7], tf.int32))

    def test_config_round_trip_keeps_fixed_arc(self):
        layer = enas_rnn_cell.EnasRnnCell(N, H, fixed_arc="1 0 3 0 2 1 0", init_range=0.1)
        config = keras.layers.serialize(layer)
        clone = keras.layers.deserialize(config)
        assert clone.get_config() == layer.get_config()
        assert clone.fixed_cell == layer.fixed_cell
        x, h = make_inputs(7)
        clone(x, h)
        layer(x, h)
        clone.set_weights(layer.get_weights())
        np.testing.assert_allclose(clone(x, h)[0].numpy(), layer(x, h)[0].numpy())

    def test_bad_fixed_arc_is_rejected_at_construction(self):
        with pytest.raises(ValueError, match="position 3"):
            enas_rnn_cell.EnasRnnCell(N, H, fixed_arc="1 0 3 2 2 1 0")


def autodiff_cell(wiring, x_proj, state, w_state, edge_weights, state_mask):
    """The unrolled cell differentiated by TF itself: the reference backward."""
    edges = tf.unstack(edge_weights)
    outputs = []
    for t in range(x_proj.shape[1]):
        state = wiring.step(x_proj[:, t] + tf.matmul(state * state_mask, w_state),
                            state, edges)
        outputs.append(state)
    return tf.stack(outputs, axis=1), state


class HandWrittenBackwardTest:

    @pytest.mark.parametrize("fixed", [False, True])
    def test_gradients_equal_autodiff(self, fixed):
        """The hand-written backward, of a fixed arc or of one routed in a graph."""
        rng = np.random.default_rng(11)
        space = rnn.RnnSpace(N)
        arcs = [space.random_arc(rng) for _ in range(4)]
        arcs.append(np.array([1, 0, 1, 0, 1, 1, 1], np.int32))  # relu chain: exact kinks
        x_proj = tf.constant(rng.normal(size=(B, T, 2 * H)), tf.float32)
        state = tf.constant(rng.normal(size=(B, H)), tf.float32)
        w_state = tf.constant(rng.normal(size=(H, 2 * H)) * 0.5, tf.float32)
        edges = tf.constant(rng.normal(size=(N - 1, H, 2 * H)) * 0.5, tf.float32)
        mask = tf.constant(rng.integers(0, 2, size=(B, H)) * 2.0, tf.float32)
        weights = tf.constant(rng.normal(size=(B, T, H)), tf.float32)
        inputs = [x_proj, state, w_state, edges]

        def gradients(forward):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs, final = forward(*inputs)
                loss = tf.reduce_sum(tf.tanh(outputs) * weights) + tf.reduce_sum(final ** 2)
            return tape.gradient(loss, inputs)

        def unrolled(prevs, acts):
            return gradients(lambda *a: cell_wiring.Wiring(prevs, acts).unroll(
                *a, state_mask=mask))

        routed = tf.function(lambda prevs, acts: unrolled(tf.unstack(prevs), tf.unstack(acts)))
        for arc in arcs:
            cell = space.decode(arc)
            wiring = cell_wiring.Wiring(cell.prev_nodes, cell.activations)
            want = gradients(lambda *a: autodiff_cell(wiring, *a, mask))
            got = (unrolled(cell.prev_nodes, cell.activations) if fixed else
                   routed(tf.constant(cell.prev_nodes), tf.constant(cell.activations)))
            for g, w in zip(got, want):
                np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-5)
        if not fixed:
            assert routed.experimental_get_tracing_count() == 1

    def test_unused_final_state_gradient(self):
        layer = enas_rnn_cell.EnasRnnCell(N, H)
        x, h = make_inputs(8)
        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out, _ = layer(x, h, tf.constant([0, 0, 1, 0, 2, 2, 3]))
            loss = tf.reduce_sum(out)
        assert np.all(np.isfinite(tape.gradient(loss, x).numpy()))
