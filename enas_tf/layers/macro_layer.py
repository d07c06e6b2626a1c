"""One layer of the ENAS macro child (official ``general_child``, whole channels).

Layer i applies one op to layer i-1's output (the stem's for layer 0) and
adds skip inputs from any earlier layers j < i.

Search mode (``op=None``) builds every op of ``macro.OPS[:num_branches]``
in build(); ``tf.switch_case`` on the arc tensor runs only the chosen one,
so one trace serves every architecture (the official code computed all six
and, through a late-binding bug, always returned max-pool). Each skip input
is added to the op output under a ``tf.cond`` on its bit, then BN: an
unchosen input costs no work (a 0/1 mask multiplied and summed every
earlier output, forward and backward).

Fixed mode (``op``, ``skips`` given) builds only the chosen op. As in the
official fixed model, every layer after the first concatenates its skip
inputs with the op output and reduces them with ReLU-1x1 conv-BN. The ops
themselves are the search branches in both modes (conv-BN-ReLU pairs, true
separable convolutions, and working pool ops), where the official fixed
model used ReLU-conv-BN pairs, a plain conv for the separable ops and no
pool ops at all.
"""

import keras
import tensorflow as tf

from enas_tf.layers import batch_norm
from enas_tf.layers import candidate_ops
from enas_tf.search_space import macro


@keras.saving.register_keras_serializable(package="enas_tf")
class MacroLayer(keras.layers.Layer):
    """Layer ``layer_id`` of a macro child.

    Call: ``layer(inputs, arc=None, training=False)`` -> [B, H, W, filters],
    where ``inputs`` is ``[out_0, ..., out_{layer_id-1}]`` (``[stem]`` for
    layer 0), all with the same resolution, and ``arc`` the whole int32
    macro arc in search mode (ignored in fixed mode). ``arc_checked=True``
    says the caller has already checked the whole arc
    (``SearchSpace.check_tensor``; the child does, once per call), so the
    layer does not check it again.
    """

    def __init__(self, layer_id, filters, num_branches=len(macro.OPS), op=None,
                 skips=None, **kwargs):
        super().__init__(**kwargs)
        if (op is None) != (skips is None):
            raise ValueError(f"op and skips go together (fixed mode) or not at all "
                             f"(search mode). Received: op={op}, skips={skips}")
        if op is not None and not 0 <= op < num_branches:
            raise ValueError(f"op must be in [0, {num_branches - 1}]. Received: op={op}")
        if skips is not None and len(skips) != layer_id:
            raise ValueError(f"layer {layer_id} needs {layer_id} skip bits. "
                             f"Received: skips={skips}")
        self.layer_id = layer_id
        self.filters = filters
        self.num_branches = num_branches
        self.op = op
        self.skips = None if skips is None else tuple(int(bit) for bit in skips)
        self.space = macro.MacroSpace(layer_id + 1, num_branches)

    @property
    def searching(self):
        return self.op is None

    def build(self, input_shapes):
        names = macro.OPS[:self.num_branches] if self.searching else (macro.OPS[self.op],)
        self.ops = tuple(candidate_ops.MACRO_OPS[name](self.filters, name=name,
                                                       dtype=self.dtype_policy)
                         for name in names)
        for op in self.ops:
            op.build(input_shapes[-1])
        out_shape = self.ops[0].compute_output_shape(input_shapes[-1])
        if self.layer_id == 0:
            return
        if self.searching:
            self.skip_bn = batch_norm.FusedBatchNorm(name="skip_bn", dtype=self.dtype_policy)
            self.skip_bn.build(out_shape)
        else:
            channels = self.filters + sum(
                shape[-1] for shape, bit in zip(input_shapes, self.skips) if bit)
            self.skip_conv = candidate_ops.ConvBn(self.filters, pre_relu=True,
                                                  name="skip_conv", dtype=self.dtype_policy)
            self.skip_conv.build((*out_shape[:-1], channels))

    def call(self, inputs, arc=None, training=False, arc_checked=False):
        x = inputs[-1]
        if not self.searching:
            out = self.ops[0](x, training=training)
            if self.layer_id == 0:
                return out
            chosen = [y for y, bit in zip(inputs, self.skips) if bit]
            return self.skip_conv(tf.concat(chosen + [out], axis=-1), training=training)
        op_index, *skips = tf.unstack(self._choices(arc, arc_checked))
        out = tf.switch_case(op_index, [
            lambda op=op: op(x, training=training) for op in self.ops])
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

    def compute_output_shape(self, input_shapes):
        return (*input_shapes[-1][:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(layer_id=self.layer_id, filters=self.filters,
                      num_branches=self.num_branches, op=self.op,
                      skips=None if self.skips is None else list(self.skips))
        return config
