"""The controller made visible: policy statistics, policy.png, the collapse warning."""

import glob
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from enas_tf.controller import macro_controller
from enas_tf.controller import micro_controller
from enas_tf.controller import reinforce
from enas_tf.controller import rnn_controller
from enas_tf.data import ptb
from enas_tf.search_space import macro
from enas_tf.search_space import micro
from enas_tf.training import policy_watch
from enas_tf.training import ptb_task
from enas_tf.training import run_dir
from enas_tf.training import search

DATA = ptb.load_ptb(os.path.join(os.path.dirname(__file__), "..", "testdata", "ptb"))


class StatisticsTest:

    def test_op_frequencies_count_the_op_positions_of_every_arc(self):
        space = micro.MicroSpace(1)  # positions: input, op, input, op; twice
        arcs = np.array([[0, 4, 1, 4, 0, 2, 0, 3],
                         [1, 4, 0, 0, 1, 2, 1, 2]])
        table = policy_watch.op_frequency_table(space, arcs)
        assert table.shape == (4, 5)
        np.testing.assert_array_equal(table[:, 4], [1.0, 0.5, 0.0, 0.0])
        np.testing.assert_array_equal(table[:, 2], [0.0, 0.0, 1.0, 0.5])
        np.testing.assert_allclose(table.sum(axis=1), 1.0)

    def test_a_uniform_policy_has_entropy_fraction_one_and_macro_a_skip_density(self):
        space = macro.MacroSpace(3)  # op, op skip, op skip skip
        arcs = np.array([[0, 1, 1, 5, 0, 1], [2, 3, 0, 4, 0, 0]])
        uniform = np.tile(np.log(space.bounds), (2, 1))
        stats = policy_watch.epoch_statistics(space, arcs, uniform)
        assert stats["entropy_fraction"] == pytest.approx(1.0)
        assert stats["op_decision_entropy"] == pytest.approx(math.log(6))
        assert stats["wiring_decision_entropy"] == pytest.approx(math.log(2))
        assert stats["skip_density"] == pytest.approx(2 / 6)  # skips at 2, 4, 5
        assert stats["op_frequency/max_pool_3x3"] == pytest.approx(1 / 6)
        assert sum(v for k, v in stats.items() if k.startswith("op_frequency/")) == (
            pytest.approx(1.0))

    @pytest.mark.parametrize("make", [
        lambda: rnn_controller.RnnController(4, lstm_size=8),
        lambda: macro_controller.MacroController(3, lstm_size=8),
        lambda: micro_controller.MicroController(2, lstm_size=8)])
    def test_decision_entropies_are_per_position_and_sum_to_the_entropy(self, make):
        keras.utils.set_random_seed(1)
        controller = make()
        sample = controller.sample(tf.constant([3, 4], tf.int64))
        entropies = sample.decision_entropies.numpy()
        assert entropies.shape == (controller.space.arc_length,)
        assert entropies.sum() == pytest.approx(float(sample.entropy), rel=1e-5)
        # Each is at most its position's uniform entropy; a forced choice has none.
        assert np.all(entropies <= np.log(controller.space.bounds) + 1e-5)
        one_way = controller.space.bounds == 1
        np.testing.assert_allclose(entropies[one_way], 0.0, atol=1e-6)


class CollapseWarningTest:

    @staticmethod
    def feed(watch, history):
        return [watch.observe(epoch, [reward], [entropy])
                for epoch, (reward, entropy) in enumerate(history)]

    def test_warns_when_entropy_collapses_while_rewards_stall(self):
        watch = policy_watch.PolicyWatch(collapse_ratio=0.5, stall_epochs=2)
        warnings = self.feed(watch, [(0.5, 10.0), (0.6, 8.0), (0.6, 4.0), (0.55, 3.0)])
        assert warnings[:3] == [None, None, None]
        assert "fell to 30% of its first epoch's" in warnings[3]
        assert "\n" not in warnings[3]

    def test_no_warning_while_rewards_improve_or_entropy_holds(self):
        improving = policy_watch.PolicyWatch(collapse_ratio=0.5, stall_epochs=2)
        assert self.feed(improving, [(0.5, 10.0), (0.6, 4.0), (0.7, 3.0), (0.8, 2.0)]) == [None] * 4
        holding = policy_watch.PolicyWatch(collapse_ratio=0.5, stall_epochs=2)
        assert self.feed(holding, [(0.5, 10.0), (0.6, 9.0), (0.6, 8.0), (0.5, 7.0)]) == [None] * 4

    def test_warns_when_the_policy_has_not_moved(self):
        # Entropies as a small PTB search logged them: equal to 4 digits for 5 epochs.
        frozen = policy_watch.PolicyWatch(collapse_ratio=0.5, stall_epochs=2)
        warnings = self.feed(frozen, [(0.09, 17.3146), (0.12, 17.3146), (0.14, 17.3147)])
        assert warnings[:2] == [None, None]
        assert "policy has not moved in 3 epochs (mean entropy 17.31" in warnings[2]
        assert "\n" not in warnings[2]
        moving = policy_watch.PolicyWatch(collapse_ratio=0.5, stall_epochs=2)
        assert self.feed(moving, [(0.09, 17.3), (0.12, 17.2), (0.14, 17.1)]) == [None] * 3

    def test_a_rebuilt_history_warns_as_an_unbroken_one(self):
        history = [(0.5, 10.0), (0.6, 8.0), (0.6, 4.0)]
        records = [{"epoch": e, "phase": "controller", "reward": r, "entropy": h}
                   for e, (r, h) in enumerate(history)]
        records.append({"epoch": 2, "phase": "derive", "reward": 9.0})
        resumed = policy_watch.PolicyWatch(collapse_ratio=0.5, stall_epochs=2)
        resumed.rebuild(records)
        unbroken = policy_watch.PolicyWatch(collapse_ratio=0.5, stall_epochs=2)
        self.feed(unbroken, history)
        assert resumed.history == unbroken.history
        assert resumed.observe(3, [0.55], [3.0]) == unbroken.observe(3, [0.55], [3.0]) != None


def test_a_search_shows_its_policy(tmp_path):
    """TensorBoard policy/* scalars and histogram, policy.png, summary and arcs.jsonl."""
    keras.utils.set_random_seed(0)
    rng = tf.random.Generator.from_seed(0)
    config = ptb_task.PtbConfig(num_nodes=4, hidden_size=8, batch_size=4, bptt=5,
                                eval_batch_size=20, lr=1.0, steps_per_epoch=2)
    task = ptb_task.PtbTask(config, DATA, rng)
    controller = rnn_controller.RnnController(4, lstm_size=8)
    trainer = reinforce.Reinforce(controller, keras.optimizers.Adam(1e-3))
    loop = search.SearchLoop(
        task, search.LoopConfig(num_epochs=2, controller_train_steps=2,
                                controller_num_aggregate=3, derive_num_samples=2,
                                verbose=False),
        str(tmp_path), rng, controller=controller, reinforce=trainer)
    summary = loop.run()
    assert 0.0 < summary["policy_entropy_fraction"] <= 1.0
    controller_records = [r for r in run_dir.ArcLog(str(tmp_path)).read()
                          if r["phase"] == "controller" and r["epoch"] == 1]
    assert summary["controller_entropy"] == pytest.approx(
        np.mean([r["entropy"] for r in controller_records]), rel=1e-6)
    with open(tmp_path / run_dir.POLICY_PICTURE, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    tags = {}
    for path in glob.glob(str(tmp_path / run_dir.TENSORBOARD / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    assert tags["policy/entropy_fraction"] == [0, 1]
    assert tags["policy/decision_entropy"] == [0, 1]
    assert {f"policy/op_frequency/{name}" for name in task.space.op_names} <= set(tags)
