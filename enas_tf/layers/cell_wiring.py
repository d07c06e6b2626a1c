"""One arc's wiring of the ENAS cell, and truncated BPTT through it.

The forward step is the paper's highway node, repeated for every node::

    [cand, gate] = h_j W,  g = sigmoid(gate),  s = h_j + g * (f(cand) - h_j)

Choices (previous node, activation) are Python ints for a fixed arc and
scalar int32 tensors in search mode, where ``tf.switch_case`` picks the
previous node's tensor (no copy) and runs only the chosen activation.

``unroll`` runs a static number of time steps with a hand-written backward
pass. Autodiff would form each edge's weight gradient as T small
``[H, B] x [B, 2H]`` products and then add T dense ``[H, 2H]`` tensors,
streaming T x H x 2H floats per edge through memory. Here each node's
inputs and pre-activation gradients are kept for all T steps and its weight
gradient is one ``[H, T*B] x [T*B, 2H]`` product, which runs near the
machine's matmul ceiling. Tests check it against autodiff of ``step``.
"""

import tensorflow as tf

from enas_tf.search_space import rnn

_ACTIVATION_FNS = {"tanh": tf.tanh, "relu": tf.nn.relu,
                   "identity": tf.identity, "sigmoid": tf.sigmoid}
# d f / d cand, written in terms of the activation's output v = f(cand).
_ACTIVATION_GRADS = {"tanh": lambda v: 1.0 - tf.square(v),
                     "relu": lambda v: tf.cast(v > 0, v.dtype),
                     "identity": tf.ones_like,
                     "sigmoid": lambda v: v * (1.0 - v)}
ACTIVATION_FNS = tuple(_ACTIVATION_FNS[name] for name in rnn.ACTIVATIONS)
ACTIVATION_GRADS = tuple(_ACTIVATION_GRADS[name] for name in rnn.ACTIVATIONS)


def _dispatch(choice, fns, value):
    """``fns[choice](value)``; runs only the chosen function for a tensor choice."""
    if isinstance(choice, int):
        return fns[choice](value)
    return tf.switch_case(choice, [lambda fn=fn: fn(value) for fn in fns])


def _select(choice, tensors):
    """``tensors[choice]`` for an int or a scalar tensor choice."""
    if isinstance(choice, int):
        return tensors[choice]
    return tf.switch_case(choice, [lambda t=t: tf.identity(t) for t in tensors])


def _add_at(choice, tensors, value):
    """``tensors`` with ``value`` added to ``tensors[choice]``."""
    def added(i):
        out = list(tensors)
        out[i] = out[i] + value
        return out
    if isinstance(choice, int):
        return added(choice)
    return list(tf.switch_case(choice, [lambda i=i: added(i) for i in range(len(tensors))]))


class Wiring:
    """The cell's choices for one arc.

    ``prevs``: previous node of nodes 1..N-1; ``acts``: activation of nodes
    0..N-1 (ints or scalar tensors); ``loose``: a tuple of the loose-end
    node ids (fixed arc) or an ``[N]`` weight tensor averaging them.
    """

    def __init__(self, prevs, acts, loose):
        self.prevs, self.acts, self.loose = list(prevs), list(acts), loose

    @property
    def num_nodes(self):
        return len(self.acts)

    def _output(self, nodes):
        if isinstance(self.loose, tuple):
            return tf.add_n([nodes[i] for i in self.loose]) / len(self.loose)
        return tf.tensordot(tf.cast(self.loose, nodes[0].dtype), tf.stack(nodes), axes=1)

    def _loose_weight(self, node, dtype):
        """The output's weight on ``node``: a float, or a scalar tensor."""
        if isinstance(self.loose, tuple):
            return 1.0 / len(self.loose) if node in self.loose else 0.0
        return tf.cast(self.loose[node], dtype)

    def step(self, node0_preactivation, h_prev, edge_weights, trace=None):
        """One time step; returns the cell output (the next state).

        ``edge_weights``: the [H, 2H] weight of each node >= 1. If ``trace``
        is a list, each node's (input, gate, activation value) is appended.
        """
        nodes = []
        for node in range(self.num_nodes):
            if node == 0:
                h_in, preactivation = h_prev, node0_preactivation
            else:
                h_in = _select(self.prevs[node - 1], nodes)
                preactivation = tf.matmul(h_in, edge_weights[node - 1])
            candidate, gate = tf.split(preactivation, 2, axis=-1)
            gate = tf.sigmoid(gate)
            value = _dispatch(self.acts[node], ACTIVATION_FNS, candidate)
            nodes.append(h_in + gate * (value - h_in))
            if trace is not None:
                trace.append((h_in, gate, value))
        return self._output(nodes)

    def unroll(self, x_proj, state, w_state, edge_weights, state_mask=None):
        """The cell over a static number of steps, with the batched-weight backward.

        ``x_proj``: [B, T, 2H] node-0 input projections; ``state``: [B, H];
        ``edge_weights``: [N-1, H, 2H]. Returns (outputs [B, T, H], final state).
        """
        steps = x_proj.shape[1]

        @tf.custom_gradient
        def run(x_proj, state, w_state, edge_weights):
            edges = tf.unstack(edge_weights, num=self.num_nodes - 1)
            traces, masked_states, outputs = [], [], []
            h = state
            for t in range(steps):
                h_masked = h if state_mask is None else h * state_mask
                trace = []
                h = self.step(x_proj[:, t] + tf.matmul(h_masked, w_state), h, edges, trace)
                traces.append(trace)
                masked_states.append(h_masked)
                outputs.append(h)

            def grad(d_outputs, d_final):
                # An output the loss does not use may come back as None.
                d_outputs = tf.zeros_like(x_proj[..., :h.shape[-1]]) if d_outputs is None else d_outputs
                d_final = tf.zeros_like(h) if d_final is None else d_final
                return self._backward(d_outputs, d_final, traces, masked_states,
                                      w_state, edges, state_mask)

            return (tf.stack(outputs, axis=1), h), grad

        return run(x_proj, state, w_state, edge_weights)

    def _backward(self, d_outputs, d_final, traces, masked_states, w_state, edges,
                  state_mask):
        """Gradients of (x_proj, state, w_state, edge_weights), back through time."""
        dtype = masked_states[0].dtype
        num = self.num_nodes
        d_h = d_final
        d_x, d_pre = [], [[] for _ in range(num)]
        for t in reversed(range(len(traces))):
            d_out = d_outputs[:, t] + d_h
            d_nodes = [d_out * self._loose_weight(node, dtype) for node in range(num)]
            for node in reversed(range(num)):
                h_in, gate, value = traces[t][node]
                d_s = d_nodes[node]
                d_candidate = d_s * gate * _dispatch(self.acts[node], ACTIVATION_GRADS, value)
                d_gate = d_s * (value - h_in) * gate * (1.0 - gate)
                d_preactivation = tf.concat([d_candidate, d_gate], axis=-1)
                d_pre[node].append(d_preactivation)
                d_carry = d_s * (1.0 - gate)
                if node == 0:
                    d_h_masked = tf.matmul(d_preactivation, w_state, transpose_b=True)
                    if state_mask is not None:
                        d_h_masked *= state_mask
                    d_h = d_carry + d_h_masked
                    d_x.append(d_preactivation)
                else:
                    d_h_in = d_carry + tf.matmul(d_preactivation, edges[node - 1],
                                                 transpose_b=True)
                    d_nodes = _add_at(self.prevs[node - 1], d_nodes, d_h_in)
        # Weight gradients: one product over all time steps per matrix
        # (d_pre lists run backwards in time).
        def weight_grad(inputs, d_preactivations):
            return tf.matmul(tf.concat(inputs, axis=0),
                             tf.concat(d_preactivations[::-1], axis=0), transpose_a=True)

        d_w_state = weight_grad(masked_states, d_pre[0])
        d_edges = tf.stack([weight_grad([trace[node][0] for trace in traces], d_pre[node])
                            for node in range(1, num)])
        return tf.stack(d_x[::-1], axis=1), d_h, d_w_state, d_edges
