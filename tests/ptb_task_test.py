"""The PTB child task: compiled steps, sparse updates, the NaN guard, evaluation."""

import os

import numpy as np
import pytest
import tensorflow as tf

from enas_tf.data import ptb
from enas_tf.layers import enas_rnn_cell
from enas_tf.models import ptb_child
from enas_tf.search_space import rnn
from enas_tf.training import ptb_task

DATA = ptb.load_ptb(os.path.join(os.path.dirname(__file__), "..", "testdata", "ptb"))
N = 4


def make_task(fixed_arc=None, **overrides):
    config = ptb_task.PtbConfig(num_nodes=N, hidden_size=8, batch_size=4, bptt=5,
                                eval_batch_size=3, lr=1.0, l2_reg=1e-3,
                                keep_probs=ptb_child.KeepProbs(0.9, 0.8, 0.8, 0.8))
    config = ptb_task.PtbConfig(**{**config.__dict__, **overrides})
    return ptb_task.PtbTask(config, DATA, tf.random.Generator.from_seed(1),
                            fixed_arc=fixed_arc)


class PtbTaskTest:

    def test_a_step_moves_only_the_edges_its_arc_used(self):
        task = make_task()
        task.begin_epoch(0)
        arc = np.array([0, 0, 1, 1, 2, 0, 3], np.int32)
        before = task.model.cell.w_edges.numpy().copy()
        metrics = task.train_step(arc)
        assert metrics["skipped"] == 0 and np.isfinite(metrics["loss"])
        changed = np.abs(task.model.cell.w_edges.numpy() - before).sum(axis=(1, 2)) > 0
        cell = rnn.RnnSpace(N).decode(arc)
        used = {enas_rnn_cell.edge_index(n, p) for n, p in enumerate(cell.prev_nodes, 1)}
        assert set(np.nonzero(changed)[0]) == used

    def test_one_trace_for_every_arc(self):
        task = make_task()
        task.begin_epoch(0)
        rng = np.random.default_rng(0)
        for _ in range(15):
            task.train_step(rnn.RnnSpace(N).random_arc(rng))
        task.evaluate(rnn.RnnSpace(N).random_arc(rng), "valid")
        task.evaluate(rnn.RnnSpace(N).random_arc(rng), "test")
        assert task.traces() == {"child_train_step": 1, "child_eval_step": 1}

    def test_training_lowers_the_loss(self):
        task = make_task(fixed_arc=np.array([0, 0, 0, 1, 0, 2, 0], np.int32), lr=10.0,
                         hidden_size=16, batch_size=8, bptt=10, l2_reg=1e-7)
        before = task.evaluate(None, "valid")["valid_loss"]
        for epoch in range(2):
            task.begin_epoch(epoch)
            for _ in range(task.child_steps_per_epoch()):
                task.train_step(None)
        assert task.evaluate(None, "valid")["valid_loss"] < before - 0.5

    def test_non_finite_step_leaves_the_weights_alone(self):
        task = make_task()
        task.begin_epoch(0)
        weights = [v.numpy().copy() for v in task.model.trainable_variables]
        task._carry = tf.fill([4, 8], np.nan)
        metrics = task.train_step(np.zeros(7, np.int32))
        assert metrics["skipped"] == 1
        for w, v in zip(weights, task.model.trainable_variables):
            np.testing.assert_array_equal(w, v.numpy())
        assert not np.any(task._carry.numpy())

    def test_evaluation_equals_one_pass_over_the_whole_stream(self):
        task = make_task(eval_batch_size=1)
        arc = np.array([1, 0, 3, 1, 0, 0, 2], np.int32)
        got = task.evaluate(arc, "valid")
        ids = DATA.valid
        tokens = tf.constant(ids[None, :-1], tf.int32)
        run = tf.function(lambda t: task.model(t, task.model.initial_state(1),
                                               tf.constant(arc))[0],
                          input_signature=[tf.TensorSpec([1, None], tf.int32)])
        logits = run(tokens)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=ids[None, 1:], logits=logits)
        assert got["valid_loss"] == pytest.approx(float(tf.reduce_mean(losses)), rel=1e-4)
        assert got["valid_ppl"] == pytest.approx(np.exp(got["valid_loss"]))

    def test_reward_is_c_over_perplexity_and_zero_when_not_finite(self):
        task = make_task()
        batch = task.reward_batch()
        arc = tf.constant([0, 0, 1, 1, 2, 0, 3])
        reward, ppl = task.reward(arc, batch)
        assert float(reward) == pytest.approx(80.0 / float(ppl))
        inputs, targets, weights = batch
        reward, _ = task.reward(arc, (inputs, targets, weights * np.nan))
        assert float(reward) == 0.0
