"""ControllerConfig.shared_batch: the arcs of one controller update are scored on
one validation batch (and centred on their mean reward, see reinforce_test)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from enas_tf.data import ptb
from enas_tf.training import ptb_task
from enas_tf.training import run_config
from enas_tf.training import search

DATA = ptb.load_ptb(os.path.join(os.path.dirname(__file__), "..", "testdata", "ptb"))
TASK = ptb_task.PtbConfig(num_nodes=4, hidden_size=8, batch_size=4, bptt=5,
                          eval_batch_size=20, lr=1.0, steps_per_epoch=2)


@pytest.mark.parametrize("shared, batch_arcs", [(False, 1), (True, 1), (True, 3)])
def test_each_update_scores_its_arcs_on_one_batch_when_shared(tmp_path, shared, batch_arcs):
    keras.utils.set_random_seed(0)
    rng = tf.random.Generator.from_seed(0)
    task = ptb_task.PtbTask(TASK, DATA, rng)
    settings = run_config.ControllerConfig(
        lstm_size=8, tanh_constant=2.5, temperature=5.0, lr=1e-3, entropy_weight=1e-4,
        baseline_decay=0.99, shared_batch=shared)
    controller, reinforce = run_config.build_controller("ptb", TASK, settings)
    loop = search.SearchLoop(
        task, search.LoopConfig(num_epochs=1, controller_train_steps=2,
                                controller_num_aggregate=3, controller_batch_arcs=batch_arcs,
                                derive_num_samples=1, verbose=False),
        str(tmp_path), rng, controller=controller, reinforce=reinforce)
    seen = []  # the inputs of each scored arc, in order

    class Recording:
        """The loop's compiled scoring call, noting each arc's batch first."""

        def __init__(self, real, stacked):
            self.real, self.stacked = real, stacked

        def __call__(self, batch):
            inputs = batch[0].numpy()
            seen.extend(list(inputs) if self.stacked else [inputs])
            return self.real(batch)

        def __getattr__(self, name):  # the summary's trace counts
            return getattr(self.real, name)

    loop._score = Recording(loop._score, stacked=False)
    loop._score_batch = Recording(loop._score_batch, stacked=True)
    loop.run()
    assert len(seen) == 2 * 3
    updates = [seen[:3], seen[3:]]
    for arcs in updates:
        same = [np.array_equal(arcs[0], other) for other in arcs[1:]]
        assert all(same) if shared else not any(same)
    assert not np.array_equal(updates[0][0], updates[1][0])


def test_a_shared_batch_needs_two_arcs_per_update():
    with pytest.raises(run_config.RunConfigError,
                       match=r"^controller_shared_batch needs controller_num_aggregate >= 2"):
        run_config.RunConfig(
            family="ptb", task=TASK, loop=search.LoopConfig(controller_num_aggregate=1),
            controller=run_config.ControllerConfig(
                lstm_size=8, tanh_constant=2.5, temperature=5.0, lr=1e-3, entropy_weight=1e-4,
                baseline_decay=0.99, shared_batch=True))
