"""The user's own candidate ops: op subsets, registered ops and activations, end to end.

Ops are registered once for the process, under names no other test uses.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from enas_tf.controller import macro_controller
from enas_tf.controller import micro_controller
from enas_tf.controller import rnn_controller
from enas_tf.layers import candidate_ops
from enas_tf.layers import enas_rnn_cell
from enas_tf.layers import macro_layer
from enas_tf.layers import micro_cell
from enas_tf.models import cifar_child
from enas_tf.models import ptb_child
from enas_tf.search_space import diagrams
from enas_tf.search_space import macro
from enas_tf.search_space import micro
from enas_tf.search_space import ops
from enas_tf.search_space import rnn

B, H, C = 2, 8, 4


def conv_1x1_bn(filters, strides):
    """The custom op of these tests: 1x1 conv (stride ``strides``) + BN."""
    return keras.Sequential([
        keras.layers.Conv2D(filters, 1, strides=strides, padding="same", use_bias=False),
        keras.layers.BatchNormalization()])


def wrong_filters(filters, strides):
    return keras.layers.Conv2D(filters + 1, 1, strides=strides, padding="same")


ops.register_op("macro", "test_conv_1x1", conv_1x1_bn)
ops.register_op("micro", "test_conv_1x1", conv_1x1_bn)
ops.register_op("macro", "test_wrong_filters", wrong_filters)
ops.register_op("micro", "test_not_a_layer", lambda filters, strides: tf.identity)
ops.register_op("rnn", "test_softplus", tf.nn.softplus)
ops.register_op("rnn", "test_sum", lambda x: tf.reduce_sum(x, axis=-1))

MACRO_7 = macro.OPS + ("test_conv_1x1",)


def images(seed=0, shape=(B, H, H, C)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def train_step(model, *call_args, **call_kwargs):
    """One SGD step on the mean squared output; returns (loss, how many variables moved)."""
    before = [v.numpy().copy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        out = model(*call_args, training=True, **call_kwargs)
        loss = tf.reduce_mean(tf.square(out[0] if isinstance(out, tuple) else out))
    grads = tape.gradient(loss, model.trainable_variables)
    keras.optimizers.SGD(0.1).apply_gradients(
        [(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None])
    moved = sum(not np.array_equal(b, v.numpy())
                for b, v in zip(before, model.trainable_variables))
    return float(loss), moved


class RegistryTest:

    def test_official_ops_come_first_in_the_official_order(self):
        assert ops.op_names("macro")[:6] == macro.OPS
        assert ops.op_names("micro")[:5] == micro.OPS
        assert ops.op_names("rnn")[:4] == rnn.ACTIVATIONS == ("tanh", "relu", "identity",
                                                              "sigmoid")
        assert "test_conv_1x1" in ops.op_names("macro")
        assert "test_softplus" not in ops.op_names("macro")

    @pytest.mark.parametrize("family,name,factory,match", [
        ("macro", "test_conv_1x1", conv_1x1_bn, "already registered"),
        ("macro", "conv_3x3", conv_1x1_bn, "already registered"),
        ("cnn", "x", conv_1x1_bn, "family must be one of macro, micro, rnn"),
        ("macro", "bad name", conv_1x1_bn, "op name must be"),
        ("macro", "test_fresh", "conv", "needs a callable factory"),
    ])
    def test_bad_registrations_fail_in_one_line(self, family, name, factory, match):
        with pytest.raises(ops.OpError, match=match) as err:
            ops.register_op(family, name, factory)
        assert "\n" not in str(err.value)
        assert "test_fresh" not in ops.op_names("macro")

    @pytest.mark.parametrize("make,match", [
        (lambda: macro.MacroSpace(3, ops=("conv_3x3", "nope")), "'nope'.*registered"),
        (lambda: micro.MicroSpace(2, ops=("identity", "identity")), "must not repeat"),
        (lambda: micro.MicroSpace(2, ops=()), "non-empty"),
        (lambda: rnn.RnnSpace(3, activations="tanh"), "non-empty sequence"),
        (lambda: rnn.RnnSpace(3, activations=("tanh", "test_conv_1x1")), "registered rnn"),
        (lambda: macro.MacroSpace(3, 2, ops=MACRO_7), "num_branches must be the number"),
    ])
    def test_bad_space_ops_fail_in_one_line(self, make, match):
        with pytest.raises(ValueError, match=match) as err:
            make()
        assert "\n" not in str(err.value)


class SubsetTest:

    def test_a_macro_subset_in_another_order_indexes_its_own_list(self):
        space = macro.MacroSpace(3, ops=("max_pool_3x3", "conv_5x5"))
        assert space.op_names == ("max_pool_3x3", "conv_5x5") and space.num_branches == 2
        assert [space.bounds[p] for p in space.op_positions()] == [2, 2, 2]
        net = space.decode(space.from_string("1 0 0 1 1 0"))
        assert net.op_names() == ("conv_5x5", "max_pool_3x3", "conv_5x5")
        assert "conv_5x5" in diagrams.macro_net_svg(net)
        # An official prefix is the same space as num_branches.
        assert macro.MacroSpace(3, ops=macro.OPS[:4]).op_names == macro.MacroSpace(3, 4).op_names

    def test_a_macro_child_of_a_subset_builds_its_ops_and_trains(self):
        names = ("max_pool_3x3", "conv_3x3")
        model = cifar_child.MacroChild(num_layers=2, out_filters=C, ops=names)
        model.build((None, H, H, 3))
        assert all(tuple(op.name for op in layer.ops) == names for layer in model.macro_layers)
        arc = tf.constant(model.space.from_string("1 0 1"))
        loss, moved = train_step(model, images(shape=(B, H, H, 3)), arc)
        assert np.isfinite(loss) and moved > 0
        fixed = cifar_child.MacroChild(num_layers=2, out_filters=C, ops=names,
                                       fixed_arc="0 1 1")
        fixed.build((None, H, H, 3))
        assert [layer.ops[0].name for layer in fixed.macro_layers] == ["max_pool_3x3",
                                                                       "conv_3x3"]

    def test_a_micro_subset_in_another_order_builds_and_trains(self):
        names = ("identity", "sep_conv_3x3")
        space = micro.MicroSpace(2, ops=names)
        assert [space.bounds[p] for p in space.op_positions()] == [2] * 8
        model = cifar_child.MicroChild(num_layers=1, out_filters=C, num_nodes=2, ops=names)
        model.build((None, H, H, 3))
        cell = model.cells[0]
        assert [op.name for op in cell.node_ops[0]] == ["node0_x0_identity",
                                                        "node0_x0_sep_conv_3x3"]
        arc = tf.constant(space.random_arc(np.random.default_rng(0)))
        loss, moved = train_step(model, images(shape=(B, H, H, 3)), arc)
        assert np.isfinite(loss) and moved > 0


class CustomCifarOpTest:

    def test_the_custom_macro_op_is_in_the_space_and_the_arc(self):
        space = macro.MacroSpace(2, ops=MACRO_7)
        assert space.bounds[0] == 7 and space.op_names[6] == "test_conv_1x1"
        net = space.decode([6, 0, 1])
        assert net.op_names() == ("test_conv_1x1", "conv_3x3")
        svg = diagrams.macro_net_svg(net)
        assert ">0: test_conv_1x1<" in svg

    def test_the_custom_macro_op_runs_when_chosen_and_only_then_learns(self):
        layer = macro_layer.MacroSearchLayer(0, C, ops=MACRO_7)
        x = [tf.constant(images())]
        outs = {op: layer(x, tf.constant([op]), training=True).numpy() for op in range(7)}
        custom = layer.ops[6]
        assert isinstance(custom.copies[0], keras.Sequential)
        np.testing.assert_allclose(outs[6], custom(x[0], training=True).numpy(), rtol=1e-5,
                                   atol=1e-5)
        assert all(not np.allclose(outs[6], outs[op]) for op in range(6))
        for op in (6, 0):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(x, tf.constant([op]), training=True) ** 2)
            grads = tape.gradient(loss, custom.trainable_variables)
            moved = [g is not None and bool(np.any(g.numpy() != 0)) for g in grads]
            assert moved == [op == 6] * len(grads)

    def test_a_fixed_macro_layer_of_the_custom_op_holds_only_it(self):
        layer = macro_layer.MacroFixedLayer(0, C, 6, (), ops=MACRO_7)
        out = layer([images()], training=True)
        assert out.shape == (B, H, H, C)
        assert [op.op_name for op in layer.ops] == ["test_conv_1x1"]

    def test_a_micro_search_cell_keeps_a_copy_per_input_and_runs_the_chosen_one(self):
        names = ("test_conv_1x1", "identity")
        space = micro.MicroSpace(1, ops=names)
        cell = micro_cell.MicroSearchCell(C, 1, ops=names)
        x = [tf.constant(images(1)), tf.constant(images(2))]
        cell.build([x[0].shape, x[1].shape])
        custom = cell.node_ops[0][0]  # node 0's first input, op 0
        assert len(custom.copies) == 2  # one per input the node may read
        weights = [v for copy in custom.copies for v in copy.trainable_weights]

        def moved(normal_node):
            arc = space.encode(micro.MicroArc(micro.MicroCell((normal_node,)),
                                              micro.MicroCell(((0, 1, 1, 1),))))
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(cell(x, tf.constant(arc), training=True) ** 2)
            return [g is not None and bool(np.any(g.numpy() != 0))
                    for g in tape.gradient(loss, weights)]

        per_copy = len(weights) // 2
        # Input 1 through the custom op: only its copy for input 1 learns.
        assert moved((1, 0, 0, 1)) == [False] * per_copy + [True] * per_copy
        assert moved((0, 0, 0, 1)) == [True] * per_copy + [False] * per_copy
        assert not any(moved((1, 1, 0, 1)))

    def test_a_compiled_search_step_trains_the_custom_op_only_when_chosen(self):
        names = ("identity", "test_conv_1x1")
        model = cifar_child.MicroChild(num_layers=1, out_filters=C, num_nodes=1, ops=names)
        model.build((None, H, H, 3))
        custom = [v for cell in model.cells for op in cell.node_ops[0]
                  if isinstance(op, candidate_ops.CustomOp) for v in op.trainable_weights]

        @tf.function
        def gradients(arc):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(model(images(shape=(B, H, H, 3)), arc,
                                            training=True) ** 2)
            return tape.gradient(loss, custom)

        def learns(arc):
            grads = gradients(tf.constant(model.space.from_string(arc)))
            return any(g is not None and np.any(g.numpy() != 0) for g in grads)

        assert learns("0 1 1 0 0 0 1 0") and not learns("0 0 1 0 0 0 1 0")
        assert gradients.experimental_get_tracing_count() == 1

    def test_a_fixed_micro_child_strides_the_custom_op_and_draws_it(self):
        names = ("test_conv_1x1", "sep_conv_3x3", "identity")
        arc = "0 0 1 2 0 0 1 2"  # node 0: input 0 via the custom op, input 1 via identity
        model = cifar_child.MicroChild(num_layers=1, out_filters=C, num_nodes=1, ops=names,
                                       fixed_arc=arc)
        model.build((None, H, H, 3))
        reduction = model.cells[1]
        assert reduction.reduction and reduction.node_ops[0][0].strides == 2
        assert reduction.node_ops[0][0].name == "node0_x0_test_conv_1x1"
        loss, moved = train_step(model, images(shape=(B, H, H, 3)))
        assert np.isfinite(loss) and moved > 0
        svg = diagrams.micro_cells_svg(model.fixed_view())
        assert svg.count(">test_conv_1x1<") == 2 and svg.count(">identity<") == 2

    def test_a_factory_of_the_wrong_shape_fails_naming_its_op(self):
        layer = macro_layer.MacroSearchLayer(0, C, ops=("conv_3x3", "test_wrong_filters"))
        with pytest.raises(ops.OpError, match=r"macro op 'test_wrong_filters'.*"
                                              r"\(2, 8, 8, 4\).*Received: \(2, 8, 8, 5\)") as err:
            layer.build([(B, H, H, C)])
        assert "\n" not in str(err.value)
        cell = micro_cell.MicroSearchCell(C, 1, ops=("test_not_a_layer",))
        with pytest.raises(ops.OpError, match="'test_not_a_layer'.*keras.layers.Layer"):
            cell.build([(B, H, H, C), (B, H, H, C)])

    def test_children_with_custom_ops_round_trip_their_config(self):
        model = cifar_child.MacroChild(num_layers=2, out_filters=C, ops=MACRO_7,
                                       fixed_arc="6 0 1")
        config = json.loads(json.dumps(model.get_config()))  # names, not callables
        assert config["ops"] == list(MACRO_7) and config["num_branches"] == 7
        clone = cifar_child.MacroChild.from_config(config)
        assert clone.space.op_names == MACRO_7 and clone.fixed_arc == "6 0 1"
        x = images(shape=(B, H, H, 3))
        model(x)
        clone(x)
        clone.set_weights(model.get_weights())
        np.testing.assert_allclose(clone(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
        micro_model = cifar_child.MicroChild(num_layers=1, out_filters=C, num_nodes=1,
                                             ops=("identity", "test_conv_1x1"))
        micro_clone = cifar_child.MicroChild.from_config(
            json.loads(json.dumps(micro_model.get_config())))
        assert micro_clone.space.op_names == ("identity", "test_conv_1x1")
        layer = macro_layer.MacroSearchLayer(1, C, ops=MACRO_7)
        assert macro_layer.MacroSearchLayer.from_config(layer.get_config()).op_names == MACRO_7


class ControllerTest:

    def test_a_macro_controller_over_seven_ops_samples_every_one(self):
        ctrl = macro_controller.MacroController(4, ops=MACRO_7, lstm_size=8)
        sample = ctrl.sample_batch(tf.constant([[s, 1] for s in range(48)]))
        arcs = sample.arc.numpy()
        assert arcs.shape == (48, ctrl.space.arc_length)
        assert set(arcs[:, ctrl.space.op_positions()].ravel()) == set(range(7))
        assert ctrl.w_soft.shape == (8, 7) and ctrl.w_emb.shape == (7, 8)
        clone = macro_controller.MacroController.from_config(ctrl.get_config())
        assert clone.space.op_names == MACRO_7

    def test_the_micro_controller_favours_the_separable_convolutions_by_name(self):
        ctrl = micro_controller.MicroController(
            2, ops=("identity", "test_conv_1x1", "sep_conv_5x5"), lstm_size=8)
        ctrl.build()
        np.testing.assert_array_equal(ctrl.b_soft.numpy(), [0.0, 0.0, 10.0])
        np.testing.assert_array_equal(ctrl.normal_bias.numpy(), [-0.25, -0.25, 0.25])
        arc = ctrl.sample(tf.constant([0, 1])).arc.numpy()
        ctrl.space.validate(arc)

    def test_an_rnn_controller_samples_the_space_activations(self):
        names = ("test_softplus", "tanh", "sigmoid")
        ctrl = rnn_controller.RnnController(3, lstm_size=8, activations=names)
        arcs = ctrl.sample_batch(tf.constant([[s, 2] for s in range(32)])).arc.numpy()
        assert set(arcs[:, ctrl.space.op_positions()].ravel()) == {0, 1, 2}
        assert rnn_controller.RnnController.from_config(
            ctrl.get_config()).space.op_names == names


class CustomActivationTest:
    NAMES = ("tanh", "test_softplus")

    def test_the_custom_activation_is_in_the_space_and_the_diagram(self):
        space = rnn.RnnSpace(3, activations=self.NAMES)
        assert [space.bounds[p] for p in space.op_positions()] == [2, 2, 2]
        cell = space.decode([1, 0, 0, 1, 1])
        assert cell.activation_names() == ("test_softplus", "tanh", "test_softplus")
        assert ">0: test_softplus<" in diagrams.rnn_cell_svg(cell)

    @pytest.mark.parametrize("compiled", [False, True])
    def test_the_custom_activation_runs_and_its_backward_equals_autodiff(self, compiled):
        """Node 0 alone sets the output of a one-node-reading chain; compare softplus to tanh."""
        rng = np.random.default_rng(0)
        x = tf.constant(rng.normal(size=(B, 3, 5)), tf.float32)
        h = tf.constant(rng.normal(size=(B, 6)), tf.float32)
        layer = enas_rnn_cell.EnasRnnCell(3, 6, init_range=0.5, activations=self.NAMES)
        run = layer if not compiled else tf.function(
            lambda x, h, arc, training: layer(x, h, arc, training=training))
        custom, official = tf.constant([1, 0, 1, 1, 1]), tf.constant([0, 0, 1, 1, 1])
        out_custom, _ = run(x, h, custom, training=False)
        out_official, _ = run(x, h, official, training=False)
        assert not np.allclose(out_custom.numpy(), out_official.numpy())
        # The hand-written backward (training, static length) against autodiff
        # (the same cell evaluated without training: plain TF ops).
        fixed = enas_rnn_cell.EnasRnnCell(3, 6, init_range=0.5, activations=self.NAMES,
                                          fixed_arc="1 0 1 1 1")
        fixed(x, h)
        fixed.set_weights([layer.w_input.numpy(), layer.w_state.numpy(),
                           layer.w_edges.numpy()[[0, 2]]])

        def gradients(training):
            with tf.GradientTape() as tape:
                outputs, final = fixed(x, h, training=training)
                loss = tf.reduce_sum(tf.tanh(outputs)) + tf.reduce_sum(final ** 2)
            return tape.gradient(loss, fixed.trainable_weights)

        for got, want in zip(gradients(True), gradients(False)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(fixed(x, h)[0].numpy(), out_custom.numpy(), rtol=1e-5,
                                   atol=1e-6)

    def test_a_ptb_child_with_the_custom_activation_trains_and_round_trips(self):
        model = ptb_child.PtbChild(20, 6, 3, activations=self.NAMES)
        tokens = tf.constant(np.random.default_rng(1).integers(0, 20, size=(B, 4)), tf.int32)
        arc = tf.constant([1, 0, 1, 1, 0])
        loss, moved = train_step(model, tokens, model.initial_state(B), arc,
                                 seed=tf.constant([1, 2]))
        assert np.isfinite(loss) and moved > 0
        config = json.loads(json.dumps(model.get_config()))
        assert config["activations"] == list(self.NAMES)
        assert ptb_child.PtbChild.from_config(config).activations == self.NAMES

    def test_a_non_elementwise_activation_fails_naming_it(self):
        with pytest.raises(ops.OpError, match="rnn op 'test_sum' must be elementwise") as err:
            enas_rnn_cell.EnasRnnCell(3, 6, activations=("tanh", "test_sum"))
        assert "\n" not in str(err.value)
