"""The controller for the CIFAR-10 micro space (official micro_controller).

Two cells in sequence, normal then reduction, the LSTM state carried from
one to the next. Per cell, in the official order:

- two warm-up LSTM steps on ``g_emb``, one per cell input: their anchors
  (what is fed back when the input is chosen) are zero vectors, but their
  attention keys are ``h @ w_attn_anchor`` of the warm-up outputs, as in
  the official code;
- per node b: two LSTM steps each choosing an input among the b+2 anchors by
  attention (shaped with tanh_constant), the chosen anchor fed next; then
  two LSTM steps each choosing an op from ``h @ w_soft + b_soft``, shaped
  with ``tanh_constant / op_tanh_reduce``, the normal cell adding the
  constant bias ``[0.25, 0.25, -0.25, ...]`` after the tanh, the op's
  embedding fed next; then one LSTM step whose output is node b's anchor,
  and ``g_emb`` is the next input.

The learned ``b_soft`` starts at ``[10, 10, 0, ...]``: the official code
favours the two separable convolutions (codes 0 and 1 of the official
ops), so both biases are 10 / 0.25 for the ops ``sep_conv_3x3`` and
``sep_conv_5x5`` of the space, wherever its op list puts them, and 0 /
-0.25 for the others (the official ones for the official list and its
prefixes). Arc positions are decided out of arc order (input 1, input 2,
op 1, op 2), each at its own position.
"""

import keras
import numpy as np
import tensorflow as tf

from enas_tf.controller import controller
from enas_tf.search_space import micro


_FAVOURED = ("sep_conv_3x3", "sep_conv_5x5")


def _favour_sep_convs(op_names, favoured, other):
    """The official per-op constants: ``favoured`` for the separable convolutions."""
    return np.where([name in _FAVOURED for name in op_names], favoured,
                    other).astype(np.float32)


@keras.saving.register_keras_serializable(package="enas_tf")
class MicroController(controller.Controller):
    """Samples micro arcs (8B decisions: a normal and a reduction cell).

    The space is ``MicroSpace(num_nodes, num_ops, ops)``; the op softmax has
    one class per op of it.
    """

    def __init__(self, num_nodes=5, num_ops=None, lstm_size=64,
                 tanh_constant=1.10, op_tanh_reduce=2.5, temperature=None, ops=None,
                 **kwargs):
        super().__init__(lstm_size, tanh_constant=tanh_constant,
                         temperature=temperature, **kwargs)
        self.num_nodes = num_nodes
        self.op_tanh_reduce = op_tanh_reduce
        self.space = micro.MicroSpace(num_nodes, num_ops, ops)
        self.num_ops = self.space.num_ops
        self.normal_bias = tf.constant(_favour_sep_convs(self.space.op_names, 0.25, -0.25))

    def build(self, input_shape=None):
        super().build(input_shape)
        self.w_soft = self._weight("w_soft", (self.lstm_size, self.num_ops))
        self.b_soft = self.add_weight(
            shape=(self.num_ops,), name="b_soft",
            initializer=keras.initializers.Constant(
                _favour_sep_convs(self.space.op_names, 10.0, 0.0)))
        self.w_emb = self._weight("w_emb", (self.num_ops, self.lstm_size))
        self.build_attention()

    def _sample(self, decisions):
        state = self.zero_state()
        for reduction in (False, True):
            state = self._sample_cell(decisions, reduction, state)
        return decisions.result()

    def _sample_cell(self, decisions, reduction, state):
        """Walks one cell's decisions; returns the LSTM state for the next cell."""
        c, h = state
        inputs = self.g_emb
        anchors, keys = [], []
        for _ in range(2):
            c, h = self.lstm(inputs, c, h)
            anchors.append(tf.zeros_like(h))
            keys.append(tf.matmul(h, self.w_attn_anchor))
        op_tanh = self.tanh_constant / self.op_tanh_reduce if self.tanh_constant else None
        for node in range(self.num_nodes):
            for field in (0, 2):
                c, h = self.lstm(inputs, c, h)
                logits = self.shape_logits(self.attention(tf.concat(keys, 0), h)[tf.newaxis])
                index = decisions.choose(logits, self.space.position(reduction, node, field))
                inputs = tf.gather(tf.concat(anchors, 0), index)[tf.newaxis]
            for field in (1, 3):
                c, h = self.lstm(inputs, c, h)
                logits = self.shape_logits(tf.matmul(h, self.w_soft) + self.b_soft, op_tanh)
                if not reduction:
                    logits += self.normal_bias
                op = decisions.choose(logits, self.space.position(reduction, node, field))
                inputs = tf.gather(self.w_emb, op)[tf.newaxis]
            c, h = self.lstm(inputs, c, h)
            anchors.append(h)
            keys.append(tf.matmul(h, self.w_attn_anchor))
            inputs = self.g_emb
        return c, h

    def get_config(self):
        config = super().get_config()
        config.update(num_nodes=self.num_nodes, num_ops=self.num_ops,
                      ops=list(self.space.op_names),
                      op_tanh_reduce=self.op_tanh_reduce)
        return config
