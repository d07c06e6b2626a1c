"""The Penn Treebank child task: a language model whose cell is searched.

Training is stateful truncated BPTT (the recurrent state carries from one
window to the next within an epoch), SGD with the paper's per-epoch decay,
global-norm gradient clipping, l2 on the weights the arc used and the
optional slowness (temporal activation) penalty of ``ptb_final.sh``.
Under a tf.distribute strategy each replica trains on its slice of every
batch and carries the recurrent state of those rows only.
Perplexities are exp of the mean per-token loss over every token of a
split, with no per-token capping (the official evaluation capped losses at
10 nats, which under-reported test perplexity).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from enas_tf.data import ptb
from enas_tf.export import arc_input
from enas_tf.export import ptb_serving
from enas_tf.models import ptb_child
from enas_tf.search_space import diagrams
from enas_tf.search_space import rnn
from enas_tf.training import distribute
from enas_tf.training import precision
from enas_tf.training import schedules
from enas_tf.training import task


@dataclasses.dataclass(frozen=True)
class PtbConfig:
    """The child's hyper-parameters (flag names in comments)."""

    num_nodes: int = 12  # child_rhn_depth
    hidden_size: int = 1000  # child_lstm_hidden_size
    batch_size: int = 64  # batch_size
    bptt: int = 35  # child_bptt_steps
    eval_batch_size: int = 10  # eval_batch_size
    keep_probs: ptb_child.KeepProbs = ptb_child.KeepProbs()
    init_range: float = 0.04  # child_init_range
    lr: float = 20.0  # child_lr
    lr_dec_start: int = 15  # child_lr_dec_start
    lr_dec_every: int = 1  # child_lr_dec_every
    lr_dec_rate: float = 0.96  # child_lr_dec_rate
    lr_dec_min: float = 0.0  # child_lr_dec_min
    grad_bound: float = 0.25  # child_grad_bound (0: no clipping)
    l2_reg: float = 1e-7  # child_l2_reg
    slowness_reg: float = 0.0  # child_rnn_slowness_reg
    reward_constant: float = 80.0  # controller_reward_constant
    steps_per_epoch: int = 0  # child_steps_per_epoch (0: a full pass)
    precision: str = "float32"  # child_precision: float32 or mixed_bfloat16
    activations: tuple | None = None  # child_activations; None: the official four


class PtbTask(task.ChildTask):
    """PTB language modelling with a searched (or fixed) ENAS cell."""

    metric_name = "ppl"

    def __init__(self, config, data, rng, fixed_arc=None, strategy=None):
        super().__init__(rnn.RnnSpace(config.num_nodes, config.activations), fixed_arc, strategy,
                         config.batch_size, config.grad_bound)
        self.config, self.data, self.rng = config, data, rng
        with self.strategy.scope():
            self.model = ptb_child.PtbChild(
                data.vocab.size, config.hidden_size, config.num_nodes,
                fixed_arc=self.fixed_arc, keep_probs=config.keep_probs,
                init_range=config.init_range, activations=config.activations,
                dtype=precision.policy(config.precision))
            self.optimizer = distribute.SummedGradientsSGD(config.lr)
            self._build()
        self.train_windows = ptb.lm_dataset(data.train, config.batch_size, config.bptt)
        self.reward_batches = list(ptb.lm_dataset(data.valid, config.batch_size, config.bptt))
        self._train_step = tf.function(self._train_step_fn)
        self._eval_step = tf.function(self._eval_step_fn)

    def write_run_files(self, output_dir):
        """vocab.txt: the token ids, for exports and for reading the run."""
        self.data.vocab.save(os.path.join(output_dir, "vocab.txt"))

    def _build(self):
        """Creates every variable (model and optimizer slots) before tracing."""
        tokens = tf.zeros([1, 1], tf.int32)
        self.model(tokens, self.model.initial_state(1), self.arc_tensor(None))
        self.optimizer.build(self.model.trainable_variables)

    # Compiled steps --------------------------------------------------------
    def _token_loss(self, logits, targets, weights):
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=targets, logits=tf.cast(logits, tf.float32))
        return tf.reduce_sum(losses * weights), tf.reduce_sum(weights)

    def _regularizer(self, edge_weights, cell_outputs):
        cfg = self.config
        reg = tf.constant(0.0)
        if cfg.l2_reg:
            used = [self.model.embedding.embeddings, self.model.softmax_bias,
                    self.model.cell.w_input, self.model.cell.w_state, edge_weights]
            reg += cfg.l2_reg * tf.add_n([tf.reduce_sum(tf.square(w)) for w in used])
        if cfg.slowness_reg:
            change = cell_outputs[:, 1:] - cell_outputs[:, :-1]
            reg += cfg.slowness_reg * tf.reduce_mean(
                tf.reduce_sum(tf.square(tf.cast(change, tf.float32)), axis=-1))
        return reg

    def _step_seed(self):
        return self.rng.make_seeds(1)[:, 0]

    def _replica_loss(self, batch, arc, carry, seed, global_batch):
        """Mean token loss over the global batch; ``carry`` holds this replica's rows."""
        inputs, targets, weights = batch
        count = tf.reduce_sum(global_batch[2])  # tokens of the global batch
        # Read once for the cell and the l2 term (see EnasRnnCell).
        edge_weights = self.model.cell.edge_weights_for(arc)
        logits, state, outputs = self.model(inputs, carry, arc, edge_weights=edge_weights,
                                            training=True, seed=distribute.replica_seed(seed))
        loss_sum, _ = self._token_loss(logits, targets, weights)
        loss = loss_sum / count
        objective = loss + self._regularizer(edge_weights, outputs) / distribute.num_replicas()
        # No per-step perplexity: an epoch's mean of them is ruled by spikes;
        # exp of the mean loss is the figure, and the full-split evaluations give it.
        return task.ReplicaLoss(objective, {"loss": loss}, carry=state)

    def _eval_step_fn(self, inputs, targets, weights, state, arc):
        logits, state, _ = self.model(inputs, state, arc, training=False)
        loss_sum, count = self._token_loss(logits, targets, weights)
        return loss_sum, count, state

    def reward(self, arc, batch):
        inputs, targets, weights = batch
        state = self.model.initial_state(tf.shape(inputs)[0])
        loss_sum, count, _ = self._eval_step_fn(inputs, targets, weights, state, arc)
        ppl = tf.exp(loss_sum / count)
        reward = self.config.reward_constant / ppl
        # An arc whose perplexity is not finite earns the worst reward, 0.
        return tf.where(tf.math.is_finite(reward), reward, 0.0), ppl

    # The task contract -----------------------------------------------------
    def child_steps_per_epoch(self):
        full = ptb.num_windows(len(self.data.train), self.config.batch_size, self.config.bptt)
        return min(self.config.steps_per_epoch or full, full)

    def learning_rate(self, epoch):
        cfg = self.config
        return schedules.exponential_decay(epoch, cfg.lr, cfg.lr_dec_rate, cfg.lr_dec_start,
                                           cfg.lr_dec_every, cfg.lr_dec_min)

    def epoch_batches(self, epoch):
        return self.train_windows

    def initial_carry(self):
        # Made by strategy.run, as the step's own state: one trace for both.
        return self.strategy.run(lambda: self.model.initial_state(
            self.config.batch_size // distribute.num_replicas()))

    def evaluate(self, arc, split):
        ids = {"valid": self.data.valid, "test": self.data.test}[split]
        batch = self.config.eval_batch_size
        state = self.model.initial_state(batch)
        arc = self.arc_tensor(arc)
        total, count = 0.0, 0.0
        for inputs, targets, weights in ptb.lm_dataset(ids, batch, self.config.bptt,
                                                       pad_final=True):
            loss_sum, n, state = self._eval_step(inputs, targets, weights, state, arc)
            total += float(loss_sum.numpy())
            count += float(n.numpy())
        loss = total / count
        return {f"{split}_loss": loss, f"{split}_ppl": float(np.exp(loss))}

    def write_diagram(self, arc, path_without_extension):
        path = path_without_extension + ".svg"
        with open(path, "w", encoding="utf-8") as f:
            f.write(diagrams.rnn_cell_svg(self.space.decode(arc)))
        return path

    def export(self, export_base, model_name, metadata, arc=None, supernet=False):
        arcs = arc_input.for_export(self.space, self.fixed_arc, arc, supernet)
        return ptb_serving.export(self.model, self.data.vocab, arcs, export_base,
                                  model_name, metadata)
