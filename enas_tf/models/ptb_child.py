"""The PTB language model around an ENAS cell (the child network).

Embedding -> ENAS cell -> tied softmax, with the dropouts of the paper's
setup, each a keep probability named as in the official flags: ``e`` drops
whole words (embedding rows), ``x`` the cell input and ``h`` the recurrent
state with one mask for all time steps (variational), ``o`` the cell output
(also variational). The same class is the shared-weight search model
(``fixed_arc=None``; pass the arc tensor to ``call``) and the static
fixed-arc model.
"""

import dataclasses

import keras
import tensorflow as tf

from enas_tf.layers import dropout
from enas_tf.layers import enas_rnn_cell


@dataclasses.dataclass(frozen=True)
class KeepProbs:
    """Keep probabilities of the four dropouts (1.0 disables one)."""

    embedding: float = 1.0
    inputs: float = 1.0
    state: float = 1.0
    outputs: float = 1.0


@keras.saving.register_keras_serializable(package="enas_tf")
class PtbChild(keras.Model):
    """Word-level language model whose recurrent cell is an ENAS cell.

    Call: ``model(tokens [B, T], state [B, H], arc, edge_weights=None,
    training=False, seed=None)`` -> ``(logits [B, T, V], final_state,
    cell_outputs)``. ``seed`` (int32 [2]) draws the dropout masks when
    training; ``edge_weights`` goes to the cell (see ``EnasRnnCell``), and so
    do ``activations`` (the space's registered rnn op names; default: the
    official four).
    """

    def __init__(self, vocab_size, hidden_size, num_nodes, fixed_arc=None,
                 keep_probs=None, init_range=0.04, activations=None, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_nodes = num_nodes
        self.init_range = init_range
        self.keep_probs = keep_probs or KeepProbs()
        init = keras.initializers.RandomUniform(-init_range, init_range)
        # Weight tying: the embedding matrix is also the softmax matrix, so
        # the embedding size is the hidden size.
        # The sublayers share the model's dtype policy (see training/precision).
        self.embedding = keras.layers.Embedding(
            vocab_size, hidden_size, embeddings_initializer=init, name="embedding",
            dtype=self.dtype_policy)
        self.cell = enas_rnn_cell.EnasRnnCell(
            num_nodes, hidden_size, fixed_arc=fixed_arc, init_range=init_range,
            activations=activations, name="enas_cell", dtype=self.dtype_policy)
        # The softmax weights are tied to the embedding, but the bias is its
        # own: from the near-zero outputs of a fresh cell, a tied softmax
        # without one cannot even learn word frequencies, and training sat at
        # the uniform loss for the first hundred steps at the paper's size.
        self.softmax_bias = self.add_weight(
            shape=(vocab_size,), initializer="zeros", name="softmax_bias")

    @property
    def fixed_arc(self):
        return self.cell.fixed_arc

    @property
    def activations(self):
        return self.cell.activations

    def initial_state(self, batch_size):
        return tf.zeros([batch_size, self.hidden_size], self.compute_dtype)

    def call(self, tokens, state, arc=None, edge_weights=None, training=False, seed=None):
        keep = self.keep_probs if training else KeepProbs()
        batch = tf.shape(tokens)[0]
        seeds = (tf.unstack(tf.random.experimental.stateless_split(seed, 4))
                 if training else [None] * 4)
        dtype = self.compute_dtype
        embedded = self.embedding(tokens)
        word_mask = dropout.keep_mask([self.vocab_size, 1], keep.embedding, seeds[0], dtype)
        embedded = embedded * tf.gather(word_mask, tokens)
        embedded = embedded * dropout.keep_mask(
            [batch, 1, self.hidden_size], keep.inputs, seeds[1], dtype)
        state_mask = None
        if keep.state < 1.0:
            state_mask = dropout.keep_mask([batch, self.hidden_size], keep.state, seeds[2],
                                           dtype)
        outputs, state = self.cell(embedded, state, arc, state_mask=state_mask,
                                   edge_weights=edge_weights, training=training)
        dropped = outputs * dropout.keep_mask(
            [batch, 1, self.hidden_size], keep.outputs, seeds[3], dtype)
        # In the compute dtype; the task's softmax and loss cast the logits to float32.
        logits = enas_rnn_cell.matmul_over_time(dropped, self.embedding.embeddings,
                                                transpose_b=True)
        logits = logits + self.softmax_bias
        return logits, state, outputs

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                      num_nodes=self.num_nodes, fixed_arc=self.fixed_arc,
                      keep_probs=dataclasses.asdict(self.keep_probs),
                      init_range=self.init_range, activations=list(self.activations))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["keep_probs"] = KeepProbs(**config["keep_probs"])
        return cls(**config)
