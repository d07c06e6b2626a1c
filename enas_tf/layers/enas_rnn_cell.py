"""The ENAS recurrent cell over shared weights (Pham et al., 2018, sec. 2.2).

Every node computes a highway step from one earlier node j::

    c = sigmoid(h_j W^c),  h = c * f(h_j W^h) + (1 - c) * h_j

with node 0 reading [x_t, h_{t-1}]. The cell output is the mean of the loose
ends (nodes no other node reads).

In search mode (``fixed_arc=None``) the layer owns one weight matrix per
(node, previous node) edge, stacked as ``[num_edges, H, 2H]``; the arc
tensor gathers the chosen edges once per call (so their gradient is sparse),
each node reads its chosen previous node and runs only its chosen activation
(``Switch``/``Merge`` routing in a graph, see ``cell_wiring``). One trace
serves every architecture. In fixed mode the layer creates only the chosen edges'
weights and wires them in Python: the static network for final training
and export. Both modes run the same ``cell_wiring.Wiring``, whose unrolled
form has a hand-written backward pass that batches weight gradients over
time.
"""

import keras
import tensorflow as tf

from enas_tf.layers import cell_wiring
from enas_tf.search_space import rnn

def matmul_over_time(x, w, transpose_b=False):
    """``[B, T, K] x [K, N]`` as one 2-D matmul.

    ``tf.matmul`` of a 3-D by a 2-D tensor is a broadcast batched matmul
    whose weight gradient forms B per-example products and then sums them
    (at the PTB softmax's size, a [64, 10000, 1000] intermediate); one 2-D
    product over B*T rows is several times faster.
    """
    batch, steps = tf.shape(x)[0], tf.shape(x)[1]
    flat = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), w, transpose_b=transpose_b)
    return tf.reshape(flat, tf.stack([batch, steps, tf.shape(flat)[-1]]))


def edge_index(node, prev):
    """Row of the (node, prev) edge in the stacked shared weights."""
    return node * (node - 1) // 2 + prev


@keras.saving.register_keras_serializable(package="enas_tf")
class EnasRnnCell(keras.layers.Layer):
    """Runs an ENAS cell over a whole sequence.

    Call: ``cell(inputs [B, T, E], state [B, H], arc, state_mask=None,
    edge_weights=None, training=False)`` -> ``(outputs [B, T, H], final_state
    [B, H])``. ``arc`` is an int32 tensor in search mode and ignored (may be
    None) in fixed mode. ``state_mask`` is the variational dropout mask
    applied to h_{t-1} at every step. ``edge_weights`` is
    ``edge_weights_for(arc)`` when the caller reads it too (the l2 term):
    one read then serves both, and the two gradients meet as one dense
    ``[N-1, H, 2H]`` sum instead of two sparse ones that TensorFlow
    concatenates (0.35 s a step at the paper's size). With a static T the
    time loop is unrolled (when training, with the hand-written backward of
    ``Wiring.unroll``, whose forward also keeps what that backward needs);
    with an unknown T (serving) it is a ``tf.while_loop`` over the same
    step. Inside a graph a search-mode call is differentiable only in that
    unrolled training form: autodiff cannot go through the routed choices.
    ``activations``: the space's registered rnn op names (default: the
    official four); arc codes index them.
    """

    def __init__(self, num_nodes, hidden_size, fixed_arc=None,
                 init_range=0.04, activations=None, **kwargs):
        super().__init__(**kwargs)
        self.space = rnn.RnnSpace(num_nodes, activations)
        self.activations = self.space.activations
        self.activation_fns = cell_wiring.activations(self.activations)
        self.num_nodes = num_nodes
        self.hidden_size = hidden_size
        self.init_range = init_range
        self.fixed_arc = (None if fixed_arc is None else
                          self.space.to_string(self._as_arc(fixed_arc)))
        self.fixed_cell = (None if fixed_arc is None else
                           self.space.decode(self.space.from_string(self.fixed_arc)))

    def _as_arc(self, arc):
        return self.space.from_string(arc) if isinstance(arc, str) else arc

    @property
    def num_edges(self):
        return self.num_nodes - 1 if self.fixed_cell else edge_index(self.num_nodes, 0)

    def build(self, inputs_shape, *args, **kwargs):
        init = keras.initializers.RandomUniform(-self.init_range, self.init_range)
        two_h = 2 * self.hidden_size
        self.w_input = self.add_weight(
            shape=(inputs_shape[-1], two_h), initializer=init, name="w_input")
        self.w_state = self.add_weight(
            shape=(self.hidden_size, two_h), initializer=init, name="w_state")
        self.w_edges = self.add_weight(
            shape=(self.num_edges, self.hidden_size, two_h), initializer=init,
            name="w_edges", autocast=False)  # cast after the gather: see call()

    def call(self, inputs, state, arc=None, state_mask=None, edge_weights=None,
             training=False):
        prevs, acts = self._choices(arc)
        if edge_weights is None:
            edge_weights = self._edge_weights(prevs)
        # Gathered in float32, then cast: a mixed policy would otherwise cast
        # all the shared edges every step (0.1 s at the paper's size).
        edge_weights = tf.cast(edge_weights, self.compute_dtype)
        wiring = cell_wiring.Wiring(prevs, acts, self.activation_fns)
        # Node 0's input projection for all steps in one matmul.
        x_proj = matmul_over_time(inputs, self.w_input)
        w_state = tf.convert_to_tensor(self.w_state)
        if training and inputs.shape[1] is not None:
            return wiring.unroll(x_proj, state, w_state, edge_weights, state_mask)
        if training and not wiring.fixed:
            raise ValueError("A search-mode EnasRnnCell trains on a static sequence length "
                             "(autodiff cannot go through its routed choices). "
                             f"Received: inputs of shape {inputs.shape}")
        edges = tf.unstack(edge_weights, num=self.num_nodes - 1)

        def step(x_t, h):
            h_in = h if state_mask is None else h * state_mask
            return wiring.step(x_t + tf.matmul(h_in, w_state), h, edges)

        if inputs.shape[1] is not None:
            outputs = []
            for t in range(inputs.shape[1]):
                state = step(x_proj[:, t], state)
                outputs.append(state)
            return tf.stack(outputs, axis=1), state
        return _while_over_time(step, x_proj, state)

    def _choices(self, arc):
        """(previous node of nodes 1.., activation of nodes 0..): ints or tensors."""
        if self.fixed_cell is not None:
            return self.fixed_cell.prev_nodes, self.fixed_cell.activations
        arc = self.space.check_tensor(arc)
        prevs = [arc[rnn.RnnSpace.prev_position(l)] for l in range(1, self.num_nodes)]
        acts = [arc[rnn.RnnSpace.activation_position(l)] for l in range(self.num_nodes)]
        return prevs, acts

    def edge_weights_for(self, arc):
        """The [N-1, H, 2H] weights of the arc's edges, row l-1 node l's (what l2 sees)."""
        prevs, _ = self._choices(arc)
        return self._edge_weights(prevs)

    def _edge_weights(self, prevs):
        """All the fixed cell's edges, or the search cell's chosen ones read row by row.

        A gather from the tensor value would read all the edges first, and
        once the sparse SGD update has touched the variable TensorFlow
        copies it on every such read (528 MB at the paper's size).
        """
        if self.fixed_cell is not None:
            return tf.convert_to_tensor(self.w_edges)
        return tf.gather(self.w_edges.value, self._edge_rows(prevs))

    @staticmethod
    def _edge_rows(prevs):
        return tf.stack([edge_index(l, p) for l, p in enumerate(prevs, start=1)])

    def get_config(self):
        config = super().get_config()
        config.update(num_nodes=self.num_nodes, hidden_size=self.hidden_size,
                      fixed_arc=self.fixed_arc, init_range=self.init_range,
                      activations=list(self.activations))
        return config


def _while_over_time(step, x_proj, state):
    """The time loop for an unknown sequence length (serving)."""
    steps = tf.shape(x_proj)[1]
    x_by_time = tf.transpose(x_proj, [1, 0, 2])
    outputs = tf.TensorArray(x_proj.dtype, size=steps)

    def body(t, h, outputs):
        h = step(x_by_time[t], h)
        return t + 1, h, outputs.write(t, h)

    _, state, outputs = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), state, outputs))
    return tf.transpose(outputs.stack(), [1, 0, 2]), state

