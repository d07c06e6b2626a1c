"""The ENAS controller: an LSTM policy that samples architectures.

The machinery every space shares lives in ``Controller``: the bias-free
LSTM of the official code, the logit shaping (temperature, then
``tanh_constant * tanh``), and one categorical decision that either samples
(stateless, from an explicit seed, so resumed runs sample the same arcs) or
scores a given choice (``arc=...``), returning its log-probability and the
entropy of its distribution. Subclasses walk their space's decisions.
"""

import dataclasses

import keras
import tensorflow as tf


@dataclasses.dataclass
class ControllerSample:
    """One sampled (or scored) architecture and its policy statistics."""

    arc: tf.Tensor  # int32 [arc_length]
    log_prob: tf.Tensor  # sum of the decisions' log-probabilities
    entropy: tf.Tensor  # sum of the decisions' distribution entropies
    decision_entropies: tf.Tensor  # float32 [arc_length]: each position's, in arc order
    penalty: tf.Tensor  # extra loss term (the macro skip KL), 0 elsewhere


class Controller(keras.layers.Layer):
    """Base of the space-specific policies (bias-free one-layer LSTM).

    A subclass sets ``space`` (its SearchSpace) and implements ``_sample``.
    """

    space = None

    def __init__(self, lstm_size, tanh_constant=None, temperature=None,
                 init_range=0.1, **kwargs):
        super().__init__(**kwargs)
        self.lstm_size = lstm_size
        self.tanh_constant = tanh_constant
        self.temperature = temperature
        self.init_range = init_range

    def _init(self):
        return keras.initializers.RandomUniform(-self.init_range, self.init_range)

    def _weight(self, name, shape):
        return self.add_weight(shape=shape, initializer=self._init(), name=name)

    def build(self, input_shape=None):
        self.w_lstm = self._weight("w_lstm", (2 * self.lstm_size, 4 * self.lstm_size))
        self.g_emb = self._weight("g_emb", (1, self.lstm_size))

    def build_attention(self):
        """Weights of the official attention that points back at earlier anchors."""
        size = self.lstm_size
        self.w_attn_anchor = self._weight("w_attn_anchor", (size, size))
        self.w_attn_query = self._weight("w_attn_query", (size, size))
        self.v_attn = self._weight("v_attn", (size, 1))

    def attention(self, keys, h):
        """Scores ``v^T tanh(key_j + W h)``: keys [n, size] (anchors @ w_attn_anchor) -> [n]."""
        query = tf.tanh(keys + tf.matmul(h, self.w_attn_query))
        return tf.reshape(tf.matmul(query, self.v_attn), [-1])

    def lstm(self, inputs, c, h):
        """One step of the official bias-free LSTM; inputs, c, h are [1, size]."""
        gates = tf.matmul(tf.concat([inputs, h], axis=1), self.w_lstm)
        i, f, o, g = tf.split(gates, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return c, tf.sigmoid(o) * tf.tanh(c)

    def zero_state(self):
        zeros = tf.zeros([1, self.lstm_size])
        return zeros, zeros

    def shape_logits(self, logits, tanh_constant=None):
        """Temperature, then tanh squashing: keeps the policy from collapsing."""
        tanh_constant = self.tanh_constant if tanh_constant is None else tanh_constant
        if self.temperature:
            logits = logits / self.temperature
        if tanh_constant:
            logits = tanh_constant * tf.tanh(logits)
        return logits

    def sample(self, seed, arc=None):
        """Samples an arc from ``seed`` (int [2]), or scores the given ``arc``."""
        if not self.built:
            self.build()
        return self._sample(Decisions(seed, self.space.arc_length, arc))

    def _sample(self, decisions):
        """Makes every decision of an arc in order; returns ``decisions.result(...)``."""
        raise NotImplementedError

    def sample_batch(self, seeds):
        """Samples K arcs at once, arc i from ``seeds[i]`` (int [K, 2]).

        One vectorized pass of the policy (the LSTM runs with batch K), so
        arc i, its log-probability and its entropy are those of
        ``sample(seeds[i])``. Returns a ControllerSample of [K, ...] tensors.
        """
        if not self.built:
            self.build()

        def one(seed):
            sample = self.sample(seed)
            return tuple(getattr(sample, f.name) for f in dataclasses.fields(sample))

        return ControllerSample(*tf.vectorized_map(one, seeds))

    def call(self, seed):
        return self.sample(seed)

    def get_config(self):
        config = super().get_config()
        config.update(lstm_size=self.lstm_size, tanh_constant=self.tanh_constant,
                      temperature=self.temperature, init_range=self.init_range)
        return config


class Decisions:
    """Collects one architecture's decisions, sampled or forced."""

    def __init__(self, seed, num_decisions, forced_arc=None):
        self.forced_arc = forced_arc
        self.seeds = (None if forced_arc is not None else
                      tf.unstack(tf.random.experimental.stateless_split(
                          tf.cast(seed, tf.int64), num_decisions)))
        self.choices, self.log_probs, self.entropies = {}, [], {}

    def choose(self, logits, position=None):
        """logits [1, K] -> int32 scalar choice, recording its statistics.

        ``position`` is the arc position decided (default: the next one), for
        policies that decide positions out of arc order.
        """
        position = len(self.choices) if position is None else position
        if self.forced_arc is not None:
            choice = self.forced_arc[position]
        else:
            choice = tf.random.stateless_categorical(
                logits, 1, self.seeds[position], dtype=tf.int32)[0, 0]
        log_p = tf.nn.log_softmax(logits)[0]
        self.log_probs.append(log_p[choice])
        self.entropies[position] = -tf.reduce_sum(tf.exp(log_p) * log_p)
        self.choices[position] = choice
        return choice

    def result(self, penalty=0.0):
        return ControllerSample(
            arc=tf.stack([self.choices[p] for p in sorted(self.choices)]),
            log_prob=tf.add_n(self.log_probs),
            entropy=tf.add_n(list(self.entropies.values())),
            decision_entropies=tf.stack([self.entropies[p] for p in sorted(self.entropies)]),
            penalty=tf.convert_to_tensor(penalty, tf.float32))
