"""MaskedSGD's zero-gradient mask against the weights the step's arc used.

The weights an arc uses are found the way the model reads them: executed
eagerly, the model indexes the arc in Python, so a weight no chosen path
reads gets no gradient at all (None); within a used weight, a micro op
reads only the copy (slot) for its chosen input, and the micro ``combine``
kernel only the rows of the cell's loose ends. The compiled step's
gradients, which the optimizer receives, are then compared with that.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from enas_tf.data import cifar10
from enas_tf.training import cifar_task

pytestmark = pytest.mark.slow  # two compiled search steps traced: ~1-2 min on 2 cores

DATA = cifar10.load_cifar10(os.path.join(os.path.dirname(__file__), "..", "testdata",
                                         "cifar10"))
# No aux head: its 2x2 convolution reads each position of its input once, so
# one unit dead across a batch of 8 zeroes weights the arc used (masked_sgd
# docstring); elsewhere a kernel element sums over every position.
SIZES = {"macro": dict(num_layers=3, out_filters=4),
         "micro": dict(num_layers=1, num_cells=2, out_filters=4)}
# A gradient at rounding level: see the masked_sgd docstring.
ROUNDING = 1e-5


def make_task(space):
    config = cifar_task.CifarConfig(space=space, batch_size=8, num_valid=50, num_epochs=2,
                                    l2_reg=1e-3, data_seed=3, **SIZES[space])
    task = cifar_task.CifarTask(config, DATA, tf.random.Generator.from_seed(1))
    task.begin_epoch(0)
    return task


def capture_gradients(task):
    """Variables that receive, at every compiled step, the gradients the
    task's optimizer is given (set before the step is first traced)."""
    captured = [tf.Variable(tf.zeros_like(v), trainable=False)
                for v in task.model.trainable_variables]
    apply = task.optimizer.apply_gradients

    def spy(grads_and_vars):
        grads_and_vars = list(grads_and_vars)
        for into, (grad, _) in zip(captured, grads_and_vars):
            into.assign(grad)
        return apply(grads_and_vars)

    task.optimizer.apply_gradients = spy
    return captured


def arc_reads(task, arc):
    """Per trainable variable, a bool array: True where the arc reads the element."""
    model = task.model
    state = [v.numpy() for v in model.non_trainable_variables]
    images = tf.constant(DATA.test_images[:8], tf.float32)
    with tf.GradientTape() as tape:
        outputs = model(images, tf.constant(arc), training=True)
        total = sum(tf.reduce_sum(o) for o in tf.nest.flatten(outputs))
    grads = tape.gradient(total, model.trainable_variables)
    for variable, value in zip(model.non_trainable_variables, state):
        variable.assign(value)  # the eager pass must not move batch-norm statistics
    reads = {id(v): np.full(v.shape, g is not None)
             for v, g in zip(model.trainable_variables, grads)}
    for cell in getattr(model, "cells", ()):
        for k, ops in enumerate(cell.node_ops):  # (node, input position) in order
            node, position = divmod(k, 2)
            source = arc[task.space.position(cell.reduction, node, 2 * position)]
            for op in ops:
                for variable in op.trainable_variables:
                    assert variable.shape[0] == op.slots, variable.path
                    reads[id(variable)][np.arange(op.slots) != source] = False
        read_states = {arc[task.space.position(cell.reduction, node, field)]
                       for node in range(cell.num_nodes) for field in (0, 2)}
        loose_rows = np.repeat([state not in read_states
                                for state in range(cell.num_nodes + 2)], cell.filters)
        reads[id(cell.combine.kernel)] &= loose_rows[None, None, :, None]
    return reads


@pytest.mark.parametrize("space", ["macro", "micro"])
def test_only_the_weights_the_arc_read_train(space):
    """Exactly zero gradient (MaskedSGD: value and momentum stay) wherever the
    arc did not read, and elsewhere only where the whole tensor's gradient is
    at rounding level (macro batch-norm offsets read only through another
    batch norm); a frozen weight the arc read with a real gradient fails."""
    task = make_task(space)
    captured = capture_gradients(task)
    variables = task.model.trainable_variables
    rng = np.random.default_rng(5)
    read_count = 0
    for _ in range(3):
        arc = task.space.random_arc(rng)
        reads = arc_reads(task, arc)
        velocities = [v.numpy() for v in task.optimizer.momentums]
        assert not task.train_step(arc)["skipped"]
        for variable, grad, before, after in zip(variables, captured, velocities,
                                                 task.optimizer.momentums):
            grad, read = grad.numpy(), reads[id(variable)]
            read_count += int(read.sum())
            assert np.all(grad[~read] == 0), variable.path
            frozen_but_read = read & (grad == 0)
            if frozen_but_read.any():
                assert np.abs(grad[read]).max() < ROUNDING, variable.path
            np.testing.assert_array_equal(after.numpy() == before, grad == 0,
                                          err_msg=variable.path)
    assert read_count > 0
