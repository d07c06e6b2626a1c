"""What the search loop needs from a child task (PTB, CIFAR macro, micro).

A task owns its data iterators, its child model and optimizer, and its
compiled steps; the loop in ``search.py`` owns the controller, the
alternation of phases, logging, checkpoints and the run's files.
"""

import abc


class ChildTask(abc.ABC):
    """One child network family plus its data, as the search loop sees it."""

    space = None  # the SearchSpace of the task's arcs
    optimizer = None  # the child's Keras optimizer; the loop scales its lr after a rollback
    fixed_arc = None  # int32 numpy arc in fixed mode, else None
    metric_name = "reward"  # what reward() measures, e.g. "ppl" or "acc"

    @abc.abstractmethod
    def child_steps_per_epoch(self) -> int:
        """Shared-weight steps in one epoch (one pass over the data)."""

    @abc.abstractmethod
    def begin_epoch(self, epoch) -> float:
        """Sets the epoch's learning rate (returned) and rewinds the data."""

    @abc.abstractmethod
    def train_step(self, arc) -> dict:
        """One compiled shared-weight step on the next batch, with ``arc``."""

    @abc.abstractmethod
    def reward_batch(self):
        """The next validation batch for a controller reward (tensors)."""

    @abc.abstractmethod
    def reward(self, arc, batch):
        """Graph function: (reward metric, reported metric) of ``arc`` on ``batch``.

        E.g. PTB: (80 / perplexity, perplexity); CIFAR: (accuracy, accuracy).
        """

    @abc.abstractmethod
    def evaluate(self, arc, split) -> dict:
        """Full-split metrics of ``arc``: keys like 'valid_ppl', 'test_acc'."""

    def checkpoint_items(self) -> dict:
        """Trackable objects to checkpoint: by convention the child model, its
        optimizer and the position in the reward batches (a tf.Variable)."""
        return {"model": self.model, "optimizer": self.optimizer,
                "reward_position": self.reward_position}

    def traces(self) -> dict:
        """Trace count of each compiled step (by convention ``_train_step`` and
        ``_eval_step`` tf.functions), by name."""
        return {"child_train_step": self._train_step.experimental_get_tracing_count(),
                "child_eval_step": self._eval_step.experimental_get_tracing_count()}

    @abc.abstractmethod
    def num_params(self) -> int:
        """Trainable parameters of the child (all shared weights in search)."""

    @abc.abstractmethod
    def write_diagram(self, arc, path_without_extension) -> str:
        """Draws ``arc``; returns the path written."""

    @abc.abstractmethod
    def export(self, export_base, model_name, metadata, arc=None, supernet=False) -> str:
        """Writes the fixed-arc model as a SavedModel; returns its directory.

        A search model exports ``arc``'s child, or with ``supernet`` every
        arc (the arc a signature input); see ``export.arc_input``.
        """
