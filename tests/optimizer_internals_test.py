"""The two private Keras optimizer internals the child optimizers rely on.

``distribute.SummedGradients`` overrides ``_all_reduce_sum_gradients`` (the
step sums over replicas itself, before clipping) and ``MaskedSGD`` looks up
its momentum with ``_get_variable_index``. A Keras release that renames or
bypasses either would not fail loudly: under ``mirrored`` the gradients
would be summed twice. setup.py pins the Keras minor these tests passed on;
they are what to run before widening it.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from enas_tf.training import distribute
from enas_tf.training import masked_sgd

OPTIMIZERS = {
    "SummedGradientsSGD": (distribute.SummedGradientsSGD, {}),
    "MaskedSGD": (masked_sgd.MaskedSGD, {"momentum": 0.5}),
}


def spying(name):
    """Optimizer ``name`` with its all-reduce hook recording each call and
    doubling the gradients it hands on (so a caller that ignores the hook's
    result shows too); and the list of calls."""
    base, kwargs = OPTIMIZERS[name]
    calls = []

    class Spy(base):
        def _all_reduce_sum_gradients(self, grads_and_vars):
            grads_and_vars = list(grads_and_vars)
            calls.append(len(grads_and_vars))
            return [(2.0 * g, v) for g, v in super()._all_reduce_sum_gradients(grads_and_vars)]

    return Spy(0.1, **kwargs), calls


class AllReduceHookTest:

    def test_keras_defines_the_hook_the_mixin_replaces(self):
        keras_hook = keras.optimizers.SGD._all_reduce_sum_gradients
        assert keras_hook is not distribute.SummedGradients._all_reduce_sum_gradients
        for cls in (distribute.SummedGradientsSGD, masked_sgd.MaskedSGD):
            assert (cls._all_reduce_sum_gradients
                    is distribute.SummedGradients._all_reduce_sum_gradients)

    @pytest.mark.parametrize("name", sorted(OPTIMIZERS))
    @pytest.mark.parametrize("compiled", [False, True])
    def test_apply_gradients_goes_through_the_hook_and_uses_its_result(self, name, compiled):
        optimizer, calls = spying(name)
        variables = [tf.Variable([1.0, 2.0]), tf.Variable([[3.0]])]
        optimizer.build(variables)
        grads = [tf.constant([0.5, -1.0]), tf.constant([[2.0]])]
        apply = optimizer.apply_gradients
        (tf.function(apply) if compiled else apply)(list(zip(grads, variables)))
        assert calls == [2]
        # One plain (or first Nesterov, zero-velocity) step: lr * (1 + momentum) * 2g.
        factor = 0.1 * (1.0 + getattr(optimizer, "momentum", 0.0)) * 2.0
        np.testing.assert_allclose(variables[0].numpy(), [1.0 - 0.5 * factor, 2.0 + factor],
                                   rtol=1e-6)
        np.testing.assert_allclose(variables[1].numpy(), [[3.0 - 2.0 * factor]], rtol=1e-6)


class VariableIndexTest:

    def test_each_variable_gets_its_own_momentum_in_any_order(self):
        """Nesterov momentum with coupled l2 against numpy, three variables of
        different shapes applied in an order other than the built one."""
        lr, momentum, l2 = 0.1, 0.9, 0.01
        rng = np.random.default_rng(0)
        shapes = [(3,), (2, 2), (1,)]
        values = [rng.normal(size=s).astype(np.float32) for s in shapes]
        variables = [tf.Variable(v) for v in values]
        optimizer = masked_sgd.MaskedSGD(lr, momentum=momentum, l2_reg=l2)
        optimizer.build(variables)
        for i, variable in enumerate(variables):
            index = optimizer._get_variable_index(variable)
            assert optimizer.momentums[index].shape == variable.shape, i
        velocities = [np.zeros(s, np.float32) for s in shapes]
        for step in range(3):
            grads = [(rng.normal(size=s) + 0.1).astype(np.float32) for s in shapes]
            order = [2, 0, 1] if step % 2 else [1, 2, 0]
            optimizer.apply_gradients([(tf.constant(grads[i]), variables[i]) for i in order])
            for i in range(3):
                g = grads[i] + 2 * l2 * values[i]
                velocities[i] = momentum * velocities[i] - lr * g
                values[i] = values[i] + momentum * velocities[i] - lr * g
        for i, variable in enumerate(variables):
            np.testing.assert_allclose(variable.numpy(), values[i], rtol=1e-5, err_msg=str(i))
            np.testing.assert_allclose(
                optimizer.momentums[optimizer._get_variable_index(variable)].numpy(),
                velocities[i], rtol=1e-5, err_msg=str(i))
