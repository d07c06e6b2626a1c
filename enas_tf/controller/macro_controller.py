"""The controller for the CIFAR-10 macro space (official general_controller).

Per layer i, in the official order: an LSTM step whose output gives the op
logits (``h @ w_soft``), the chosen op's embedding is fed to a second LSTM
step whose output ``a_i`` is layer i's anchor; for i >= 1 that output also
queries the earlier anchors: ``q_j = v^T tanh(W_anchor a_j + W_query a_i)``,
and each skip j is a 2-class decision on the shaped logits ``[-q_j, q_j]``
(P(skip) = sigmoid(2 q_j) after shaping). The next input is the sum of the
chosen anchors / (1 + number of skips), or ``g_emb`` after layer 0. Layer
i's anchor joins the list after its own skips are decided.

The penalty is the skip KL of the paper, averaged as the official code does
(``reduce_mean`` over layers 1..L-1 of the per-layer sum over its skips)::

    penalty = 1/(L-1) * sum_{i>=1} sum_{j<i} KL([1-p_ij, p_ij] || [1-t, t])

with p_ij the probability the policy actually samples the skip with
(``sigmoid(logit)`` of the decision's log-odds ``2 q_j``) and t =
skip_target; it is 0 for a one-layer net. Deliberate difference: the
official code applied ``sigmoid`` to each class logit (``sigmoid(q_j)``), so
its penalty vanished at P(skip) ~ 0.31, not at the target 0.4.

Entropy is each decision's full distribution entropy (the official macro
code used the sampled action's ``-p log p``), as in the other controllers.
"""

import keras
import tensorflow as tf

from enas_tf.controller import controller
from enas_tf.search_space import macro


def skip_kl(logits, skip_target):
    """Sum over skips of KL([1-p, p] || [1-t, t]); logits [n, 2] are the shaped ones."""
    log_p = tf.nn.log_softmax(logits)
    log_t = tf.math.log(tf.constant([1.0 - skip_target, skip_target]))
    return tf.reduce_sum(tf.exp(log_p) * (log_p - log_t))


@keras.saving.register_keras_serializable(package="enas_tf")
class MacroController(controller.Controller):
    """Samples macro arcs (L ops and L(L-1)/2 skip bits).

    The space is ``MacroSpace(num_layers, num_branches, ops)``; the op
    softmax has one class per op of it.
    """

    def __init__(self, num_layers, num_branches=None, lstm_size=64,
                 tanh_constant=1.5, temperature=None, skip_target=0.4, ops=None, **kwargs):
        super().__init__(lstm_size, tanh_constant=tanh_constant,
                         temperature=temperature, **kwargs)
        if not 0.0 < skip_target < 1.0:
            raise ValueError(f"skip_target must be in (0, 1). Received: skip_target={skip_target}")
        self.num_layers = num_layers
        self.skip_target = skip_target
        self.space = macro.MacroSpace(num_layers, num_branches, ops)
        self.num_branches = self.space.num_branches

    def build(self, input_shape=None):
        super().build(input_shape)
        self.w_soft = self._weight("w_soft", (self.lstm_size, self.num_branches))
        self.w_emb = self._weight("w_emb", (self.num_branches, self.lstm_size))
        self.build_attention()

    def _sample(self, decisions):
        c, h = self.zero_state()
        inputs = self.g_emb
        anchors, keys, penalties = [], [], []
        for layer in range(self.num_layers):
            c, h = self.lstm(inputs, c, h)
            op = decisions.choose(self.shape_logits(tf.matmul(h, self.w_soft)))
            c, h = self.lstm(tf.gather(self.w_emb, op)[tf.newaxis], c, h)
            if layer:
                q = self.attention(tf.concat(keys, 0), h)
                logits = self.shape_logits(tf.stack([-q, q], axis=1))
                skips = tf.cast(tf.stack(
                    [decisions.choose(logits[j:j + 1]) for j in range(layer)]), tf.float32)
                penalties.append(skip_kl(logits, self.skip_target))
                inputs = (tf.matmul(skips[tf.newaxis], tf.concat(anchors, 0))
                          / (1.0 + tf.reduce_sum(skips)))
            else:
                inputs = self.g_emb
            anchors.append(h)
            keys.append(tf.matmul(h, self.w_attn_anchor))
        penalty = tf.add_n(penalties) / len(penalties) if penalties else 0.0
        return decisions.result(penalty)

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, num_branches=self.num_branches,
                      skip_target=self.skip_target, ops=list(self.space.op_names))
        return config
