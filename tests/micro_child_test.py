"""The micro cell and child: dispatch, slots, loose ends, tracing, fixed mode, heads."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from arc_check_support import check_message
from enas_tf.layers import micro_cell
from enas_tf.models import cifar_child
from enas_tf.search_space import arcs
from enas_tf.search_space import known_arcs
from enas_tf.search_space import micro

B, H, C = 2, 8, 4
SEP3, SEP5, AVG, MAX, IDENTITY = range(5)


def images(seed=0, shape=(B, H, H, C)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def arc_of(normal, reduction=None):
    """A flat micro arc from node tuples (reduction defaults to the normal cell)."""
    space = micro.MicroSpace(len(normal))
    return tf.constant(space.encode(micro.MicroArc(
        micro.MicroCell(tuple(normal)), micro.MicroCell(tuple(reduction or normal)))))


def nonzero_rows(grad):
    """Which slots (leading axis) of a gradient are not all zero."""
    grad = np.abs(tf.convert_to_tensor(grad).numpy())
    return (grad.reshape(grad.shape[0], -1).sum(axis=1) > 0).tolist()


class MicroCellTest:

    def test_search_node_runs_the_chosen_ops_on_the_chosen_inputs(self):
        x0, x1 = images(0), images(1)
        cell = micro_cell.MicroSearchCell(C, num_nodes=1)
        outs = []
        for op1, op2 in [(SEP3, AVG), (SEP5, AVG), (MAX, IDENTITY), (AVG, SEP3)]:
            out = cell([x0, x1], arc_of([(1, op1, 1, op2)]), training=True).numpy()
            node = (cell.node_ops[0][op1](x1, training=True, slot=1)
                    + cell.node_ops[1][op2](x1, training=True, slot=1))
            # Input 0 is a loose end too (official); input 1 is read.
            want = cell.combine(tf.concat([x0, tf.zeros_like(x1), node], -1), training=True)
            np.testing.assert_allclose(out, want.numpy(), rtol=1e-4, atol=1e-4)
            outs.append(out)
        for i in range(len(outs)):
            for j in range(i + 1, len(outs)):
                assert not np.allclose(outs[i], outs[j])

    def test_only_the_chosen_ops_and_weight_copies_get_gradients(self):
        x0, x1 = images(2), images(3)
        cell = micro_cell.MicroSearchCell(C, num_nodes=2)
        cell.build([x0.shape, x1.shape])
        nodes = [(0, SEP5, 1, IDENTITY), (2, SEP3, 0, SEP3)]
        variables = [[op.trainable_variables for op in ops] for ops in cell.node_ops]

        @tf.function
        def grads(arc):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(cell([x0, x1], arc, training=True) ** 2)
            return tape.gradient(loss, variables)

        chosen = {(b, p): node[2 * p:2 * p + 2] for b, node in enumerate(nodes) for p in (0, 1)}
        positions = [(b, p) for b in range(2) for p in (0, 1)]  # the order of node_ops
        for (b, p), per_op in zip(positions, grads(arc_of(nodes))):
            source, op = chosen[(b, p)]
            for k, op_grads in enumerate(per_op):
                for grad in op_grads:
                    want = [k == op and slot == source for slot in range(b + 2)]
                    assert nonzero_rows(grad) == want, (b, p, micro.OPS[k])

    @pytest.mark.parametrize("nodes", [
        [(0, SEP3, 0, IDENTITY), (2, AVG, 0, SEP5)],  # input 0 read three times
        [(1, MAX, 0, SEP3), (2, IDENTITY, 2, SEP3)],  # node 0 read twice
    ])
    def test_compiled_gradients_equal_eager_ones(self, nodes):
        # Eagerly the arc is read by value and indexed in Python; compiled,
        # every read is routed and so is its gradient.
        inputs = [tf.constant(images(8)), tf.constant(images(9))]
        cell = micro_cell.MicroSearchCell(C, num_nodes=2)
        cell.build([x.shape for x in inputs])
        arc = arc_of(nodes)

        def grads(arc, *inputs):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                loss = tf.reduce_sum(cell(list(inputs), arc, training=True) * inputs[0])
            sources = list(inputs) + cell.trainable_variables
            return [tf.zeros_like(x) if g is None else tf.convert_to_tensor(g)
                    for g, x in zip(tape.gradient(loss, sources), sources)]

        got = tf.function(grads)(arc, *inputs)
        for g, want in zip(got, grads(arc, *inputs)):
            np.testing.assert_allclose(g.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)

    def test_combine_weights_of_read_states_get_no_gradient(self):
        x0, x1 = images(4), images(5)
        cell = micro_cell.MicroSearchCell(C, num_nodes=2)
        arc = arc_of([(1, SEP3, 1, MAX), (2, AVG, 1, SEP5)])  # states 0 and 3 are loose
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(cell([x0, x1], arc, training=True) * x0)
        kernel = cell.combine.kernel
        grad = tape.gradient(loss, kernel).numpy().reshape(4, C, C)
        assert nonzero_rows(grad) == [True, False, False, True]

    def test_search_cell_calibrates_inputs_to_its_size(self):
        cell = micro_cell.MicroSearchCell(2 * C, num_nodes=2, reduction=True)
        arc = arc_of([(0, SEP3, 1, AVG), (2, MAX, 0, IDENTITY)])
        out = cell([images(6, (B, 2 * H, 2 * H, 3 * C)), images(7)], arc, training=True)
        assert out.shape == (B, H // 2, H // 2, 2 * C)
        assert [block.strides for block in cell.calibrate] == [4, 2]

    def test_fixed_cell_owns_only_the_chosen_ops(self):
        nodes = [(0, SEP3, 1, IDENTITY), (0, AVG, 2, SEP5)]  # only node 1 is loose
        cell = micro_cell.MicroFixedCell(C, num_nodes=2, nodes=nodes)
        out = cell([images(8), images(9)], training=True)
        assert [[op.name for op in ops] for ops in cell.node_ops] == [
            ["node0_x0_sep_conv_3x3"], ["node0_x1_identity"],
            ["node1_x0_avg_pool_3x3"], ["node1_x1_sep_conv_5x5"]]
        assert cell.loose_ends == (3,) and out.shape == (B, H, H, C)
        assert all(len(w.shape) <= 4 for w in cell.weights)  # no per-input copies

    def test_fixed_reduction_cell_strides_its_inputs_and_reduces_loose_inputs(self):
        nodes = [(0, MAX, 0, SEP3), (2, IDENTITY, 0, AVG)]  # input 1 and node 1 loose
        cell = micro_cell.MicroFixedCell(2 * C, num_nodes=2, reduction=True, nodes=nodes)
        out = cell([images(10), images(11)], training=True)
        assert cell.loose_ends == (1, 3)
        assert out.shape == (B, H // 2, H // 2, 2 * 2 * C)
        assert [op.strides for ops in cell.node_ops for op in ops] == [2, 2, 1, 2]

    def test_a_bad_arc_fails_naming_its_position_in_the_whole_arc(self):
        cell = micro_cell.MicroSearchCell(C, num_nodes=2)
        x = [images(12), images(13)]
        cell.build([x[0].shape, x[1].shape])
        good = [0, 0, 1, 0, 2, 0, 1, 0] * 2
        assert cell(x, tf.constant(good)).shape == (B, H, H, C)
        for position, value, message in [
                (0, 2, "position 0 (normal cell node 0 input 1) must be in [0, 1]. Received: 2"),
                (1, 5, "position 1 (normal cell node 0 op 1) must be in [0, 4]. Received: 5"),
                (4, 4, "position 4 (normal cell node 1 input 1) must be in [0, 2]. Received: 4"),
                (13, 9, "position 13 (reduction cell node 1 op 1) must be in [0, 4]. "
                        "Received: 9")]:
            bad = list(good)
            bad[position] = value
            with pytest.raises(tf.errors.InvalidArgumentError) as error:
                cell(x, tf.constant(bad))
            assert check_message(error.value) == f"micro arc {message}"
        with pytest.raises(ValueError, match="nodes must be"):
            micro_cell.MicroFixedCell(C, num_nodes=1, nodes=[(0, 0, 2, 0)])

    def test_drop_path_keeps_the_expected_value(self):
        x = tf.ones([4000, 1, 1, 2])
        seed = keras.random.SeedGenerator(7)
        dropped = micro_cell.drop_path(x, 0.6, seed).numpy()
        values = np.unique(dropped)
        assert len(values) == 2 and np.allclose(values, [0.0, 1 / 0.6])
        assert np.all(dropped[:, ..., 0] == dropped[:, ..., 1])  # whole examples
        assert dropped.mean() == pytest.approx(1.0, abs=0.05)

    def test_config_round_trip(self):
        for cell in (micro_cell.MicroSearchCell(C, num_nodes=2, reduction=True),
                     micro_cell.MicroFixedCell(C, num_nodes=1, nodes=[(0, 1, 1, 4)])):
            clone = keras.layers.deserialize(keras.layers.serialize(cell))
            assert clone.get_config() == cell.get_config()


class MicroChildTest:

    @pytest.mark.slow  # many compiled steps: 13 s
    def test_one_trace_serves_every_arc_in_a_train_step_with_aux_loss(self):
        model = cifar_child.MicroChild(num_layers=1, out_filters=C, num_nodes=2,
                                       use_aux_heads=True)
        x, y = images(20, (B, 32, 32, 3)), tf.constant([3, 4])
        model.build(x.shape)
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
        optimizer.build(model.trainable_variables)
        rng = np.random.default_rng(0)

        @tf.function
        def step(arc):
            with tf.GradientTape() as tape:
                logits, aux_logits = model(x, arc, training=True)
                loss = sum(weight * tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(y, out))
                    for weight, out in ((1.0, logits), (0.4, aux_logits)))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        for _ in range(5):
            assert np.isfinite(step(tf.constant(model.space.random_arc(rng))).numpy())
        assert step.experimental_get_tracing_count() == 1

    def test_heads_and_batch_statistics_of_the_search_model(self):
        model = cifar_child.MicroChild(num_layers=1, out_filters=C, num_nodes=2,
                                       use_aux_heads=True)
        x = images(21, (B, 32, 32, 3))
        arc = tf.constant(model.space.random_arc(np.random.default_rng(1)))
        logits, aux_logits = model(x, arc, training=True)
        assert logits.shape == aux_logits.shape == (B, 10)
        assert model.aux_index == 2
        inference = model(x, arc, training=False)  # logits only, batch statistics
        np.testing.assert_allclose(inference.numpy(), logits.numpy(), rtol=1e-4, atol=1e-5)

    @pytest.mark.slow  # inspects a compiled graph: 7 s
    def test_the_search_model_checks_the_arc_once_per_call(self):
        model = cifar_child.MicroChild(num_layers=1, out_filters=C, num_nodes=2)
        traced = tf.function(lambda x, arc: model(x, arc, training=True)).get_concrete_function(
            tf.TensorSpec((B, H, H, 3)), tf.TensorSpec([model.space.arc_length], tf.int32))
        asserts = [op for op in traced.graph.get_operations() if op.type == "Assert"]
        assert len(asserts) == 1

    def test_fixed_model_doubles_filters_at_reductions_and_owns_chosen_ops(self):
        arc = "0 4 1 2 2 0 0 3 1 1 1 0 2 4 0 2"
        model = cifar_child.MicroChild(num_layers=3, out_filters=C, num_nodes=2,
                                       fixed_arc=arc, use_aux_heads=True)
        logits, aux_logits = model(images(22, (B, 32, 32, 3)), training=True)
        assert logits.shape == aux_logits.shape == (B, 10)
        assert [cell.filters for cell in model.cells] == [C, 2 * C, 2 * C, 4 * C, 4 * C]
        assert [cell.reduction for cell in model.cells] == [False, True, False, True, False]
        assert all(len(ops) == 1 for cell in model.cells for ops in cell.node_ops)
        assert model(images(22, (B, 32, 32, 3))).shape == (B, 10)

    def test_drop_path_follows_the_official_schedule(self):
        model = cifar_child.MicroChild(num_layers=3, out_filters=C, num_nodes=2,
                                       drop_path_keep_prob=0.6, fixed_arc=[0] * 16)
        x = images(23, (4, 16, 16, 3))
        model.drop_path_progress.assign(0.0)
        np.testing.assert_allclose(model(x, training=True).numpy(),
                                   model(x, training=True).numpy(), rtol=1e-5)
        model.drop_path_progress.assign(0.5)
        assert float(model.drop_path_keep(4)) == pytest.approx(1 - 0.5 * 5 / 5 * 0.4)
        assert float(model.drop_path_keep(0)) == pytest.approx(1 - 0.5 * 1 / 5 * 0.4)
        assert not np.allclose(model(x, training=True).numpy(),
                               model(x, training=True).numpy())
        search = cifar_child.MicroChild(num_layers=3, drop_path_keep_prob=0.6)
        assert search.drop_path_progress is None and search.drop_path_keep(0) is None

    def test_out_of_range_or_short_arcs_fail_with_the_space_message(self):
        model = cifar_child.MicroChild(num_layers=1, out_filters=C, num_nodes=1)
        x = images(24, (B, 16, 16, 3))
        for bad in ([0, 0, 1, 0, 0, 0, 2, 0], [0, 5, 1, 0, 0, 0, 1, 0], [0, 0, 1, 0]):
            with pytest.raises(tf.errors.InvalidArgumentError) as error:
                model(x, tf.constant(bad))
            with pytest.raises(arcs.ArcError) as host_error:
                model.space.validate(bad)
            assert check_message(error.value) == str(host_error.value)
        with pytest.raises(ValueError, match="arc=None"):
            model(x)

    def test_config_round_trip_rebuilds_the_same_network(self):
        model = cifar_child.MicroChild(num_layers=1, out_filters=C, num_nodes=1,
                                       keep_prob=0.8, drop_path_keep_prob=0.6,
                                       use_aux_heads=True, fixed_arc="1 3 0 4 0 2 1 0")
        clone = cifar_child.MicroChild.from_config(model.get_config())
        assert clone.get_config() == model.get_config()
        x = images(25, (B, 32, 32, 3))
        model(x)
        clone(x)
        clone.set_weights(model.get_weights())
        np.testing.assert_allclose(clone(x).numpy(), model(x).numpy(), rtol=1e-5)

    @pytest.mark.parametrize("fixed_arc", [None, "0 4 1 2 2 0 0 3 1 1 1 0 2 4 0 2"])
    def test_checkpoint_restores_every_variable(self, fixed_arc, tmp_path):
        model, fresh = (cifar_child.MicroChild(num_layers=1, out_filters=C, num_nodes=2,
                                               use_aux_heads=True, drop_path_keep_prob=0.6,
                                               fixed_arc=fixed_arc) for _ in range(2))
        x = images(26, (B, 32, 32, 3))
        arc = None if fixed_arc else tf.constant(model.space.random_arc(np.random.default_rng(3)))
        model(x, arc, training=True)
        want, _ = model(x, arc).numpy(), fresh(x, arc, training=True)
        path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
        saved = [name for name, _ in tf.train.list_variables(path) if name.startswith("model/")]
        assert len(saved) == len(model.weights)
        tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
        np.testing.assert_allclose(fresh(x, arc).numpy(), want, rtol=1e-5, atol=1e-6)

    def test_fixed_model_exports_as_a_saved_model(self, tmp_path):
        model = cifar_child.MicroChild(num_layers=1, out_filters=C, num_nodes=2,
                                       use_aux_heads=True,
                                       fixed_arc="0 4 1 2 2 0 0 3 1 1 1 0 2 4 0 2")
        x = images(27, (B, 32, 32, 3))
        model(x, training=True)
        module = tf.Module()
        module.model = model
        module.serve = tf.function(lambda images: model(images), input_signature=[
            tf.TensorSpec([None, 32, 32, 3], tf.float32)])
        tf.saved_model.save(module, str(tmp_path))
        loaded = tf.saved_model.load(str(tmp_path))
        np.testing.assert_allclose(loaded.serve(x[:1]).numpy(), model(x[:1]).numpy(),
                                   rtol=1e-5, atol=1e-6)

    def test_the_official_final_arc_builds(self):
        model = cifar_child.MicroChild(num_layers=15, out_filters=36, num_nodes=5,
                                       fixed_arc=known_arcs.CIFAR_MICRO_FINAL,
                                       use_aux_heads=True)
        model.build((None, 32, 32, 3))  # variables only, no forward pass

        def count(weights):
            return sum(int(np.prod(w.shape)) for w in weights)
        # Paper: 4.6M. Equal to the official code's count (aux head excluded).
        assert count(model.trainable_weights) - count(model.aux_head.trainable_weights) \
            == 3_894_372
        assert count(model.aux_head.trainable_weights) == 494_848
