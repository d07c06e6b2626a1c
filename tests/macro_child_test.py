"""The macro layer and child: dispatch, skips, gradients, tracing, fixed mode, config."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from arc_check_support import check_message
from enas_tf.layers import macro_layer
from enas_tf.models import cifar_child
from enas_tf.search_space import arcs
from enas_tf.search_space import known_arcs
from enas_tf.search_space import macro

B, H, C = 2, 8, 4


def images(seed=0, shape=(B, H, H, C)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def arc_of(ops, skips):
    return tf.constant(macro.MacroSpace(len(ops)).encode(macro.MacroNet(ops, skips)))


def nonzero(grads):
    return [g is not None and bool(np.any(tf.convert_to_tensor(g).numpy() != 0))
            for g in grads]


class MacroLayerTest:

    def test_only_the_chosen_op_runs_and_equals_the_fixed_op(self):
        x = [images()]
        search = macro_layer.MacroSearchLayer(0, C)
        outs = []
        for op in range(len(macro.OPS)):
            out = search(x, arc_of([op], [()]), training=True).numpy()
            fixed = macro_layer.MacroFixedLayer(0, C, op, ())
            fixed.build([x[0].shape])
            fixed.set_weights(search.ops[op].get_weights())
            np.testing.assert_allclose(fixed(x, training=True).numpy(), out, rtol=1e-5,
                                       atol=1e-5)
            outs.append(out)
        for i in range(len(outs)):
            for j in range(i + 1, len(outs)):
                assert not np.allclose(outs[i], outs[j]), (macro.OPS[i], macro.OPS[j])

    def test_search_adds_the_chosen_skips_then_normalizes(self):
        inputs = [images(1), images(2), images(3)]
        layer = macro_layer.MacroSearchLayer(3, C)
        arc = macro.MacroSpace(4).encode(macro.MacroNet(
            (0, 0, 0, 2), ((), (0,), (0, 0), (1, 0, 1))))
        out = layer(inputs, tf.constant(arc), training=True).numpy()
        summed = layer.ops[2](inputs[-1], training=True).numpy() + inputs[0] + inputs[2]
        want = (summed - summed.mean((0, 1, 2))) / np.sqrt(summed.var((0, 1, 2)) + 1e-3)
        np.testing.assert_allclose(out, want, rtol=1e-3, atol=1e-3)

    def test_skip_inputs_not_chosen_get_zero_gradients(self):
        inputs = [tf.constant(images(s)) for s in (1, 2, 3)]
        layer = macro_layer.MacroSearchLayer(3, C)
        arc = macro.MacroSpace(4).encode(macro.MacroNet(
            (0, 0, 0, 4), ((), (0,), (0, 0), (1, 0, 0))))
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(layer(inputs, tf.constant(arc), training=True) * images(9))
        assert nonzero(tape.gradient(loss, inputs)) == [True, False, True]

    def test_only_the_chosen_ops_weights_get_gradients(self):
        inputs = [images(4), images(5)]
        layer = macro_layer.MacroSearchLayer(2, C)
        layer.build([x.shape for x in inputs])

        @tf.function
        def grads(arc):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(inputs, arc, training=True) * inputs[0])
            return tape.gradient(loss, [op.trainable_variables for op in layer.ops])

        for chosen in (1, 4):
            arc = arc_of([0, 0, chosen], [(), (0,), (1, 0)])
            for op, op_grads in enumerate(grads(arc)):
                assert nonzero(op_grads) == [op == chosen] * len(op_grads), macro.OPS[op]

    def test_fixed_layer_concatenates_skips_into_a_1x1_conv(self):
        inputs = [images(6), images(7), images(8)]
        layer = macro_layer.MacroFixedLayer(3, C, 4, (1, 0, 1))
        out = layer(inputs, training=False)
        assert out.shape == (B, H, H, C)
        assert [op.name for op in layer.ops] == ["avg_pool_3x3"]
        assert layer.skip_conv.kernel.shape == (1, 1, 3 * C, C)

    def test_a_fixed_layer_rejects_an_op_or_skips_it_cannot_have(self):
        with pytest.raises(ValueError, match=r"^op must be in \[0, 3\]. Received: op=4$"):
            macro_layer.MacroFixedLayer(2, C, 4, (0, 1), num_branches=4)
        with pytest.raises(ValueError,
                           match=r"^layer 2 needs 2 skip bits. Received: skips=\(1,\)$"):
            macro_layer.MacroFixedLayer(2, C, 0, (1,))

    def test_a_bad_arc_fails_naming_its_position_in_the_whole_arc(self):
        layer = macro_layer.MacroSearchLayer(2, C, num_branches=4)
        inputs = [images(9), images(10)]
        layer.build([x.shape for x in inputs])
        whole = [0, 1, 0, 2, 1, 1, 3, 0, 0, 1]  # a 4-layer arc: the layer reads 6 of it
        assert layer(inputs, tf.constant(whole)).shape == (B, H, H, C)
        for position, value, message in [
                (1, 4, "macro arc position 1 (layer 1 op) must be in [0, 3]. Received: 4"),
                (5, 2, "macro arc position 5 (layer 2 skip from layer 1) must be in [0, 1]. "
                       "Received: 2")]:
            bad = list(whole)
            bad[position] = value
            with pytest.raises(tf.errors.InvalidArgumentError) as error:
                layer(inputs, tf.constant(bad))
            assert check_message(error.value) == message
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            layer(inputs, tf.constant(whole[:4]))
        assert check_message(error.value).startswith(
            "macro arc must have 6 integers (L + L(L-1)/2 for L=3 layers")

    def test_config_round_trip(self):
        for layer in (macro_layer.MacroSearchLayer(2, C, num_branches=4),
                      macro_layer.MacroFixedLayer(2, C, 3, (0, 1))):
            clone = keras.layers.deserialize(keras.layers.serialize(layer))
            assert clone.get_config() == layer.get_config()


class MacroChildTest:

    def test_search_model_gives_logits_for_random_arcs(self):
        model = cifar_child.MacroChild(num_layers=4, out_filters=C)
        rng = np.random.default_rng(0)
        x = images(10, (B, H, H, 3))
        for _ in range(3):
            logits = model(x, tf.constant(model.space.random_arc(rng)), training=True)
            assert logits.shape == (B, 10) and np.all(np.isfinite(logits.numpy()))

    @pytest.mark.slow  # many compiled steps: 5 s
    def test_one_trace_serves_every_arc_in_a_train_step(self):
        model = cifar_child.MacroChild(num_layers=3, out_filters=C)
        x, y = images(11, (B, H, H, 3)), tf.constant([1, 2])
        rng = np.random.default_rng(1)
        model.build(x.shape)
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
        optimizer.build(model.trainable_variables)

        @tf.function
        def step(arc):
            with tf.GradientTape() as tape:
                logits = model(x, arc, training=True)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        for _ in range(6):
            assert np.isfinite(step(tf.constant(model.space.random_arc(rng))).numpy())
        assert step.experimental_get_tracing_count() == 1

    @pytest.mark.slow  # inspects a compiled graph: 5 s
    def test_the_search_model_checks_the_arc_once_per_call(self):
        model = cifar_child.MacroChild(num_layers=3, out_filters=C)
        traced = tf.function(lambda x, arc: model(x, arc, training=True)).get_concrete_function(
            tf.TensorSpec((B, H, H, 3)), tf.TensorSpec([model.space.arc_length], tf.int32))
        asserts = [op for op in traced.graph.get_operations() if op.type == "Assert"]
        assert len(asserts) == 1

    def test_fixed_model_owns_only_the_chosen_ops_and_doubles_channels(self):
        arc = "4 5 1 0 0 0 3 0 1 1"  # 4 layers, pools after layers 0 and 1
        fixed = cifar_child.MacroChild(num_layers=4, out_filters=C, fixed_arc=arc)
        logits = fixed(images(12, (B, H, H, 3)), training=True)
        assert logits.shape == (B, 10)
        assert [[op.name for op in layer.ops] for layer in fixed.macro_layers] == [
            ["avg_pool_3x3"], ["max_pool_3x3"], ["conv_3x3"], ["sep_conv_5x5"]]
        assert [layer.filters for layer in fixed.macro_layers] == [C, 2 * C, 4 * C, 4 * C]
        search = cifar_child.MacroChild(num_layers=4, out_filters=C)
        search.build((B, H, H, 3))
        assert [layer.filters for layer in search.macro_layers] == [C] * 4
        assert all(len(layer.ops) == len(macro.OPS) for layer in search.macro_layers)

    def test_out_of_range_or_short_arcs_fail_with_the_space_message(self):
        model = cifar_child.MacroChild(num_layers=2, out_filters=C, num_branches=4)
        x = images(13, (B, H, H, 3))
        for bad in ([0, 4, 0], [0, 1, 2], [0, 1]):
            with pytest.raises(tf.errors.InvalidArgumentError) as error:
                model(x, tf.constant(bad))
            with pytest.raises(arcs.ArcError) as host_error:
                model.space.validate(bad)
            assert check_message(error.value) == str(host_error.value)
        with pytest.raises(ValueError, match="arc=None"):
            model(x)

    def test_config_round_trip_rebuilds_the_same_network(self):
        model = cifar_child.MacroChild(num_layers=3, out_filters=C, keep_prob=0.5,
                                       fixed_arc=[1, 2, 0, 3, 1, 1])
        clone = cifar_child.MacroChild.from_config(model.get_config())
        assert clone.get_config() == model.get_config()
        x = images(14, (B, H, H, 3))
        model(x)
        clone(x)
        clone.set_weights(model.get_weights())
        np.testing.assert_allclose(clone(x).numpy(), model(x).numpy(), rtol=1e-5)

    @pytest.mark.parametrize("fixed_arc", [None, "4 5 1 0 0 0 3 0 1 1"])
    def test_checkpoint_restores_every_variable(self, fixed_arc, tmp_path):
        model, fresh = (cifar_child.MacroChild(num_layers=4, out_filters=C, fixed_arc=fixed_arc)
                        for _ in range(2))
        x = images(15, (B, H, H, 3))
        arc = None if fixed_arc else tf.constant(model.space.random_arc(np.random.default_rng(2)))
        want, _ = model(x, arc).numpy(), fresh(x, arc)
        path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
        saved = [name for name, _ in tf.train.list_variables(path) if name.startswith("model/")]
        assert len(saved) == len(model.weights)
        tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
        np.testing.assert_allclose(fresh(x, arc).numpy(), want, rtol=1e-5, atol=1e-6)

    def test_the_official_final_arc_builds(self):
        model = cifar_child.MacroChild(num_layers=24, out_filters=96, num_branches=4,
                                       fixed_arc=known_arcs.CIFAR_MACRO_FINAL)
        model.build((None, 32, 32, 3))  # variables only, no forward pass
        params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        # Paper ("more channels"): 38.0M. The official fixed code's structure
        # (plain convs for the separable ops, reduced stem) counts 42.56M.
        assert params == 30_854_112
