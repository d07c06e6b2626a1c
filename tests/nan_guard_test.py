"""Non-finite steps: skipped and counted; too many in a row roll the run back."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from enas_tf.controller import reinforce
from enas_tf.controller import rnn_controller
from enas_tf.data import ptb
from enas_tf.training import ptb_task
from enas_tf.training import run_dir
from enas_tf.training import search

DATA = ptb.load_ptb(os.path.join(os.path.dirname(__file__), "..", "testdata", "ptb"))
STEPS = 6


class PoisonedTask(ptb_task.PtbTask):
    """Feeds a NaN recurrent state into the chosen (1-based) child steps."""

    def __init__(self, poisoned_calls, **kwargs):
        super().__init__(**kwargs)
        self.poisoned_calls, self.calls = set(poisoned_calls), 0

    def train_step(self, arc):
        self.calls += 1
        if self.calls in self.poisoned_calls:
            self._carry = tf.fill(self._carry.shape, np.nan)
        return super().train_step(arc)


def run_search(output_dir, poisoned_calls, max_bad):
    config = ptb_task.PtbConfig(num_nodes=3, hidden_size=8, batch_size=4, bptt=5,
                                eval_batch_size=20, lr=1.0, steps_per_epoch=STEPS)
    rng = tf.random.Generator.from_seed(0)
    task = PoisonedTask(poisoned_calls, config=config, data=DATA, rng=rng)
    controller = rnn_controller.RnnController(3, lstm_size=8)
    rl = reinforce.Reinforce(controller, keras.optimizers.Adam(1e-3))
    loop_config = search.LoopConfig(
        num_epochs=3, controller_train_steps=1, controller_num_aggregate=2,
        derive_num_samples=2, verbose=False, max_consecutive_bad_steps=max_bad,
        rollback_lr_factor=0.5)
    run_dir.prepare(output_dir, reset=False)
    loop = search.SearchLoop(task, loop_config, output_dir, rng, controller=controller,
                             reinforce=rl)
    return loop.run(), task


class NanGuardTest:

    def test_isolated_bad_steps_are_skipped_and_counted(self, tmp_path):
        summary, task = run_search(str(tmp_path), poisoned_calls={3, 9}, max_bad=3)
        assert summary["skipped_steps"] == 2 and summary["rollbacks"] == 0
        assert summary["child_steps"] == 3 * STEPS
        assert all(np.isfinite(v.numpy()).all() for v in task.model.trainable_variables)

    @pytest.mark.slow  # a rollback and three epochs: about 25 s
    def test_consecutive_bad_steps_roll_back_and_lower_the_learning_rate(self, tmp_path):
        # Epoch 1 is calls 7-12: calls 8-10 trip the rollback to the end of
        # epoch 0; the redone epoch 1 starts at call 11, which is bad once more.
        summary, task = run_search(str(tmp_path), poisoned_calls={8, 9, 10, 11},
                                   max_bad=3)
        assert summary["rollbacks"] == 1
        assert summary["lr_scale"] == 0.5
        assert summary["skipped_steps"] == 4
        assert summary["epochs_done"] == 3
        assert summary["child_steps"] == 3 * STEPS  # the lost steps were redone
        assert task.calls == 3 * STEPS + 4
        assert float(task.optimizer.learning_rate.numpy()) == 0.5
        assert all(np.isfinite(v.numpy()).all() for v in task.model.trainable_variables)
        epochs = [r["epoch"] for r in run_dir.ArcLog(str(tmp_path)).read()
                  if r["phase"] == "controller"]
        assert epochs == [0, 0, 1, 1, 2, 2]
