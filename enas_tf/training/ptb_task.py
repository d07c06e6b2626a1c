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

import numpy as np
import tensorflow as tf

from enas_tf.data import ptb
from enas_tf.export import arc_input
from enas_tf.export import saved_model
from enas_tf.models import ptb_child
from enas_tf.search_space import diagrams
from enas_tf.search_space import rnn
from enas_tf.training import distribute
from enas_tf.training import guard
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
    grad_bound: float = 0.25  # child_grad_bound
    l2_reg: float = 1e-7  # child_l2_reg
    slowness_reg: float = 0.0  # child_rnn_slowness_reg
    reward_constant: float = 80.0  # controller_reward_constant
    steps_per_epoch: int = 0  # child_steps_per_epoch (0: a full pass)
    precision: str = "float32"  # child_precision: float32 or mixed_bfloat16


class PtbTask(task.ChildTask):
    """PTB language modelling with a searched (or fixed) ENAS cell."""

    metric_name = "ppl"

    def __init__(self, config, data, rng, fixed_arc=None, strategy=None):
        self.config, self.data, self.rng = config, data, rng
        self.strategy = strategy or tf.distribute.get_strategy()
        distribute.check_global_batch(self.strategy, config.batch_size)
        self.space = rnn.RnnSpace(config.num_nodes)
        self.fixed_arc = None if fixed_arc is None else self.space.validate(fixed_arc)
        with self.strategy.scope():
            self.model = ptb_child.PtbChild(
                data.vocab.size, config.hidden_size, config.num_nodes,
                fixed_arc=self.fixed_arc, keep_probs=config.keep_probs,
                init_range=config.init_range, dtype=precision.policy(config.precision))
            self.optimizer = distribute.SummedGradientsSGD(config.lr)
            self._build()
        self.train_windows = ptb.lm_dataset(data.train, config.batch_size, config.bptt)
        # Reward batches cycle through the validation windows from a
        # checkpointed position, so a resumed run rewards the same batches.
        self.reward_windows = list(ptb.lm_dataset(data.valid, config.batch_size, config.bptt))
        self.reward_position = tf.Variable(0, dtype=tf.int64, trainable=False,
                                           name="reward_position")
        self._train_step = tf.function(self._train_step_fn)
        self._eval_step = tf.function(self._eval_step_fn)
        self._iterator, self._state = None, None

    def _build(self):
        """Creates every variable (model and optimizer slots) before tracing."""
        tokens = tf.zeros([1, 1], tf.int32)
        self.model(tokens, self.model.initial_state(1), self._arc_tensor(None))
        self.optimizer.build(self.model.trainable_variables)

    def _arc_tensor(self, arc):
        if arc is None:
            arc = self.fixed_arc if self.fixed_arc is not None else np.zeros(
                self.space.arc_length, np.int32)
        return tf.convert_to_tensor(arc, tf.int32)

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

    def _train_step_fn(self, inputs, targets, weights, state, arc):
        """One step on the global batch; ``state`` holds each replica's rows."""
        seed = self.rng.make_seeds(1)[:, 0]
        loss, state, grad_norm, finite = self.strategy.run(
            self._replica_train_step, args=(inputs, targets, weights, state, arc, seed))
        first = lambda value: distribute.first_local(self.strategy, value)  # noqa: E731
        return first(loss), state, first(grad_norm), first(finite)

    def _replica_train_step(self, inputs, targets, weights, state, arc, seed):
        """Trains on this replica's slice with the gradients summed over replicas."""
        checks = []
        if distribute.is_multi_worker(self.strategy):
            checks.append(distribute.assert_same_on_all_replicas(
                arc, "the workers sampled different arcs: give them the same --seed"))
        count = tf.reduce_sum(weights)  # tokens of the global batch
        inputs, targets, weights = (distribute.local_slice(t) for t in (inputs, targets, weights))
        variables = self.model.trainable_variables
        with tf.control_dependencies(checks), tf.GradientTape() as tape:
            # Read once for the cell and the l2 term (see EnasRnnCell).
            edge_weights = self.model.cell.edge_weights_for(arc)
            logits, state, outputs = self.model(inputs, state, arc, edge_weights=edge_weights,
                                                training=True, seed=distribute.replica_seed(seed))
            loss_sum, _ = self._token_loss(logits, targets, weights)
            loss = loss_sum / count
            total = loss + self._regularizer(edge_weights, outputs) / distribute.num_replicas()
        grads = tape.gradient(total, variables)
        loss, total, *grads = distribute.sum_across_replicas([loss, total] + grads)
        grads, grad_norm = tf.clip_by_global_norm(grads, self.config.grad_bound)
        finite = tf.math.is_finite(total) & tf.math.is_finite(grad_norm)
        # A non-finite step never reaches the weights: its (plain SGD) update
        # is zeroed and the carried state restarts.
        self.optimizer.apply_gradients(zip(guard.zero_unless(finite, grads), variables))
        state = tf.where(finite, state, tf.zeros_like(state))
        return loss, state, grad_norm, finite

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

    def begin_epoch(self, epoch):
        cfg = self.config
        lr = schedules.exponential_decay(epoch, cfg.lr, cfg.lr_dec_rate, cfg.lr_dec_start,
                                         cfg.lr_dec_every, cfg.lr_dec_min)
        self.optimizer.learning_rate.assign(lr)
        self._iterator = iter(self.train_windows)
        # Made by strategy.run, as the step's own state: one trace for both.
        self._state = self.strategy.run(lambda: self.model.initial_state(
            cfg.batch_size // distribute.num_replicas()))
        return lr

    def train_step(self, arc):
        inputs, targets, weights = next(self._iterator)
        loss, self._state, grad_norm, finite = self._train_step(
            inputs, targets, weights, self._state, self._arc_tensor(arc))
        loss = float(loss.numpy())
        # No per-step perplexity: an epoch's mean of them is ruled by spikes;
        # exp of the mean loss is the figure, and the full-split evaluations give it.
        return {"loss": loss,
                "grad_norm": float(grad_norm.numpy()), "skipped": int(not finite.numpy())}

    def reward_batch(self):
        position = int(self.reward_position.assign_add(1).numpy()) - 1
        return self.reward_windows[position % len(self.reward_windows)]

    def evaluate(self, arc, split):
        ids = {"valid": self.data.valid, "test": self.data.test}[split]
        batch = self.config.eval_batch_size
        state = self.model.initial_state(batch)
        arc = self._arc_tensor(arc)
        total, count = 0.0, 0.0
        for inputs, targets, weights in ptb.lm_dataset(ids, batch, self.config.bptt,
                                                       pad_final=True):
            loss_sum, n, state = self._eval_step(inputs, targets, weights, state, arc)
            total += float(loss_sum.numpy())
            count += float(n.numpy())
        loss = total / count
        return {f"{split}_loss": loss, f"{split}_ppl": float(np.exp(loss))}

    def num_params(self):
        return int(sum(np.prod(v.shape) for v in self.model.trainable_variables))

    def write_diagram(self, arc, path_without_extension):
        path = path_without_extension + ".svg"
        with open(path, "w", encoding="utf-8") as f:
            f.write(diagrams.rnn_cell_svg(self.space.decode(arc)))
        return path

    def export(self, export_base, model_name, metadata, arc=None, supernet=False):
        """Writes the fixed model as a SavedModel; returns its directory.

        A search model exports ``arc``'s fixed child (its weights copied out
        of the shared ones), or with ``supernet`` itself, the arc an input.
        """
        arcs = arc_input.for_export(self.space, self.fixed_arc, arc, supernet)
        model = self.model
        if arcs.pinned is not None:
            model, arcs = fixed_child(self.model, arcs.pinned), arc_input.ArcInput()
        module = PtbServingModule(model, self.data.vocab, arcs)
        return saved_model.export(
            module, export_base, model_name,
            signatures={"serving_default": module.serve,
                        "serve_with_state": module.serve_with_state},
            metadata=dict(metadata, **arcs.metadata()),
            assets={"vocab.txt": "\n".join(self.data.vocab.decode(range(self.data.vocab.size))) + "\n"})


def fixed_child(search_model, arc):
    """The fixed-arc child of ``arc`` with the search model's weights.

    The fixed cell creates only the chosen edges (row l-1 = node l's edge);
    every other weight is the shared one as it is.
    """
    child = ptb_child.PtbChild(
        search_model.vocab_size, search_model.hidden_size, search_model.num_nodes,
        fixed_arc=arc, keep_probs=search_model.keep_probs,
        init_range=search_model.init_range, dtype=search_model.dtype_policy)
    child(tf.zeros([1, 1], tf.int32), child.initial_state(1))
    source, cell = search_model, search_model.cell
    pairs = [(child.embedding.embeddings, source.embedding.embeddings),
             (child.softmax_bias, source.softmax_bias),
             (child.cell.w_input, cell.w_input), (child.cell.w_state, cell.w_state),
             (child.cell.w_edges, cell.edge_weights_for(tf.constant(arc, tf.int32)))]
    assert len(pairs) == len(child.variables), "a PtbChild weight is not copied"
    for target, value in pairs:
        target.assign(value)
    return child


class PtbServingModule(tf.Module):
    """Serving signatures: token ids [+ arc] -> next-token log-probabilities."""

    def __init__(self, model, vocab, arcs=None):
        super().__init__()
        # Track the variables, not the Keras model: saving would otherwise
        # try to trace the model's own call signature.
        self.model_variables = saved_model.tf_variables(model)
        self._model = lambda *args, **kwargs: model(*args, **kwargs)
        self._initial_state = model.initial_state
        self._arcs = arcs or arc_input.ArcInput()
        self.vocab_size = vocab.size
        tokens = tf.TensorSpec([None, None], tf.int64, name="tokens")
        state = tf.TensorSpec([None, None], tf.float32, name="initial_state")
        self.serve = tf.function(self._serve, input_signature=[tokens] + self._arcs.specs)
        self.serve_with_state = tf.function(
            self._serve_with_state, input_signature=[tokens, state] + self._arcs.specs)

    def _run(self, tokens, state, arc):
        tokens = tf.cast(tokens, tf.int32)
        checks = [tf.debugging.assert_non_negative(tokens, message="token ids must be >= 0"),
                  tf.debugging.assert_less(
                      tokens, self.vocab_size,
                      message=f"token ids must be < the vocabulary size {self.vocab_size}")]
        with tf.control_dependencies(checks):  # the checks run before the lookup
            tokens = tf.identity(tokens)
        logits, state, _ = self._model(tokens, state, self._arcs.tensor(arc), training=False)
        return {"log_probs": tf.nn.log_softmax(tf.cast(logits, tf.float32)),
                "final_state": tf.cast(state, tf.float32)}

    def _serve(self, tokens, arc=None):
        return self._run(tokens, self._initial_state(tf.shape(tokens)[0]), arc)

    def _serve_with_state(self, tokens, initial_state, arc=None):
        return self._run(tokens, initial_state, arc)
