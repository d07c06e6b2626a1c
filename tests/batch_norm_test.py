"""FusedBatchNorm: statistics, moving averages, slots, and use inside a routed dispatch."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from enas_tf.layers import batch_norm
from enas_tf.layers import routing

EPS = 1e-3


def images(seed=0, shape=(3, 4, 4, 5)):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * 2 + 1).astype(np.float32)


def numpy_bn(x, gamma, beta, mean, var):
    return (x - mean) / np.sqrt(var + EPS) * gamma + beta


class FusedBatchNormTest:

    def test_training_normalizes_with_batch_statistics(self):
        bn = batch_norm.FusedBatchNorm(epsilon=EPS)
        x = images()
        bn.build(x.shape)
        bn.gamma.assign(np.arange(1, 6, dtype=np.float32))
        bn.beta.assign(-np.arange(5, dtype=np.float32))
        want = numpy_bn(x, bn.gamma.numpy(), bn.beta.numpy(),
                        x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2)))
        np.testing.assert_allclose(bn(x, training=True).numpy(), want, rtol=1e-4, atol=1e-4)

    def test_training_moves_the_averages_by_one_minus_momentum(self):
        bn = batch_norm.FusedBatchNorm(momentum=0.9, epsilon=EPS)
        x = images(1)
        bn(x, training=True)
        n = x.shape[0] * x.shape[1] * x.shape[2]
        np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * x.mean(axis=(0, 1, 2)),
                                   rtol=1e-4, atol=1e-5)
        unbiased = x.var(axis=(0, 1, 2)) * n / (n - 1)
        np.testing.assert_allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * unbiased,
                                   rtol=1e-4)

    def test_inference_uses_the_moving_averages_and_leaves_them(self):
        bn = batch_norm.FusedBatchNorm(epsilon=EPS)
        x = images(2)
        bn.build(x.shape)
        bn.moving_mean.assign(np.full(5, 0.5, np.float32))
        bn.moving_variance.assign(np.full(5, 4.0, np.float32))
        out = bn(x, training=False).numpy()
        np.testing.assert_allclose(out, numpy_bn(x, 1.0, 0.0, 0.5, 4.0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(bn.moving_mean.numpy(), 0.5)

    def test_batch_stats_only_ignores_training_and_keeps_no_averages(self):
        bn = batch_norm.FusedBatchNorm(batch_stats_only=True, epsilon=EPS)
        x = images(3)
        np.testing.assert_allclose(bn(x, training=False).numpy(),
                                   bn(x, training=True).numpy())
        np.testing.assert_allclose(bn(x).numpy().mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
        assert not bn.non_trainable_weights

    def test_slots_pick_their_scale_and_only_it_gets_a_gradient(self):
        bn = batch_norm.FusedBatchNorm(batch_stats_only=True, slots=3, epsilon=EPS)
        x = images(4)
        bn.build(x.shape)
        bn.gamma.assign(np.arange(15, dtype=np.float32).reshape(3, 5))
        bn.beta.assign(np.ones((3, 5), np.float32))
        with tf.GradientTape() as tape:
            out = bn(x, slot=tf.constant(2))
            loss = tf.reduce_sum(out * x)
        want = numpy_bn(x, bn.gamma.numpy()[2], 1.0, x.mean(axis=(0, 1, 2)),
                        x.var(axis=(0, 1, 2)))
        np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4)
        grad = tf.convert_to_tensor(tape.gradient(loss, bn.gamma)).numpy()
        assert np.abs(grad[:2]).sum() == 0 and np.abs(grad[2]).sum() > 0

    def test_inside_a_dispatch_only_the_option_taken_updates_its_averages(self):
        bns = [batch_norm.FusedBatchNorm() for _ in range(3)]
        x = images(5)
        for bn in bns:
            bn.build(x.shape)

        @tf.function
        def step(index):
            return routing.dispatch(
                index, [functools.partial(bn, training=True) for bn in bns], x)

        step(tf.constant(1))
        moved = [bool(np.any(bn.moving_mean.numpy() != 0)) for bn in bns]
        assert moved == [False, True, False]

    def test_slots_need_batch_stats_only_and_a_slot(self):
        with pytest.raises(ValueError, match="slots=2"):
            batch_norm.FusedBatchNorm(slots=2)
        bn = batch_norm.FusedBatchNorm(batch_stats_only=True, slots=2)
        with pytest.raises(ValueError, match="slot"):
            bn(images())

    def test_config_round_trip(self):
        bn = batch_norm.FusedBatchNorm(momentum=0.8, epsilon=1e-5, batch_stats_only=True,
                                       slots=4, name="bn_x")
        clone = keras.layers.deserialize(keras.layers.serialize(bn))
        assert clone.get_config() == bn.get_config()
