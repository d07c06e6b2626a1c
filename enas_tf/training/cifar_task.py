"""The image classification child task (CIFAR-10 and any ImageData), macro or micro.

Search: the shared weights train on the first 45,000 training images, and an
arc's reward is its accuracy on one minibatch of the 5,000 held out (no
augmentation). Fixed arc: the official final runs train on all 50,000 and
report only test accuracy (``num_valid=0``: valid_acc is None).

The child's optimiser is the official one, Nesterov momentum 0.9 with
cosine warm restarts per epoch and ``l2 * sum(w^2)``, with deliberate
differences: the global-norm clip really clips (the official one returned
the unclipped gradients), and a weight the step's architecture did not use
keeps its value and momentum (``masked_sgd``: no decay, no momentum drift).
The micro aux head, when on, trains with the body at loss weight 0.4 (the
official code kept its weights at their random initial values).

Under a tf.distribute strategy each replica trains on its slice of every
batch; batch norm uses each replica's batch statistics (as Keras' does by
default) and its moving averages are averaged over replicas every step.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from enas_tf.data import images as image_data
from enas_tf.export import arc_input
from enas_tf.export import cifar_serving
from enas_tf.models import cifar_child
from enas_tf.search_space import diagrams
from enas_tf.search_space import macro
from enas_tf.search_space import micro
from enas_tf.training import distribute
from enas_tf.training import masked_sgd
from enas_tf.training import precision
from enas_tf.training import schedules
from enas_tf.training import task


@dataclasses.dataclass(frozen=True)
class CifarConfig:
    """The child's hyper-parameters (flag names in comments)."""

    space: str = "macro"  # search_for: "macro" or "micro"
    num_layers: int = 12  # child_num_layers
    out_filters: int = 36  # child_out_filters
    num_branches: int = len(macro.OPS)  # child_num_branches (ops of the space)
    num_cells: int = 5  # child_num_cells (micro nodes per cell)
    keep_prob: float = 0.9  # child_keep_prob
    drop_path_keep_prob: float = 1.0  # child_drop_path_keep_prob (fixed micro)
    use_aux_heads: bool = False  # child_use_aux_heads (micro)
    aux_loss_weight: float = 0.4  # official, hard-coded
    cutout_size: int = 0  # child_cutout_size
    batch_size: int = 128  # batch_size
    eval_batch_size: int = 100  # eval_batch_size
    num_valid: int = 5000  # num_valid_images; 0: train on all, no valid split
    num_epochs: int = 310  # num_epochs (drop-path reaches full strength at the end)
    lr_max: float = 0.05  # child_lr_max
    lr_min: float = 0.0005  # child_lr_min
    lr_t_0: int = 10  # child_lr_T_0
    lr_t_mul: int = 2  # child_lr_T_mul
    momentum: float = 0.9  # official, hard-coded
    l2_reg: float = 2.5e-4  # child_l2_reg
    grad_bound: float = 5.0  # child_grad_bound (0: no clipping)
    steps_per_epoch: int = 0  # child_steps_per_epoch (0: one pass)
    data_seed: int = 0  # seed
    precision: str = "float32"  # child_precision: float32 or mixed_bfloat16
    ops: tuple | None = None  # child_ops: the space's ops; None: the first num_branches official


def build_space(config):
    if config.space == "macro":
        return macro.MacroSpace(config.num_layers, config.num_branches, ops=config.ops)
    return micro.MicroSpace(config.num_cells, ops=config.ops)


def build_child(config, fixed_arc=None, num_classes=10):
    dtype = precision.policy(config.precision)
    if config.space == "macro":
        return cifar_child.MacroChild(
            config.num_layers, config.out_filters, config.num_branches,
            keep_prob=config.keep_prob, fixed_arc=fixed_arc, num_classes=num_classes,
            ops=config.ops, dtype=dtype)
    return cifar_child.MicroChild(
        config.num_layers, config.out_filters, config.num_cells,
        keep_prob=config.keep_prob, drop_path_keep_prob=config.drop_path_keep_prob,
        use_aux_heads=config.use_aux_heads, fixed_arc=fixed_arc, num_classes=num_classes,
        ops=config.ops, dtype=dtype)


class CifarTask(task.ChildTask):
    """Image classification (an ``ImageData``: CIFAR-10 or any other shape and
    class count) with a searched (or fixed) macro or micro child."""

    metric_name = "acc"

    def __init__(self, config, data, rng, fixed_arc=None, strategy=None):
        super().__init__(build_space(config), fixed_arc, strategy, config.batch_size,
                         config.grad_bound)
        self.config, self.rng = config, rng
        self.image_shape, self.class_names = data.image_shape, data.class_names
        if config.num_valid:
            (train_x, train_y), valid = image_data.search_split(data, config.num_valid)
        else:
            (train_x, train_y), valid = (data.train_images, data.train_labels), None
        self.mean, self.std = image_data.channel_stats(train_x)
        self.num_train = len(train_y)
        self._train_images, self._train_labels = tf.constant(train_x), train_y
        self.splits = {"valid": valid, "test": (data.test_images, data.test_labels)}
        with self.strategy.scope():
            self.model = build_child(config, self.fixed_arc, data.num_classes)
            self.optimizer = masked_sgd.MaskedSGD(config.lr_max, momentum=config.momentum,
                                                   l2_reg=config.l2_reg)
            self.model.build((None,) + self.image_shape)
            self.optimizer.build(self.model.trainable_variables)
        self.reward_batches = [] if valid is None else list(image_data.eval_dataset(
            *valid, config.batch_size, self.mean, self.std, drop_remainder=True))
        arc_spec = tf.TensorSpec([self.space.arc_length], tf.int32)
        batch_spec = (tf.TensorSpec((config.batch_size,) + self.image_shape, tf.float32),
                      tf.TensorSpec([config.batch_size], tf.int32))
        self._train_step = tf.function(self._train_step_fn,
                                       input_signature=[batch_spec, (), arc_spec])
        self._eval_step = tf.function(self._num_correct, input_signature=[
            tf.TensorSpec((None,) + self.image_shape, tf.float32),
            tf.TensorSpec([None], tf.int32), arc_spec])

    # Compiled steps --------------------------------------------------------
    def _replica_loss(self, batch, arc, carry, seed, global_batch):
        """Cross-entropy (+ the aux head's, weighted) and accuracy, as this
        replica's share of the global batch's means."""
        cfg = self.config
        images, labels = batch
        share = 1.0 / distribute.num_replicas()
        self._advance_drop_path()
        outputs = self.model(images, arc, training=True)
        logits, aux_logits = outputs if isinstance(outputs, tuple) else (outputs, None)
        loss = _cross_entropy(labels, logits) * share
        objective = loss if aux_logits is None else (
            loss + cfg.aux_loss_weight * _cross_entropy(labels, aux_logits) * share)
        return task.ReplicaLoss(objective, {"loss": loss, "acc": _accuracy(labels, logits) * share})

    def _advance_drop_path(self):
        """Official schedule: drop-path strength = (step + 1) / all steps, at most 1."""
        progress = getattr(self.model, "drop_path_progress", None)
        if progress is not None:
            total = self.config.num_epochs * self.child_steps_per_epoch()
            step = tf.cast(self.optimizer.iterations + 1, tf.float32)
            progress.assign(tf.minimum(step / total, 1.0))

    def _num_correct(self, images, labels, arc):
        logits = self.model(images, arc, training=False)
        return tf.reduce_sum(tf.cast(_predictions(logits) == labels, tf.int32))

    def reward(self, arc, batch):
        images, labels = batch
        # The compiled evaluation step: one trace of the model serves the
        # controller's reward, the derivation and the evaluation.
        correct = tf.cast(self._eval_step(images, labels, arc), tf.float32)
        acc = correct / tf.cast(tf.shape(labels)[0], tf.float32)
        return acc, acc

    # The task contract -----------------------------------------------------
    def child_steps_per_epoch(self):
        full = math.ceil(self.num_train / self.config.batch_size)
        return min(self.config.steps_per_epoch or full, full)

    def learning_rate(self, epoch):
        cfg = self.config
        return schedules.cosine_warm_restarts(epoch, cfg.lr_max, cfg.lr_min, cfg.lr_t_0,
                                              cfg.lr_t_mul)

    def epoch_batches(self, epoch):
        cfg = self.config
        # A stream per epoch, seeded by (seed, epoch): a resumed run replays it.
        seed = int(np.random.SeedSequence([cfg.data_seed, epoch]).generate_state(1)[0])
        return image_data.train_dataset(
            self._train_images, self._train_labels, cfg.batch_size, self.mean, self.std,
            cutout_size=cfg.cutout_size, seed=seed)

    def evaluate(self, arc, split):
        """Accuracy over every image of the split, once."""
        if self.splits[split] is None:
            return {f"{split}_acc": None, f"{split}_images": 0}
        arc = self.arc_tensor(arc)
        correct = count = 0
        for images, labels in image_data.eval_dataset(
                *self.splits[split], self.config.eval_batch_size, self.mean, self.std):
            correct += int(self._eval_step(images, labels, arc).numpy())
            count += int(labels.shape[0])
        return {f"{split}_acc": correct / count, f"{split}_images": count}

    def num_params(self):
        """Parameters of the classifier; the micro aux head only helps training."""
        aux = getattr(self.model, "aux_head", None)
        aux_ids = {id(v) for v in aux.trainable_variables} if aux is not None else set()
        return int(sum(np.prod(v.shape) for v in self.model.trainable_variables
                       if id(v) not in aux_ids))

    def write_diagram(self, arc, path_without_extension):
        view = self.space.decode(arc)
        svg = (diagrams.macro_net_svg(view) if self.config.space == "macro"
               else diagrams.micro_cells_svg(view))
        path = path_without_extension + ".svg"
        with open(path, "w", encoding="utf-8") as f:
            f.write(svg)
        return path

    def export(self, export_base, model_name, metadata, arc=None, supernet=False):
        arcs = arc_input.for_export(self.space, self.fixed_arc, arc, supernet)
        return cifar_serving.export(self.model, self.mean, self.std, arcs, export_base,
                                    model_name, metadata, self.image_shape, self.class_names)


def _cross_entropy(labels, logits):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=tf.cast(logits, tf.float32)))


def _predictions(logits):
    return tf.argmax(logits, axis=-1, output_type=tf.int32)


def _accuracy(labels, logits):
    return tf.reduce_mean(tf.cast(_predictions(logits) == labels, tf.float32))
