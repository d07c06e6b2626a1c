"""One arc's wiring of the ENAS cell, and truncated BPTT through it.

The forward step is the paper's highway node, repeated for every node::

    [cand, gate] = h_j W,  g = sigmoid(gate),  s = h_j + g * (f(cand) - h_j)

The activations are the space's (``activations``: the official ones with
their derivatives written out, a user's through autodiff). Choices
(previous node, activation) are Python ints for a fixed arc. In
search mode they are scalar int32 tensors: read by value when executing
eagerly; inside a graph a node's input is routed by ``Switch``/``Merge``
pairs, one bool per option (see ``routing``), and its activation by
``tf.switch_case``.

``unroll`` runs a static number of time steps with a hand-written backward
pass. Autodiff would form each edge's weight gradient as T small
``[H, B] x [B, 2H]`` products and then add T dense ``[H, 2H]`` tensors,
streaming T x H x 2H floats per edge through memory. Here each node's
inputs and pre-activation gradients are kept for all T steps and its weight
gradient is one ``[H, T*B] x [T*B, 2H]`` product, which runs near the
machine's matmul ceiling. Tests check it, for fixed and routed arcs, against
autodiff of ``step`` with the same arc fixed.
"""

import functools

import tensorflow as tf

from enas_tf.layers import routing
from enas_tf.search_space import ops as op_registry

# Each official activation with its derivative written in terms of its
# output v, so a training forward pass hands the backward pass f' without a
# second dispatch.
_ACTIVATIONS = {
    "tanh": (tf.tanh, lambda v: 1.0 - tf.square(v)),
    "relu": (tf.nn.relu, lambda v: tf.cast(v > 0, v.dtype)),
    "identity": (tf.identity, tf.ones_like),
    "sigmoid": (tf.sigmoid, lambda v: v * (1.0 - v)),
}


def activations(names):
    """(function, derivative of the output or None) of each registered rnn op ``names``.

    A user's activation (None: no written derivative) must be elementwise:
    one is checked on a small tensor, failing with a one-line error naming it.
    """
    table = []
    for name in names:
        if name in _ACTIVATIONS:
            table.append(_ACTIVATIONS[name])
            continue
        fn = op_registry.factory("rnn", name)
        probe = tf.zeros([2, 3])
        out = tf.convert_to_tensor(fn(probe))
        if out.shape != probe.shape or out.dtype != probe.dtype:
            raise op_registry.OpError(
                f"rnn op {name!r} must be elementwise (same shape and dtype). Received: "
                f"{out.dtype.name}{out.shape.as_list()} for float32[2, 3]")
        table.append((fn, None))
    return tuple(table)


OFFICIAL = activations(op_registry.OFFICIAL["rnn"])


def _apply(activation, x, with_slope):
    """(f(x),) or (f(x), f'(x)); a user's f' by autodiff (f elementwise)."""
    fn, slope = activation
    if not with_slope:
        return (fn(x),)
    if slope is not None:
        value = fn(x)
        return value, slope(value)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = fn(x)
    return value, tape.gradient(value, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def _activate(activations, choice, x, with_slope):
    """(f(x),) or (f(x), f'(x)) of the chosen activation; only the chosen one runs.

    A graph choice dispatches through ``tf.switch_case`` rather than
    ``Switch``/``Merge`` pairs: with the routed picks around it, pairs here
    kept sibling nodes from running at once (a forward-only experiment:
    1.085x the static cell, 0.99x with the case; the README's performance
    section has it and ``bench/dispatch_overhead.py``'s figures).
    """
    if isinstance(choice, int):
        return _apply(activations[choice], x, with_slope)
    return tf.switch_case(choice, [functools.partial(_apply, a, x, with_slope)
                                   for a in activations])


class Wiring:
    """The cell's choices for one arc.

    ``prevs``: previous node of nodes 1..N-1; ``acts``: activation of nodes
    0..N-1; all ints, or all scalar int32 tensors, indexes into
    ``activations`` (``activations(names)``; default: the official ones).
    The cell output is the mean of the loose ends, the nodes no node reads.
    """

    def __init__(self, prevs, acts, activations=OFFICIAL):
        self.activations = activations
        self.prevs = [routing.options(p, node) for node, p in enumerate(prevs, start=1)]
        self.acts = [routing.index(a) for a in acts]
        self.fixed = isinstance(self.acts[0], int)
        if self.fixed:
            # readers[j]: the nodes that read node j.
            self.readers = [[k for k in range(j + 1, self.num_nodes) if self.prevs[k - 1] == j]
                            for j in range(self.num_nodes)]
            self.loose = [not readers for readers in self.readers]
            self.loose_scale = 1.0 / sum(self.loose)
        else:
            # readers[j]: for each node k > j, whether k reads node j.
            self.readers = [[prev[j] for prev in self.prevs[j:]] for j in range(self.num_nodes)]
            self.loose = [tf.logical_not(tf.reduce_any(tf.stack(readers))) if readers
                          else tf.constant(True) for readers in self.readers]
            loose = tf.cast(tf.stack(self.loose), tf.float32)
            # Each node's weight in the cell output: 1 / #loose ends, or 0.
            self.output_weights = loose / tf.reduce_sum(loose)
            self.node_output_weights = tf.unstack(self.output_weights)

    @property
    def num_nodes(self):
        return len(self.acts)

    def _output(self, nodes):
        """The mean of the loose ends.

        A search cell weighs all the nodes in one product (3 ops, where a
        routed sum took 4 a node): it waits for no node the output would
        not, since every node is a loose end or is read by a later one.
        """
        if self.fixed:
            total = tf.add_n([n for n, is_loose in zip(nodes, self.loose) if is_loose])
            return total * self.loose_scale
        weights = tf.cast(self.output_weights, nodes[0].dtype)
        return tf.tensordot(weights, tf.stack(nodes), 1)

    def _node_gradient(self, node, d_out, d_inputs):
        """d loss / d ``node``'s output: its share of the cell output plus its readers'.

        ``d_inputs[k]``: the gradient into node k's input, for every k > node.
        """
        if self.fixed:
            terms = [d_inputs[k] for k in self.readers[node]]
            if self.loose[node]:
                terms.append(d_out * self.loose_scale)
            return tf.add_n(terms)
        total = d_out * tf.cast(self.node_output_weights[node], d_out.dtype)
        for k, reads in enumerate(self.readers[node], start=node + 1):
            total = routing.add_if(reads, total, d_inputs[k])
        return total

    def step(self, node0_preactivation, h_prev, edge_weights, trace=None):
        """One time step; returns the cell output (the next state).

        ``edge_weights``: the [H, 2H] weight of each node >= 1. If ``trace``
        is a list, each node's (input, gate, activation value, activation
        slope) is appended.
        """
        nodes = []
        for node in range(self.num_nodes):
            if node == 0:
                h_in, preactivation = h_prev, node0_preactivation
            else:
                h_in = routing.pick(self.prevs[node - 1], nodes)
                preactivation = tf.matmul(h_in, edge_weights[node - 1])
            candidate, gate = tf.split(preactivation, 2, axis=-1)
            gate = tf.sigmoid(gate)
            if trace is None:
                value, = _activate(self.activations, self.acts[node], candidate,
                                   with_slope=False)
            else:
                value, slope = _activate(self.activations, self.acts[node], candidate,
                                          with_slope=True)
                trace.append((h_in, gate, value, slope))
            nodes.append(h_in + gate * (value - h_in))
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
                if d_outputs is None:
                    d_outputs = tf.zeros_like(x_proj[..., :h.shape[-1]])
                if d_final is None:
                    d_final = tf.zeros_like(h)
                return self._backward(d_outputs, d_final, traces, masked_states,
                                      w_state, edges, state_mask)

            return (tf.stack(outputs, axis=1), h), grad

        return run(x_proj, state, w_state, edge_weights)

    def _backward(self, d_outputs, d_final, traces, masked_states, w_state, edges,
                  state_mask):
        """Gradients of (x_proj, state, w_state, edge_weights), back through time."""
        num = self.num_nodes
        d_h = d_final
        d_x, d_pre = [], [[] for _ in range(num)]
        for t in reversed(range(len(traces))):
            d_out = d_outputs[:, t] + d_h
            d_inputs = {}  # node -> gradient into its input h_in
            for node in reversed(range(num)):
                h_in, gate, value, slope = traces[t][node]
                d_s = self._node_gradient(node, d_out, d_inputs)
                d_candidate = d_s * gate * slope
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
                    d_inputs[node] = d_carry + tf.matmul(d_preactivation, edges[node - 1],
                                                         transpose_b=True)
        # Weight gradients: one product over all time steps per matrix
        # (d_pre lists run backwards in time).
        def weight_grad(inputs, d_preactivations):
            return tf.matmul(tf.concat(inputs, axis=0),
                             tf.concat(d_preactivations[::-1], axis=0), transpose_a=True)

        d_w_state = weight_grad(masked_states, d_pre[0])
        d_edges = tf.stack([weight_grad([trace[node][0] for trace in traces], d_pre[node])
                            for node in range(1, num)])
        return tf.stack(d_x[::-1], axis=1), d_h, d_w_state, d_edges
