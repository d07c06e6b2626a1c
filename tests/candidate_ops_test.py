"""CIFAR candidate ops: promised shapes, the maths of the blocks, slots, configs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from enas_tf.layers import candidate_ops
from enas_tf.layers import routing
from enas_tf.search_space import macro, micro

B, H, C = 2, 8, 4


def images(seed=0, shape=(B, H, H, C)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def run(op, x, **kwargs):
    op.build(x.shape)
    return op(x, training=True, **kwargs)


class CandidateOpsTest:

    def test_tables_name_every_op_of_each_space(self):
        assert tuple(candidate_ops.MACRO_OPS) == macro.OPS
        assert tuple(candidate_ops.MICRO_OPS) == micro.OPS

    @pytest.mark.parametrize("name", macro.OPS)
    def test_macro_op_keeps_shape(self, name):
        op = candidate_ops.MACRO_OPS[name](C)
        out = run(op, images())
        assert out.shape == (B, H, H, C) == op.compute_output_shape((B, H, H, C))

    @pytest.mark.parametrize("name", micro.OPS)
    @pytest.mark.parametrize("strides,filters", [(1, C), (1, 2 * C), (2, 2 * C)])
    def test_micro_op_gives_the_promised_shape(self, name, strides, filters):
        op = candidate_ops.MICRO_OPS[name](filters, strides=strides)
        out = run(op, images())
        want = (B, H // strides, H // strides, filters)
        assert out.shape == want == op.compute_output_shape((B, H, H, C))

    def test_micro_ops_own_weights_only_where_the_official_ops_do(self):
        def num_weights(name, strides=1, filters=C):
            op = candidate_ops.MICRO_OPS[name](filters, strides=strides)
            op.build((B, H, H, C))
            return len(op.trainable_weights)
        assert num_weights("identity") == 0 and num_weights("max_pool_3x3") == 0
        assert num_weights("identity", strides=2) == 4  # two paths + BN
        assert num_weights("avg_pool_3x3", filters=2 * C) == 3  # 1x1 conv + BN
        assert num_weights("sep_conv_5x5") == 8  # 2 x (depthwise, pointwise, BN)

    @pytest.mark.parametrize("filters,strides,size", [
        (6, 2, (6, 6)), (6, 2, (5, 5)), (5, 2, (7, 4)), (1, 2, (6, 6)), (4, 3, (7, 9))])
    def test_factorized_reduce_reads_both_offsets(self, filters, strides, size):
        x = images(1, (B, *size, C))
        fr = candidate_ops.FactorizedReduce(filters, strides=strides)
        fr.build(x.shape)
        padded = np.pad(x, [(0, 0), (0, strides), (0, strides), (0, 0)])
        out_h, out_w = (-(-n // strides) for n in size)
        paths = [padded[:, offset::strides, offset::strides][:, :out_h, :out_w]
                 @ kernel.numpy()[0, 0] for offset, kernel in enumerate(fr.kernels)]
        assert [p.shape[-1] for p in paths] == [filters - filters // 2, filters // 2][
            :len(paths)] and len(paths) == (1 if filters == 1 else 2)
        concat = np.concatenate(paths, -1)
        want = (concat - concat.mean((0, 1, 2))) / np.sqrt(concat.var((0, 1, 2)) + 1e-3)
        got = fr(x, training=True).numpy()
        assert got.shape == fr.compute_output_shape(x.shape)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)

    @pytest.mark.parametrize("separable", [False, True])
    @pytest.mark.parametrize("size", [6, 5])
    def test_a_strided_1x1_conv_bn_equals_tfs_strided_convolution(self, separable, size):
        # It subsamples and convolves with stride 1 (the strided kernel's
        # filter gradient crashes oneDNN); the forward op itself is fine.
        x = images(2, (B, size, size, C))
        block = candidate_ops.ConvBn(3, 1, strides=2, separable=separable)
        block.build(x.shape)
        if separable:
            conv = tf.nn.separable_conv2d(x, block.depthwise_kernel, block.pointwise_kernel,
                                          (1, 2, 2, 1), "SAME").numpy()
        else:
            conv = tf.nn.conv2d(x, block.kernel, 2, "SAME").numpy()
        want = (conv - conv.mean((0, 1, 2))) / np.sqrt(conv.var((0, 1, 2)) + 1e-3)
        got = block(x, training=True).numpy()
        assert got.shape == block.compute_output_shape(x.shape)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)

    def test_pools_average_without_padding_and_keep_maxima(self):
        ones = np.ones((1, 4, 4, 1), np.float32)
        np.testing.assert_allclose(candidate_ops.pool(ones, "avg").numpy(), 1.0)
        x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
        # TF's SAME padding puts the odd pad row/column at the bottom/right.
        assert candidate_ops.pool(x, "max", 2).numpy().ravel().tolist() == [10, 11, 14, 15]

    @pytest.mark.parametrize("strides", [1, 2])
    def test_max_pool_gradient_is_tfs_also_inside_a_dispatch(self, strides):
        x = tf.nn.relu(images(7))  # many tied zeros
        dy = images(8, (B, H // strides, H // strides, C))

        @tf.function
        def grads(branch):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(x)
                ours = routing.dispatch(branch, [
                    lambda x: candidate_ops.pool(x, "max", strides),
                    lambda x: candidate_ops.pool(x, "avg", strides)], x)
                want = tf.nn.max_pool2d(x, 3, strides, "SAME")
            return ours, tape.gradient(ours, x, dy), want, tape.gradient(want, x, dy)

        ours, ours_grad, want, want_grad = grads(tf.constant(0))
        np.testing.assert_array_equal(ours, want)
        np.testing.assert_allclose(ours_grad, want_grad, atol=1e-6)
        assert np.any(ours_grad.numpy() != 0)

    def test_slot_copy_equals_a_lone_op_with_those_weights(self):
        x = images(2)
        stacked = candidate_ops.SepConvStack(C, 3, slots=3, batch_stats_only=True)
        out = run(stacked, x, slot=tf.constant(1))
        lone = candidate_ops.SepConvStack(C, 3, batch_stats_only=True)
        lone.build(x.shape)
        lone.set_weights([w[1] for w in stacked.get_weights()])
        np.testing.assert_allclose(lone(x).numpy(), out.numpy(), rtol=1e-5, atol=1e-5)

    def test_only_the_picked_slot_gets_gradients(self):
        x = images(3)
        op = candidate_ops.SepConvStack(C, 5, slots=4, batch_stats_only=True)
        op.build(x.shape)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(op(x, slot=tf.constant(2)) * x)
        for grad in tape.gradient(loss, op.trainable_weights):
            norms = np.abs(tf.convert_to_tensor(grad).numpy()).reshape(4, -1).sum(1)
            assert (norms > 0).tolist() == [False, False, True, False]

    def test_stacked_kernels_have_the_he_variance_of_one_kernel(self):
        conv = candidate_ops.ConvBn(64, 3, slots=4, batch_stats_only=True)
        conv.build((1, 8, 8, 16))
        for copy in conv.kernel.numpy():
            assert copy.std() == pytest.approx(np.sqrt(2 / (3 * 3 * 16)), rel=0.1)

    def test_input_mask_equals_zeroing_the_input_channels(self):
        x = tf.constant(images(3))
        mask = tf.constant([1.0, 0.0, 1.0, 0.0])
        conv = candidate_ops.ConvBn(3, 3, pre_relu=True, batch_stats_only=True)
        conv.build(x.shape)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            masked_kernel = conv(x, training=True, input_mask=mask)
            masked_input = conv(tf.nn.relu(x) * mask, training=True)
        np.testing.assert_allclose(masked_kernel, masked_input, rtol=1e-5, atol=1e-5)
        for wrt in (x, conv.kernel):
            np.testing.assert_allclose(tape.gradient(masked_kernel, wrt),
                                       tape.gradient(masked_input, wrt), atol=1e-5)
        assert not np.any(tape.gradient(masked_kernel, conv.kernel)[:, :, 1::2])
        separable = candidate_ops.ConvBn(3, 3, separable=True)
        separable.build(x.shape)
        with pytest.raises(ValueError, match="plain convolutions only"):
            separable(x, input_mask=mask)

    @pytest.mark.parametrize("layer", [
        candidate_ops.ConvBn(6, 5, strides=2, separable=True, pre_relu=True, slots=2,
                             batch_stats_only=True),
        candidate_ops.FactorizedReduce(6, strides=4, pre_relu=True),
        candidate_ops.MacroConv(6, 5, separable=True),
        candidate_ops.MacroPool(6, "max"),
        candidate_ops.SepConvStack(6, 5, strides=2),
        candidate_ops.MicroPool(6, "max", strides=2),
        candidate_ops.Identity(6, strides=2),
    ], ids=lambda layer: type(layer).__name__)
    def test_config_round_trip(self, layer):
        clone = keras.layers.deserialize(keras.layers.serialize(layer))
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
