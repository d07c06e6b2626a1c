"""REINFORCE for the controller: EMA baseline, entropy bonus, aggregation.

``score(seed, reward_fn)`` samples one arc, asks ``reward_fn(arc)`` for its
reward metric (e.g. 80 / validation perplexity) and the metric to report
(e.g. the perplexity), and adds the policy
gradient of ``-log p(arc) * (reward - baseline) + skip_weight * penalty``
into accumulators; ``apply()`` averages the accumulated gradients of
``num_aggregate`` arcs and takes one optimizer step, as the official
SyncReplicasOptimizer with ``replicas_to_aggregate`` did.
``score_batch(seeds, rewards_fn)`` does the same for K arcs in one step.

``centered=True`` replaces the EMA baseline in the update by the mean
reward of the update's arcs (meant for arcs scored on one shared batch):
the gradient (1/n) sum_i (r_i - mean r) grad(-log p_i) is linear in the
rewards, so it is accumulated as two sums, sum_i r_i grad(-log p_i) and
sum_i grad(-log p_i), with the rewards' sum, and combined in ``apply()``.
The EMA baseline still moves, and ``advantage`` and ``loss`` are still
reported against it.

Deliberate differences from the official code: the advantage uses the
baseline from before this reward's update (the official graph read it in an
unordered race with the update), and the baseline starts at the first
reward instead of 0 so the first updates are not all strongly positive.
"""

import tensorflow as tf

from enas_tf.training import guard


class Reinforce(tf.Module):
    """Policy-gradient state and steps for one controller."""

    def __init__(self, controller, optimizer, baseline_decay=0.99,
                 entropy_weight=0.0, penalty_weight=0.0, centered=False, name="reinforce"):
        super().__init__(name=name)
        self.centered = centered
        self.controller = controller
        self.optimizer = optimizer
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.penalty_weight = penalty_weight
        self.baseline = tf.Variable(0.0, trainable=False, name="baseline")
        self.baseline_ready = tf.Variable(False, trainable=False, name="baseline_ready")
        self.num_accumulated = tf.Variable(0, trainable=False, name="num_accumulated")
        if not controller.built:
            controller.build()
        self.variables_to_train = list(controller.trainable_variables)
        self.accumulators = self._zeros("accumulator")
        if centered:  # only then, so the official trainer's checkpoints keep their keys
            self.score_accumulators = self._zeros("score_accumulator")  # sum grad(-log p)
            self.reward_sum = tf.Variable(0.0, trainable=False, name="reward_sum")
        # Building the optimizer's slots now keeps the update step to one trace.
        optimizer.build(self.variables_to_train)

    def reward(self, metric, entropy):
        """The official reward: the metric plus the weighted sample entropy."""
        return metric + self.entropy_weight * tf.stop_gradient(entropy)

    def update_baseline(self, reward):
        """EMA step b <- b - (1 - decay)(b - reward); returns the old value."""
        old = tf.where(self.baseline_ready, self.baseline, reward)
        self.baseline.assign(old - (1.0 - self.baseline_decay) * (old - reward))
        self.baseline_ready.assign(True)
        return old

    def score(self, seed, reward_fn):
        """Samples an arc, rewards it, accumulates its policy gradient."""
        with tf.GradientTape(persistent=self.centered) as tape:
            sample = self.controller.sample(seed)
            with tape.stop_recording():
                reward, metric, baseline, advantage = self._judge(
                    sample, reward_fn, self._baseline_for)
            loss = self._loss(sample, advantage)
            update_loss = self._loss(sample, reward) if self.centered else loss
            score = -sample.log_prob
        finite = tf.math.is_finite(loss)
        # A non-finite reward or loss is dropped, not averaged in.
        self._accumulate(tape, update_loss, score, finite,
                         tf.where(finite, reward, 0.0), tf.cast(finite, tf.int32))
        return {"arc": sample.arc, "metric": metric, "reward": reward,
                "baseline": baseline, "advantage": advantage, "loss": loss,
                "entropy": sample.entropy, "log_prob": sample.log_prob,
                "decision_entropies": sample.decision_entropies}

    def score_batch(self, seeds, rewards_fn):
        """``score`` for K arcs in one step: seeds int [K, 2], arc i from seeds[i].

        ``rewards_fn(arcs [K, L])`` returns the K reward metrics and metrics.
        The arcs are sampled in one vectorized controller pass and the
        baseline moves through the K rewards in order, so each arc's
        statistics, baseline and advantage are those of K ``score`` calls
        with the same seeds; the accumulated gradient is the sum of theirs
        (up to float rounding). Returns the same keys as ``score``, each [K].
        """
        with tf.GradientTape(persistent=self.centered) as tape:
            sample = self.controller.sample_batch(seeds)
            with tape.stop_recording():
                reward, metric, baseline, advantage = self._judge(
                    sample, rewards_fn, lambda rewards: tf.stack(
                        [self._baseline_for(r) for r in tf.unstack(rewards, num=seeds.shape[0])]))
            loss = self._loss(sample, advantage)
            finite = tf.math.is_finite(loss)
            # A zero advantage keeps a dropped arc's NaN out of the sum's gradient.
            kept_advantage = tf.where(finite, reward if self.centered else advantage, 0.0)
            kept_loss = tf.reduce_sum(tf.where(finite, self._loss(sample, kept_advantage), 0.0))
            kept_score = -tf.reduce_sum(tf.where(finite, sample.log_prob, 0.0))
        self._accumulate(tape, kept_loss, kept_score, None,
                         tf.reduce_sum(tf.where(finite, reward, 0.0)),
                         tf.reduce_sum(tf.cast(finite, tf.int32)))
        return {"arc": sample.arc, "metric": metric, "reward": reward,
                "baseline": baseline, "advantage": advantage, "loss": loss,
                "entropy": sample.entropy, "log_prob": sample.log_prob,
                "decision_entropies": sample.decision_entropies}

    def _judge(self, sample, reward_fn, baseline_fn):
        """(reward, metric, baseline, advantage) of the sampled arc(s)."""
        reward_metric, metric = tf.nest.map_structure(tf.stop_gradient, reward_fn(sample.arc))
        reward = self.reward(reward_metric, sample.entropy)
        baseline = baseline_fn(reward)
        return reward, metric, baseline, reward - baseline

    def _baseline_for(self, reward):
        """The baseline before ``reward``, updated by it if it is finite."""
        return tf.cond(tf.math.is_finite(reward),
                       lambda: self.update_baseline(reward),
                       lambda: tf.identity(self.baseline))

    def _zeros(self, name):
        return [tf.Variable(tf.zeros_like(v), trainable=False, name=name)
                for v in self.variables_to_train]

    def _loss(self, sample, advantage):
        return -sample.log_prob * advantage + self.penalty_weight * sample.penalty

    def _accumulate(self, tape, update_loss, score, finite, reward_sum, count):
        """Adds the gradient of ``update_loss`` (and, centred, of ``score`` =
        -log p and the rewards' sum) to the accumulators. ``finite`` says
        whether to keep them; None: keep them unless the gradient is not
        finite (a non-finite controller: the whole batch is dropped)."""
        grads = tape.gradient(update_loss, self.variables_to_train)
        if finite is None:
            finite = tf.math.is_finite(tf.linalg.global_norm(grads))
        for acc, grad in zip(self.accumulators, guard.zero_unless(finite, grads)):
            acc.assign_add(tf.convert_to_tensor(grad))
        self.num_accumulated.assign_add(tf.where(finite, count, 0))
        if self.centered:
            scores = tape.gradient(score, self.variables_to_train)
            for acc, grad in zip(self.score_accumulators, guard.zero_unless(finite, scores)):
                acc.assign_add(tf.convert_to_tensor(grad))
            self.reward_sum.assign_add(tf.where(finite, reward_sum, 0.0))

    def apply(self):
        """One optimizer step on the mean accumulated gradient, then reset.

        Centred: the mean of (r_i - mean r) grad(-log p_i) over the update's arcs.
        """
        count = tf.cast(tf.maximum(self.num_accumulated, 1), tf.float32)
        grads = [acc / count for acc in self.accumulators]
        if self.centered:
            mean_reward = self.reward_sum / count
            grads = [g - mean_reward * acc / count
                     for g, acc in zip(grads, self.score_accumulators)]
            for acc in self.score_accumulators:
                acc.assign(tf.zeros_like(acc))
            self.reward_sum.assign(0.0)
        self.optimizer.apply_gradients(zip(grads, self.variables_to_train))
        for acc in self.accumulators:
            acc.assign(tf.zeros_like(acc))
        self.num_accumulated.assign(0)
        return tf.linalg.global_norm(grads)
