"""The controller for the PTB recurrent-cell space.

Per node, as in the official code: one LSTM step whose output becomes the
node's anchor; for nodes >= 1 an attention over the earlier anchors picks
the previous node (minus the official recency penalty (l - j)^2 / 6), and
the chosen anchor, scaled by 1 / (0.1 + l - j), is fed back; a second LSTM
step then picks the activation, whose embedding is the next input.
"""

import keras
import tensorflow as tf

from enas_tf.controller import controller
from enas_tf.search_space import rnn


@keras.saving.register_keras_serializable(package="enas_tf")
class RnnController(controller.Controller):
    """Samples PTB cell arcs (2N-1 decisions) over ``RnnSpace(num_nodes, activations)``."""

    def __init__(self, num_nodes, lstm_size=100, activations=None, **kwargs):
        super().__init__(lstm_size, **kwargs)
        self.num_nodes = num_nodes
        self.space = rnn.RnnSpace(num_nodes, activations)

    def build(self, input_shape=None):
        super().build(input_shape)
        num_acts = len(self.space.op_names)
        self.w_soft = self._weight("w_soft", (self.lstm_size, num_acts))
        self.w_emb = self._weight("w_emb", (num_acts, self.lstm_size))
        self.build_attention()

    def _sample(self, decisions):
        c, h = self.zero_state()
        inputs = self.g_emb
        anchors, keys = [], []
        for node in range(self.num_nodes):
            c, h = self.lstm(inputs, c, h)
            if node > 0:
                scores = self.attention(tf.concat(keys, 0), h)
                logits = self.shape_logits(scores[tf.newaxis])
                distance = tf.cast(node - tf.range(node), tf.float32)
                prev = decisions.choose(logits - distance ** 2 / 6.0)
                chosen = tf.gather(tf.concat(anchors, 0), prev)[tf.newaxis]
                inputs = chosen / (0.1 + tf.cast(node - prev, tf.float32))
            else:
                inputs = self.g_emb
            anchors.append(h)
            keys.append(tf.matmul(h, self.w_attn_anchor))
            c, h = self.lstm(inputs, c, h)
            act = decisions.choose(self.shape_logits(tf.matmul(h, self.w_soft)))
            inputs = tf.gather(self.w_emb, act)[tf.newaxis]
        return decisions.result()

    def get_config(self):
        config = super().get_config()
        config.update(num_nodes=self.num_nodes, activations=list(self.space.op_names))
        return config
