"""One ENAS micro cell (official ``micro_child``), normal or reduction.

A cell reads the outputs of the two previous cells. Calibration first brings
them to the cell's resolution and ``filters`` channels: ReLU + factorized
reduction when the resolution is larger, ReLU-1x1 conv-BN when only the
channels differ. Node b then sums two inputs (cell inputs 0, 1 or earlier
nodes b'+2), each through its chosen op, and the inputs no node reads
(cell inputs included, as in the official code) are the cell's output.

The search cell and the fixed cell are two classes because the fixed
network is a different network, not the search network with fewer weights:
other ops per node (every op with per-input weight copies, or the chosen
one), other BN statistics (batch statistics only, or moving averages), a
"layer base" conv only in the fixed cell, drop-path only in the fixed cell,
and other output channels (``filters``, or one ``filters`` slice per loose
end). They share calibration and the output resolution (``_MicroCell``).
The PTB cell (``enas_rnn_cell``) stays one class: there both modes run the
same wiring (``cell_wiring``) and the fixed cell only holds fewer weights.

``MicroSearchCell``, as the official ``_enas_layer``: every op exists for
every (node, input position) with one weight copy per input the node may
read (``w[prev_cell]``), so an op's weights are specialised to where they
read from. The input is picked by routing (``routing.RoutedStates``: its
gradient flows back to the picked state only, where ``tf.switch_case``
would add zeros into every other one), then ``routing.dispatch`` runs only
the chosen op, which slices out its chosen copy. Every BN uses batch
statistics. The loose ends are found from the arc tensor: one ReLU-1x1
conv-BN maps the concatenation of all B+2 states to ``filters`` channels
with the kernel rows of every state some node reads masked to zero, so a
read state contributes nothing and its weight rows get zero gradient (the
official code gathers the loose ends and their weight rows instead: the
same function with a dynamic shape). Masking the kernel equals masking the
states at a fraction of the work. A reduction cell reduces both inputs
before its nodes (stride-1 ops); the official search reduced the previous
cell's output twice and dropped the cell before it (issue #83), here the
cell reads both previous cells as its fixed counterpart does.

``MicroFixedCell``, as the official ``_fixed_layer``: only the chosen ops
exist; the second input also passes ReLU-1x1 conv-BN ("layer base"); a
reduction cell applies its ops with stride 2 to the cell inputs; the loose
ends are concatenated without a 1x1 conv (larger ones factorized-reduced
first), so the cell outputs ``len(loose_ends) * filters`` channels and the
next cell calibrates them. Drop-path applies to every op that is not the
identity when a keep probability is passed.

Both take the same call arguments, so a child calls either alike.
"""

import functools

import keras
import tensorflow as tf

from enas_tf.layers import candidate_ops
from enas_tf.layers import routing
from enas_tf.search_space import micro


def drop_path(x, keep_prob, seed):
    """Zeros whole examples with probability 1 - keep_prob, scales the rest by 1/keep_prob.

    The draw is float32 for a bfloat16 ``x`` too (a bfloat16 uniform has 8 bits).
    """
    noise = keras.random.uniform([tf.shape(x)[0], 1, 1, 1], seed=seed)
    keep = tf.floor(tf.cast(keep_prob, noise.dtype) + noise)
    return x / tf.cast(keep_prob, x.dtype) * tf.cast(keep, x.dtype)


class _MicroCell(keras.layers.Layer):
    """What both micro cells share: calibration (``self.calibrate``) and the output size.

    ``batch_stats_only`` says whether the cell's BNs use batch statistics
    only (the search cell) or keep moving averages (the fixed cell).
    ``ops``: the space's registered micro op names (default: the official five).
    """

    batch_stats_only = False

    def __init__(self, filters, num_nodes=5, reduction=False, ops=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.num_nodes = num_nodes
        self.reduction = reduction
        self.space = micro.MicroSpace(num_nodes, ops=ops)
        self.op_names = self.space.op_names

    def _output_size(self, size):
        """The cell's output resolution for inputs of resolution ``size`` (None: unknown)."""
        return -(-size // 2) if self.reduction and size is not None else size

    def _build_calibration(self, input_shapes, size):
        """Builds ``self.calibrate`` for states of resolution ``size``; returns their shape."""
        self.calibrate = tuple(self._calibrator(shape, size, f"calibrate_{i}")
                               for i, shape in enumerate(input_shapes))
        return (input_shapes[1][0], size, size, self.filters)

    def _calibrator(self, shape, target, name):
        """The block bringing an input to the target size and filters, or None."""
        if shape[1] != target:
            block = candidate_ops.FactorizedReduce(
                self.filters, strides=shape[1] // target, pre_relu=True,
                batch_stats_only=self.batch_stats_only, name=name, dtype=self.dtype_policy)
        elif shape[-1] != self.filters:
            block = candidate_ops.ConvBn(self.filters, pre_relu=True,
                                         batch_stats_only=self.batch_stats_only, name=name,
                                         dtype=self.dtype_policy)
        else:
            return None
        block.build(shape)
        return block

    def _calibrated(self, inputs, training):
        """The cell's inputs brought to its states' size and ``filters`` channels."""
        return [x if block is None else block(x, training=training)
                for block, x in zip(self.calibrate, inputs)]

    def compute_output_shape(self, input_shapes):
        prev = input_shapes[1]
        hw = self._output_size(prev[1])
        return (prev[0], hw, hw, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, num_nodes=self.num_nodes,
                      reduction=self.reduction, ops=list(self.op_names))
        return config


@keras.saving.register_keras_serializable(package="enas_tf")
class MicroSearchCell(_MicroCell):
    """A normal or reduction cell of the micro search model, its nodes read from the arc.

    Call: ``cell([prev_prev, prev], arc, training=False)`` -> [B, H', W',
    filters] with H' the resolution of ``prev`` (halved in a reduction
    cell); ``arc`` is the whole int32 micro arc. ``arc_checked=True`` says
    the caller has already checked the whole arc (``SearchSpace.check_tensor``;
    the child does, once per call); otherwise the cell checks it.
    ``drop_path_keep`` is accepted and not used (the search does not drop paths).
    """

    batch_stats_only = True

    def build(self, input_shapes):
        state_shape = self._build_calibration(
            input_shapes, self._output_size(input_shapes[1][1]))
        self.node_ops = tuple(
            tuple(candidate_ops.block_factory("micro", name)(
                self.filters, slots=b + 2, batch_stats_only=self.batch_stats_only,
                name=f"node{b}_x{p}_{name}", dtype=self.dtype_policy)
                  for name in self.op_names)
            for b, p in self._positions())
        self.combine = candidate_ops.ConvBn(
            self.filters, pre_relu=True, batch_stats_only=self.batch_stats_only, name="combine",
            dtype=self.dtype_policy)
        self.combine.build((*state_shape[:-1], (self.num_nodes + 2) * self.filters))
        for ops in self.node_ops:
            for op in ops:
                op.build(state_shape)

    def _positions(self):
        """(node, input position) pairs in the order of ``node_ops``."""
        return [(b, p) for b in range(self.num_nodes) for p in range(2)]

    def call(self, inputs, arc, training=False, drop_path_keep=None, arc_checked=False):
        states = self._calibrated(inputs, training)
        positions = [self.space.position(self.reduction, b, field)
                     for b in range(self.num_nodes) for field in range(4)]
        arc = tf.convert_to_tensor(arc, tf.int32)
        if not arc_checked:
            arc = self.space.check_tensor(arc)
        choices = tf.gather(arc, positions)
        unstacked = tf.unstack(choices)
        sources, ops = unstacked[0::2], unstacked[1::2]
        routed = routing.RoutedStates(sources, [b + 2 for b, _ in self._positions()])
        for state in states:
            routed.add(state)
        for b in range(self.num_nodes):
            summed = 0
            for p in range(2):
                k = 2 * b + p
                x = routed.read(k)
                summed += routing.dispatch(ops[k], [
                    functools.partial(o, training=training, slot=sources[k])
                    for o in self.node_ops[k]], x)
            routed.add(summed)
        used = tf.reduce_max(tf.one_hot(choices[0::2], self.num_nodes + 2), axis=0)
        return self.combine(tf.concat(routed.outputs, axis=-1), training=training,
                            input_mask=tf.repeat(1.0 - used, self.filters))


@keras.saving.register_keras_serializable(package="enas_tf")
class MicroFixedCell(_MicroCell):
    """A normal or reduction cell of a fixed-arc micro network, with the nodes ``nodes``.

    ``nodes`` holds one (input 1, op 1, input 2, op 2) tuple per node. Call
    as ``MicroSearchCell``; the output has ``len(loose_ends) * filters``
    channels, ``drop_path_keep`` (scalar, training only) enables drop-path,
    and ``arc`` and ``arc_checked`` are accepted and not used (the arc was
    fixed at construction).
    """

    def __init__(self, filters, num_nodes=5, reduction=False, ops=None, *, nodes, **kwargs):
        super().__init__(filters, num_nodes, reduction, ops, **kwargs)
        self.nodes = self._checked_nodes(nodes)
        self.seed_generator = keras.random.SeedGenerator(name="drop_path_seed")

    def _checked_nodes(self, nodes):
        nodes = tuple(tuple(int(v) for v in node) for node in nodes)
        flat = [v for node in nodes for v in node]
        bounds = self.space.bounds[:4 * self.num_nodes].tolist()
        if len(flat) != len(bounds) or any(not 0 <= v < b for v, b in zip(flat, bounds)):
            raise ValueError(f"nodes must be {self.num_nodes} (input 1, op 1, input 2, op 2) "
                             f"tuples within {bounds}. Received: nodes={nodes}")
        return nodes

    @property
    def loose_ends(self):
        """States (0, 1 = cell inputs, b+2 = node b) no node reads."""
        used = {node[0] for node in self.nodes} | {node[2] for node in self.nodes}
        return tuple(i for i in range(self.num_nodes + 2) if i not in used)

    def _edges(self):
        """(node, input position, source state, op) in the order of ``node_ops``."""
        return [(b, p, source, op) for b, node in enumerate(self.nodes)
                for p, (source, op) in enumerate((node[:2], node[2:]))]

    def build(self, input_shapes):
        prev = input_shapes[1]
        state_shape = self._build_calibration(input_shapes, prev[1])
        self.base = candidate_ops.ConvBn(self.filters, pre_relu=True, name="base",
                                         dtype=self.dtype_policy)
        self.base.build(state_shape)
        self.node_ops = tuple(
            (candidate_ops.block_factory("micro", self.op_names[op])(
                self.filters, strides=2 if self.reduction and source < 2 else 1,
                name=f"node{b}_x{p}_{self.op_names[op]}", dtype=self.dtype_policy),)
            for b, p, source, op in self._edges())
        self.combine = tuple(
            candidate_ops.FactorizedReduce(self.filters, name=f"combine_{i}",
                                           dtype=self.dtype_policy)
            if self.reduction and i < 2 else None for i in self.loose_ends)
        for reduce in self.combine:
            if reduce is not None:
                reduce.build(state_shape)
        node_shape = super().compute_output_shape(input_shapes)  # filters channels
        for (op,), (_, _, source, _) in zip(self.node_ops, self._edges()):
            op.build(state_shape if source < 2 else node_shape)

    def call(self, inputs, arc=None, training=False, drop_path_keep=None,
             arc_checked=False):
        states = self._calibrated(inputs, training)
        states[1] = self.base(states[1], training=training)
        for b, node in enumerate(self.nodes):
            summed = 0
            for p, (source, op) in enumerate((node[:2], node[2:])):
                y = self.node_ops[2 * b + p][0](states[source], training=training)
                if training and drop_path_keep is not None and self.op_names[op] != "identity":
                    y = drop_path(y, drop_path_keep, self.seed_generator)
                summed += y
            states.append(summed)
        outs = [states[i] if reduce is None else reduce(states[i], training=training)
                for i, reduce in zip(self.loose_ends, self.combine)]
        return tf.concat(outs, axis=-1)

    def compute_output_shape(self, input_shapes):
        shape = super().compute_output_shape(input_shapes)
        return (*shape[:-1], len(self.loose_ends) * self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(nodes=[list(n) for n in self.nodes])
        return config
