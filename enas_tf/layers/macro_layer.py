"""One layer of the ENAS macro child (official ``general_child``, whole channels).

Layer i applies one op to layer i-1's output (the stem's for layer 0) and
adds skip inputs from any earlier layers j < i.

The search layer and the fixed layer are two classes because they are two
networks, not one network with fewer weights: the search layer holds every
op and reads its op and skips from the arc tensor at call time; the fixed
layer holds only its op and joins its skips another way, with other
weights. They share the op construction and the output shape (``_MacroLayer``).

``MacroSearchLayer`` builds every op of its space (``ops``, registered
macro op names; by default the official six, ``num_branches`` alone the
first num_branches of them);
``routing.dispatch`` on the arc tensor runs only the chosen one, so one
trace serves every architecture (the official code computed all six and,
through a late-binding bug, always returned max-pool). Each skip input is
added to the op output under a ``tf.cond`` on its bit, then BN
(``skip_bn``): an unchosen input costs no work (a 0/1 mask multiplied and
summed every earlier output, forward and backward).

``MacroFixedLayer`` builds only the chosen op. As in the official fixed
model, every layer after the first concatenates its skip inputs with the
op output and reduces them with ReLU-1x1 conv-BN (``skip_conv``). The ops
themselves are the search branches in both (conv-BN-ReLU pairs, true
separable convolutions, and working pool ops), where the official fixed
model used ReLU-conv-BN pairs, a plain conv for the separable ops and no
pool ops at all.

Both take the same call arguments, so a child calls either alike.
"""

import functools

import keras
import tensorflow as tf

from enas_tf.layers import batch_norm
from enas_tf.layers import candidate_ops
from enas_tf.layers import routing
from enas_tf.search_space import macro


class _MacroLayer(keras.layers.Layer):
    """What both macro layers share: their ops (``self.ops``) and output shape.

    ``space`` is the macro space of layers 0..layer_id; ``op_names`` its ops.
    """

    def __init__(self, layer_id, filters, num_branches=None, ops=None, **kwargs):
        super().__init__(**kwargs)
        self.layer_id = layer_id
        self.filters = filters
        self.space = macro.MacroSpace(layer_id + 1, num_branches, ops)
        self.op_names = self.space.op_names
        self.num_branches = len(self.op_names)

    def _build_ops(self, names, input_shapes):
        """Builds ``self.ops`` (the ops ``names``) on the last input; returns their output shape."""
        self.ops = tuple(candidate_ops.block_factory("macro", name)(
            self.filters, name=name, dtype=self.dtype_policy) for name in names)
        for op in self.ops:
            op.build(input_shapes[-1])
        return self.ops[0].compute_output_shape(input_shapes[-1])

    def compute_output_shape(self, input_shapes):
        return (*input_shapes[-1][:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(layer_id=self.layer_id, filters=self.filters,
                      num_branches=self.num_branches, ops=list(self.op_names))
        return config


@keras.saving.register_keras_serializable(package="enas_tf")
class MacroSearchLayer(_MacroLayer):
    """Layer ``layer_id`` of the macro search model: every op, chosen by the arc tensor.

    Call: ``layer(inputs, arc, training=False)`` -> [B, H, W, filters],
    where ``inputs`` is ``[out_0, ..., out_{layer_id-1}]`` (``[stem]`` for
    layer 0), all with the same resolution, and ``arc`` the whole int32
    macro arc. ``arc_checked=True`` says the caller has already checked the
    whole arc (``SearchSpace.check_tensor``; the child does, once per call),
    so the layer does not check it again.
    """

    def build(self, input_shapes):
        out_shape = self._build_ops(self.op_names, input_shapes)
        if self.layer_id:
            self.skip_bn = batch_norm.FusedBatchNorm(name="skip_bn", dtype=self.dtype_policy)
            self.skip_bn.build(out_shape)

    def call(self, inputs, arc, training=False, arc_checked=False):
        x = inputs[-1]
        op_index, *skips = tf.unstack(self._choices(arc, arc_checked))
        out = routing.dispatch(op_index, [functools.partial(op, training=training)
                                          for op in self.ops], x)
        if self.layer_id == 0:
            return out
        for bit, y in zip(skips, inputs):
            out = tf.cond(bit > 0, lambda out=out, y=y: out + y, lambda out=out: out)
        return self.skip_bn(out, training=training)

    def _choices(self, arc, arc_checked):
        """[op, skip_0, ..., skip_{i-1}] of this layer, checked unless ``arc_checked``.

        Unchecked, the part of the arc the layer reads (layers 0..i, which
        sit at the same positions in every macro arc) is checked whole, so
        a message names the position in the whole arc.
        """
        i = self.layer_id
        arc = tf.convert_to_tensor(arc, tf.int32)
        if not arc_checked:
            arc = self.space.check_tensor(arc[:self.space.arc_length])
        positions = [self.space.op_position(i)] + [
            self.space.skip_position(i, j) for j in range(i)]
        return tf.gather(arc, positions)


@keras.saving.register_keras_serializable(package="enas_tf")
class MacroFixedLayer(_MacroLayer):
    """Layer ``layer_id`` of a fixed-arc macro network: op ``op``, skips from ``skips``.

    ``skips`` holds one 0/1 bit per earlier layer. Call as
    ``MacroSearchLayer``; ``arc`` and ``arc_checked`` are accepted and not
    used (the arc was fixed at construction).
    """

    def __init__(self, layer_id, filters, op, skips, num_branches=None, ops=None, **kwargs):
        super().__init__(layer_id, filters, num_branches, ops, **kwargs)
        if not 0 <= op < self.num_branches:
            raise ValueError(f"op must be in [0, {self.num_branches - 1}]. Received: op={op}")
        if len(skips) != layer_id:
            raise ValueError(f"layer {layer_id} needs {layer_id} skip bits. "
                             f"Received: skips={skips}")
        self.op = op
        self.skips = tuple(int(bit) for bit in skips)

    def build(self, input_shapes):
        out_shape = self._build_ops((self.op_names[self.op],), input_shapes)
        if self.layer_id:
            channels = self.filters + sum(
                shape[-1] for shape, bit in zip(input_shapes, self.skips) if bit)
            self.skip_conv = candidate_ops.ConvBn(self.filters, pre_relu=True,
                                                  name="skip_conv", dtype=self.dtype_policy)
            self.skip_conv.build((*out_shape[:-1], channels))

    def call(self, inputs, arc=None, training=False, arc_checked=False):
        out = self.ops[0](inputs[-1], training=training)
        if self.layer_id == 0:
            return out
        chosen = [y for y, bit in zip(inputs, self.skips) if bit]
        return self.skip_conv(tf.concat(chosen + [out], axis=-1), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(op=self.op, skips=list(self.skips))
        return config
