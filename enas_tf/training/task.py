"""The child-task contract, and the training step every task shares.

A task (PTB, CIFAR macro or micro, a user's own) owns its data, its child
model and optimizer, and its loss; the loop in ``search.py`` owns the
controller, the alternation of phases, logging, checkpoints and the run's
files. What a task must provide is declared here, in one place:

- in ``__init__``: call ``ChildTask.__init__``, then set ``model``,
  ``optimizer``, ``reward_batches`` and the compiled ``_train_step``
  (``tf.function(self._train_step_fn, ...)``) and ``_eval_step``;
- the abstract methods below: the learning-rate schedule, the epoch's
  batches, the per-replica loss, the reward, the evaluation, the diagram
  and the export.

The step itself (arc check across workers, the replica's slice, the tape,
the sum over replicas, clipping, the finite check and the update, or no
update at all for a non-finite step) is written once, in
``_replica_train_step``.
"""

import abc
import dataclasses

import numpy as np
import tensorflow as tf

from enas_tf.training import distribute
from enas_tf.training import guard


@dataclasses.dataclass(frozen=True)
class ReplicaLoss:
    """What a task's loss gives the shared step, on one replica's slice."""

    objective: tf.Tensor  # differentiated: this replica's share of the batch loss + penalties
    metrics: dict  # reported, each this replica's share: the step sums them over replicas
    carry: object = ()  # state handed to the next batch (PTB's recurrent state), if any


class ChildTask(abc.ABC):
    """One child network family plus its data, as the search loop sees it."""

    metric_name = "reward"  # what reward() reports, e.g. "ppl" or "acc"
    # Set by the task's __init__ (see the module docstring):
    model = None  # the Keras child: the shared weights in search, one arc's in fixed mode
    optimizer = None  # the child's Keras optimizer (taking gradients already summed)
    reward_batches = ()  # validation batches the controller's rewards cycle through

    def __init__(self, space, fixed_arc, strategy, batch_size, grad_bound):
        """``grad_bound``: the global-norm clip of the summed gradients (0: none)."""
        self.strategy = strategy or tf.distribute.get_strategy()
        distribute.check_global_batch(self.strategy, batch_size)
        self.space = space
        self.fixed_arc = None if fixed_arc is None else space.validate(fixed_arc)
        self.grad_bound = grad_bound
        # Checkpointed, so a resumed run rewards the same batches.
        self.reward_position = tf.Variable(0, dtype=tf.int64, trainable=False,
                                           name="reward_position")
        self._iterator, self._carry = None, ()

    # What a task provides --------------------------------------------------
    @abc.abstractmethod
    def child_steps_per_epoch(self) -> int:
        """Shared-weight steps in one epoch (one pass over the data)."""

    @abc.abstractmethod
    def learning_rate(self, epoch) -> float:
        """The schedule's learning rate for ``epoch``."""

    @abc.abstractmethod
    def epoch_batches(self, epoch):
        """An iterable of the epoch's global training batches (nests of tensors)."""

    def initial_carry(self):
        """The carried state at the start of an epoch (none by default)."""
        return ()

    def _step_seed(self):
        """A seed for the step's random draws, made outside the replicas (none by default)."""
        return None

    @abc.abstractmethod
    def _replica_loss(self, batch, arc, carry, seed, global_batch) -> ReplicaLoss:
        """The loss of ``arc`` on this replica's ``batch`` (a slice of ``global_batch``)."""

    @abc.abstractmethod
    def reward(self, arc, batch):
        """Graph function: (reward, reported metric) of ``arc`` on ``batch``.

        E.g. PTB: (80 / perplexity, perplexity); CIFAR: (accuracy, accuracy).
        """

    @abc.abstractmethod
    def evaluate(self, arc, split) -> dict:
        """Full-split metrics of ``arc``: keys like 'valid_ppl', 'test_acc'."""

    @abc.abstractmethod
    def write_diagram(self, arc, path_without_extension) -> str:
        """Draws ``arc``; returns the path written."""

    @abc.abstractmethod
    def export(self, export_base, model_name, metadata, arc=None, supernet=False) -> str:
        """Writes the fixed-arc model as a SavedModel; returns its directory.

        A search model exports ``arc``'s child, or with ``supernet`` every
        arc (the arc a signature input); see ``export.arc_input``.
        """

    # What the loop calls ---------------------------------------------------
    def begin_epoch(self, epoch, lr_scale=1.0) -> float:
        """Sets the epoch's learning rate (the schedule's times ``lr_scale``,
        which a rollback lowers), rewinds the data; returns the rate."""
        lr = self.learning_rate(epoch) * lr_scale
        self.optimizer.learning_rate.assign(lr)
        self._iterator = iter(self.epoch_batches(epoch))
        self._carry = self.initial_carry()
        return lr

    def train_step(self, arc) -> dict:
        """One compiled shared-weight step on the next batch, with ``arc``."""
        metrics, self._carry, grad_norm, finite = self._train_step(
            next(self._iterator), self._carry, self.arc_tensor(arc))
        result = {name: float(value.numpy()) for name, value in metrics.items()}
        return dict(result, grad_norm=float(grad_norm.numpy()), skipped=int(not finite.numpy()))

    def reward_batch(self):
        """The next validation batch for a controller reward."""
        position = int(self.reward_position.assign_add(1).numpy()) - 1
        return self.reward_batches[position % len(self.reward_batches)]

    def arc_tensor(self, arc):
        """``arc`` as an int32 tensor; None means the fixed arc (or any arc,
        for building a search model's variables)."""
        if arc is None:
            arc = self.fixed_arc if self.fixed_arc is not None else np.zeros(
                self.space.arc_length, np.int32)
        return tf.convert_to_tensor(arc, tf.int32)

    def checkpoint_items(self) -> dict:
        """The trackable objects a checkpoint holds."""
        return {"model": self.model, "optimizer": self.optimizer,
                "reward_position": self.reward_position}

    def write_run_files(self, output_dir):
        """Writes the files a run directory needs beyond the loop's (PTB: vocab.txt)."""

    def traces(self) -> dict:
        """Trace count of each compiled step, by name."""
        return {"child_train_step": self._train_step.experimental_get_tracing_count(),
                "child_eval_step": self._eval_step.experimental_get_tracing_count()}

    def num_params(self) -> int:
        """Trainable parameters of the child (all shared weights in search)."""
        return int(sum(np.prod(v.shape) for v in self.model.trainable_variables))

    # The shared step ---------------------------------------------------------
    def _train_step_fn(self, batch, carry, arc):
        """One step on the global batch, split over the strategy's replicas."""
        outputs = self.strategy.run(self._replica_train_step,
                                    args=(batch, carry, arc, self._step_seed()))
        metrics, carry, grad_norm, finite = outputs
        first = lambda value: distribute.first_local(self.strategy, value)  # noqa: E731
        return ({name: first(value) for name, value in metrics.items()}, carry,
                first(grad_norm), first(finite))

    def _replica_train_step(self, batch, carry, arc, seed):
        """Trains on this replica's slice with the gradients summed over replicas."""
        checks = []
        if distribute.is_multi_worker(self.strategy):
            checks.append(distribute.assert_same_on_all_replicas(
                arc, "the workers sampled different arcs: give every worker the same seed"))
        local = tf.nest.map_structure(distribute.local_slice, batch)
        variables = self.model.trainable_variables
        # A non-finite step must not leave its batch statistics behind either.
        state = self.model.non_trainable_variables
        before = [tf.identity(v) for v in state]
        with tf.control_dependencies(checks), tf.GradientTape() as tape:
            step = self._replica_loss(local, arc, carry, seed, batch)
        # A weight no path reaches (a fixed macro net's unread reduction) gets
        # zeros, which the optimizer leaves alone.
        grads = [tf.zeros_like(v) if g is None else g
                 for g, v in zip(tape.gradient(step.objective, variables), variables)]
        names = list(step.metrics)
        objective, *summed = distribute.sum_across_replicas(
            [step.objective] + [step.metrics[n] for n in names] + grads)
        metrics, grads = dict(zip(names, summed[:len(names)])), summed[len(names):]
        distribute.average_variables(state)
        grad_norm = tf.linalg.global_norm(grads)
        if self.grad_bound:
            grads, _ = tf.clip_by_global_norm(grads, self.grad_bound, use_norm=grad_norm)
        finite = tf.math.is_finite(objective) & tf.math.is_finite(grad_norm)
        self.optimizer.apply_gradients(zip(guard.zero_unless(finite, grads), variables))
        for variable, old in zip(state, before):
            variable.assign(tf.where(finite, variable, old))
        # A non-finite step's carried state restarts.
        carry = tf.nest.map_structure(lambda c: tf.where(finite, c, tf.zeros_like(c)),
                                      step.carry)
        return metrics, carry, grad_norm, finite
