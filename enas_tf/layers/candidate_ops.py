"""The CIFAR candidate operations and their building blocks (NHWC).

``MACRO_OPS`` and ``MICRO_OPS`` map each space's op names (``macro.OPS``,
``micro.OPS``) to a factory ``factory(filters, **kwargs) -> layer``; the
same name means different blocks in the two spaces, as in the official
code. Every block creates all its variables in build(), so a parent can
build every candidate before ``tf.switch_case`` picks one inside a traced
step, and every block computes its output shape without running.

``slots`` (micro search only) gives a block one copy of each weight per
slot, picked by a tensor index at call time: the official micro search keeps
one copy per input a node may read (``w[prev_cell]``). Only the picked copy
gets a gradient.

Groups of sublayers and variables are tuples throughout the CIFAR layers:
Keras 3 wraps a list attribute in a type that ``tf.train.Checkpoint`` and
SavedModel do not follow, so the weights in a list would be silently left
out of checkpoints.
"""

import functools

import keras
import tensorflow as tf

from enas_tf.layers import batch_norm


def he_normal(slots=None):
    """He initialization of one kernel, also when ``slots`` kernels are stacked.

    Keras counts the leading slot axis into fan-in, so the scale is
    multiplied by ``slots`` to give each copy the variance of a lone kernel.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0 * (slots or 1), mode="fan_in", distribution="truncated_normal")


def checked_choices(values, bounds, what):
    """``values`` (int32 [n]) after asserting n == len(bounds) and 0 <= v < bound.

    ``tf.switch_case`` silently runs its last branch for an out-of-range
    index, so every tensor choice passes through here first.
    """
    values = tf.convert_to_tensor(values, tf.int32)
    bounds = tf.constant(bounds, tf.int32)

    def in_range():
        return tf.reduce_all(tf.logical_and(values >= 0, values < bounds))

    if values.shape.is_fully_defined():  # a compiled step's arc: no tf.cond
        ok = in_range() if values.shape == bounds.shape else tf.constant(False)
    else:
        ok = tf.cond(tf.equal(tf.size(values), tf.size(bounds)), in_range,
                     lambda: tf.constant(False))
    with tf.control_dependencies([tf.debugging.Assert(
            ok, [what, "arc out of range; values:", values, "bounds:", bounds],
            summarize=-1)]):
        return tf.identity(values)


def pool(x, pool_type, strides=1):
    """3x3 average or max pooling, SAME padding (averages exclude the padding)."""
    fn = {"avg": tf.nn.avg_pool2d, "max": _max_pool}[pool_type]
    return fn(x, 3, strides, "SAME")


def _max_pool(x, ksize, strides, padding):
    """``tf.nn.max_pool2d`` whose gradient recomputes the pooling next to it.

    The oneDNN max-pool gradient needs its forward op in the same graph;
    inside a ``tf.switch_case`` branch the forward op sits in another branch
    function, and the fallback kernel was ~15x slower (a tenth of a macro
    search step). Recomputing the forward pass is cheap; the gradient is the
    same (the first maximum of each window).
    """
    @tf.custom_gradient
    def max_pool(x):
        def grad(dy):
            y = tf.nn.max_pool2d(x, ksize, strides, padding)
            return tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=y, grad=dy,
                                          ksize=[1, ksize, ksize, 1],
                                          strides=[1, strides, strides, 1], padding=padding)
        return tf.nn.max_pool2d(x, ksize, strides, padding), grad
    return max_pool(x)


def _same_conv_shape(input_shape, filters, strides):
    """Output shape of a SAME convolution (ceil division, like TF)."""
    def reduced(size):
        return None if size is None else -(-size // strides)
    return (input_shape[0], reduced(input_shape[1]), reduced(input_shape[2]), filters)


class _Block(keras.layers.Layer):
    """Base of the blocks: filters, strides, slots and the BN mode they share.

    ``config_args`` names a subclass's constructor arguments for get_config.
    """

    config_args = ("filters", "strides", "slots", "batch_stats_only")

    def __init__(self, filters, strides=1, slots=None, batch_stats_only=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides
        self.slots = slots
        self.batch_stats_only = batch_stats_only

    def _bn(self, slots=None):
        return batch_norm.FusedBatchNorm(
            batch_stats_only=self.batch_stats_only, slots=slots, name="bn",
            dtype=self.dtype_policy)

    def _conv_bn(self, filters, kernel_size=1, strides=1, **kwargs):
        return ConvBn(filters, kernel_size, strides=strides, slots=self.slots,
                      batch_stats_only=self.batch_stats_only, dtype=self.dtype_policy,
                      **kwargs)

    def compute_output_shape(self, input_shape):
        return _same_conv_shape(input_shape, self.filters, self.strides)

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in self.config_args})
        return config


@keras.saving.register_keras_serializable(package="enas_tf")
class ConvBn(_Block):
    """[ReLU ->] convolution or separable convolution -> BN [-> ReLU].

    Call: ``block(x, training=False, slot=None, input_mask=None)``. The
    official macro child activates after BN (``post_relu``), the micro child
    before the convolution (``pre_relu``). Separable convolutions have depth
    multiplier 1, as in the official code. ``input_mask`` (0/1 per input
    channel, plain convolutions only) zeroes the kernel rows of the masked
    channels: the same as zeroing those channels of the (activated) input,
    gradients included, for a multiply of the kernel instead of the image.
    """

    config_args = _Block.config_args + ("kernel_size", "separable", "pre_relu", "post_relu")

    def __init__(self, filters, kernel_size=1, strides=1, separable=False,
                 pre_relu=False, post_relu=False, slots=None, batch_stats_only=False,
                 **kwargs):
        super().__init__(filters, strides, slots, batch_stats_only, **kwargs)
        self.kernel_size = kernel_size
        self.separable = separable
        self.pre_relu = pre_relu
        self.post_relu = post_relu

    def _kernel(self, shape, name):
        if self.slots is not None:
            shape = (self.slots, *shape)
        return self.add_weight(shape=shape, initializer=he_normal(self.slots), name=name)

    def build(self, input_shape):
        k, channels = self.kernel_size, input_shape[-1]
        if self.separable:
            self.depthwise_kernel = self._kernel((k, k, channels, 1), "depthwise_kernel")
            self.pointwise_kernel = self._kernel((1, 1, channels, self.filters),
                                                 "pointwise_kernel")
        else:
            self.kernel = self._kernel((k, k, channels, self.filters), "kernel")
        self.bn = self._bn(self.slots)
        self.bn.build(self.compute_output_shape(input_shape))

    def call(self, x, training=False, slot=None, input_mask=None):
        if self.pre_relu:
            x = tf.nn.relu(x)
        strides = (1, self.strides, self.strides, 1)
        if self.separable:
            if input_mask is not None:
                raise ValueError("input_mask is for plain convolutions only. "
                                 f"Received: input_mask with separable block {self.name}")
            x = tf.nn.separable_conv2d(
                x, batch_norm.pick(self.depthwise_kernel, slot),
                batch_norm.pick(self.pointwise_kernel, slot),
                strides, "SAME")
        else:
            kernel = batch_norm.pick(self.kernel, slot)
            if input_mask is not None:
                kernel = kernel * tf.cast(input_mask, kernel.dtype)[:, None]
            x = tf.nn.conv2d(x, kernel, strides, "SAME")
        x = self.bn(x, training=training, slot=slot)
        return tf.nn.relu(x) if self.post_relu else x


@keras.saving.register_keras_serializable(package="enas_tf")
class FactorizedReduce(_Block):
    """Reduces resolution by ``strides`` without dropping pixels.

    Two 1x1 convolutions, each with half the filters, read the image
    subsampled at offset 0 and at offset 1 (zero padded at the bottom/right,
    as the official code), and BN follows their concatenation.
    ``pre_relu`` activates the input first (the micro child's calibration).
    """

    config_args = ("filters", "strides", "pre_relu", "batch_stats_only")

    def __init__(self, filters, strides=2, pre_relu=False, batch_stats_only=False,
                 **kwargs):
        if filters % 2:
            raise ValueError(f"FactorizedReduce needs an even number of filters. "
                             f"Received: filters={filters}")
        super().__init__(filters, strides, None, batch_stats_only, **kwargs)
        self.pre_relu = pre_relu

    def build(self, input_shape):
        shape = (1, 1, input_shape[-1], self.filters // 2)
        self.kernels = tuple(self.add_weight(shape=shape, initializer=he_normal(),
                                             name=f"path{i}_kernel") for i in (1, 2))
        self.bn = self._bn()
        self.bn.build(self.compute_output_shape(input_shape))

    def call(self, x, training=False):
        if self.pre_relu:
            x = tf.nn.relu(x)
        # The strided 1x1 convolutions do the subsampling: a strided slice
        # (x[:, ::s, ::s]) and its gradient took a third of a macro search step.
        # Slice and pad (each the other's gradient) shift by one pixel.
        shifted = tf.pad(tf.slice(x, [0, 1, 1, 0], [-1, -1, -1, -1]),
                         [[0, 0], [0, 1], [0, 1], [0, 0]])
        paths = [tf.nn.conv2d(path, kernel, self.strides, "VALID")
                 for path, kernel in zip((x, shifted), self.kernels)]
        return self.bn(tf.concat(paths, axis=-1), training=training)


@keras.saving.register_keras_serializable(package="enas_tf")
class MacroConv(_Block):
    """Macro conv op: 1x1 conv+BN+ReLU, then the kxk (separable) conv+BN+ReLU.

    As the official search branch (``_conv_branch``); the official fixed
    model instead used ReLU-conv-BN pairs with a plain conv for the
    separable ops, see ``macro_layer``.
    """

    config_args = ("filters", "kernel_size", "separable", "batch_stats_only")

    def __init__(self, filters, kernel_size=3, separable=False, batch_stats_only=False,
                 **kwargs):
        super().__init__(filters, 1, None, batch_stats_only, **kwargs)
        self.kernel_size = kernel_size
        self.separable = separable

    def build(self, input_shape):
        self.project = self._conv_bn(self.filters, post_relu=True, name="conv_1x1")
        self.conv = self._conv_bn(self.filters, self.kernel_size, separable=self.separable,
                                  post_relu=True, name=f"conv_{self.kernel_size}")
        self.project.build(input_shape)
        self.conv.build(self.project.compute_output_shape(input_shape))

    def call(self, x, training=False):
        return self.conv(self.project(x, training=training), training=training)


@keras.saving.register_keras_serializable(package="enas_tf")
class MacroPool(_Block):
    """Macro pool op: 1x1 conv+BN+ReLU, then 3x3 pooling with stride 1 (official)."""

    config_args = ("filters", "pool_type", "batch_stats_only")

    def __init__(self, filters, pool_type="avg", batch_stats_only=False, **kwargs):
        super().__init__(filters, 1, None, batch_stats_only, **kwargs)
        self.pool_type = pool_type

    def build(self, input_shape):
        self.project = self._conv_bn(self.filters, post_relu=True, name="conv_1x1")
        self.project.build(input_shape)

    def call(self, x, training=False):
        return pool(self.project(x, training=training), self.pool_type)


@keras.saving.register_keras_serializable(package="enas_tf")
class SepConvStack(_Block):
    """Micro sep conv op: two ReLU-separable conv-BN, the first one strided."""

    config_args = _Block.config_args + ("kernel_size",)

    def __init__(self, filters, kernel_size=3, strides=1, slots=None,
                 batch_stats_only=False, **kwargs):
        super().__init__(filters, strides, slots, batch_stats_only, **kwargs)
        self.kernel_size = kernel_size

    def build(self, input_shape):
        self.convs = tuple(
            self._conv_bn(self.filters, self.kernel_size, strides=self.strides if i == 0 else 1,
                          separable=True, pre_relu=True, name=f"sep_conv_{i}")
            for i in range(2))
        for conv in self.convs:
            conv.build(input_shape)
            input_shape = conv.compute_output_shape(input_shape)

    def call(self, x, training=False, slot=None):
        for conv in self.convs:
            x = conv(x, training=training, slot=slot)
        return x


@keras.saving.register_keras_serializable(package="enas_tf")
class MicroPool(_Block):
    """Micro pool op: 3x3 pooling, then ReLU-1x1 conv-BN if the channels change."""

    config_args = _Block.config_args + ("pool_type",)

    def __init__(self, filters, pool_type="avg", strides=1, slots=None,
                 batch_stats_only=False, **kwargs):
        super().__init__(filters, strides, slots, batch_stats_only, **kwargs)
        self.pool_type = pool_type

    def build(self, input_shape):
        self.project = None
        if input_shape[-1] != self.filters:
            self.project = self._conv_bn(self.filters, pre_relu=True, name="conv_1x1")
            self.project.build(_same_conv_shape(input_shape, input_shape[-1], self.strides))

    def call(self, x, training=False, slot=None):
        x = pool(x, self.pool_type, self.strides)
        if self.project is not None:
            x = self.project(x, training=training, slot=slot)
        return x


@keras.saving.register_keras_serializable(package="enas_tf")
class Identity(_Block):
    """Micro identity op: factorized reduction when strided, else a ReLU-1x1
    conv-BN if the channels change, else nothing (official). The reduction
    has no slots: strided ops occur only in fixed cells."""

    def build(self, input_shape):
        self.reduce = self.project = None
        if self.strides > 1:
            self.reduce = FactorizedReduce(self.filters, self.strides,
                                           batch_stats_only=self.batch_stats_only,
                                           name="reduce", dtype=self.dtype_policy)
            self.reduce.build(input_shape)
        elif input_shape[-1] != self.filters:
            self.project = self._conv_bn(self.filters, pre_relu=True, name="conv_1x1")
            self.project.build(input_shape)

    def call(self, x, training=False, slot=None):
        if self.reduce is not None:
            return self.reduce(x, training=training)
        if self.project is not None:
            return self.project(x, training=training, slot=slot)
        return x


MACRO_OPS = {
    "conv_3x3": functools.partial(MacroConv, kernel_size=3),
    "sep_conv_3x3": functools.partial(MacroConv, kernel_size=3, separable=True),
    "conv_5x5": functools.partial(MacroConv, kernel_size=5),
    "sep_conv_5x5": functools.partial(MacroConv, kernel_size=5, separable=True),
    "avg_pool_3x3": functools.partial(MacroPool, pool_type="avg"),
    "max_pool_3x3": functools.partial(MacroPool, pool_type="max"),
}

MICRO_OPS = {
    "sep_conv_3x3": functools.partial(SepConvStack, kernel_size=3),
    "sep_conv_5x5": functools.partial(SepConvStack, kernel_size=5),
    "avg_pool_3x3": functools.partial(MicroPool, pool_type="avg"),
    "max_pool_3x3": functools.partial(MicroPool, pool_type="max"),
    "identity": Identity,
}
