"""The CIFAR candidate operations and their building blocks (NHWC).

``MACRO_OPS`` and ``MICRO_OPS`` map the official op names (``macro.OPS``,
``micro.OPS``) to a factory ``factory(filters, **kwargs) -> layer``; the
same name means different blocks in the two spaces, as in the official
code. ``block_factory`` gives the factory of any registered name: a user's
op (``search_space.ops.register_op``) comes wrapped in ``CustomOp``, which
takes the same arguments. Every block creates all its variables in build(),
so a parent can build every candidate before ``routing.dispatch`` picks one
inside a traced step, and every block computes its output shape without
running.

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
from enas_tf.layers import routing
from enas_tf.search_space import ops as op_registry


def he_normal(slots=None):
    """He initialization of one kernel, also when ``slots`` kernels are stacked.

    Keras counts the leading slot axis into fan-in, so the scale is
    multiplied by ``slots`` to give each copy the variance of a lone kernel.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0 * (slots or 1), mode="fan_in", distribution="truncated_normal")


def pool(x, pool_type, strides=1):
    """3x3 average or max pooling, SAME padding (averages exclude the padding)."""
    fn = {"avg": tf.nn.avg_pool2d, "max": _max_pool}[pool_type]
    return fn(x, 3, strides, "SAME")


def _max_pool(x, ksize, strides, padding):
    """``tf.nn.max_pool2d`` whose gradient recomputes the pooling next to it.

    The oneDNN max-pool gradient needs its forward op in the same graph;
    inside a ``tf.switch_case`` branch the forward op sat in another branch
    function, and the fallback kernel was ~15x slower (a tenth of a macro
    search step). ``routing.dispatch`` keeps both in one graph, but the plain
    gradient measured no faster there (bench/RESULTS.md, 2026-12-06), and
    this one holds wherever the op runs. Recomputing the forward pass is
    cheap; the gradient is the same (the first maximum of each window).
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


def subsample(x, strides, offset=0):
    """``x[:, offset::strides, offset::strides]`` of ``x`` zero padded to a multiple of ``strides``.

    A reshape and a slice, whose gradient is a pad. It stands in for the
    stride of 1x1 convolutions: oneDNN's filter gradient of a strided 1x1
    convolution corrupts the heap at small channel counts and odd batch
    sizes on AVX-512 CPUs (a native crash at 8 filters), and a strided
    slice's gradient is slow. Output size ``ceil(size / strides)``.
    """
    channels = x.shape[-1]
    height, width = (x.shape[i] if x.shape[i] is not None else tf.shape(x)[i] for i in (1, 2))
    x = tf.pad(x, [[0, 0], [0, -height % strides], [0, -width % strides], [0, 0]])
    out_h, out_w = -(-height // strides), -(-width // strides)
    # Each axis split into (position, offset); the width's offset joins the channels.
    grid = tf.reshape(x, [-1, out_h, strides, out_w, strides * channels])
    picked = tf.slice(grid, [0, 0, offset, 0, offset * channels], [-1, -1, 1, -1, channels])
    return tf.reshape(picked, [-1, out_h, out_w, channels])


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
        if self.kernel_size == 1 and self.strides > 1:  # the same pixels, see subsample
            x, strides = subsample(x, self.strides), (1, 1, 1, 1)
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

    Two 1x1 convolutions read the image subsampled at offset 0 and at
    offset 1 (zero padded at the bottom/right, as the official code), and BN
    follows their concatenation. The first path gets ``filters - filters // 2``
    filters, the second ``filters // 2`` (the official halves when even; an
    odd count gives the first path one more, 1 filter only the first path).
    ``pre_relu`` activates the input first (the micro child's calibration).

    The paths subsample (``subsample``) and convolve with stride 1, not with
    strided convolutions: that avoids a oneDNN crash, and was ~1.5x faster
    (forward and backward) at the paper's sizes.
    """

    config_args = ("filters", "strides", "pre_relu", "batch_stats_only")

    def __init__(self, filters, strides=2, pre_relu=False, batch_stats_only=False,
                 **kwargs):
        super().__init__(filters, strides, None, batch_stats_only, **kwargs)
        self.pre_relu = pre_relu

    def build(self, input_shape):
        path_filters = [self.filters - self.filters // 2, self.filters // 2]
        self.kernels = tuple(
            self.add_weight(shape=(1, 1, input_shape[-1], filters), initializer=he_normal(),
                            name=f"path{i}_kernel")
            for i, filters in enumerate(path_filters, start=1) if filters)
        self.bn = self._bn()
        self.bn.build(self.compute_output_shape(input_shape))

    def call(self, x, training=False):
        if self.pre_relu:
            x = tf.nn.relu(x)
        paths = [tf.nn.conv2d(subsample(x, self.strides, offset), kernel, 1, "VALID")
                 for offset, kernel in enumerate(self.kernels)]
        x = paths[0] if len(paths) == 1 else tf.concat(paths, axis=-1)
        return self.bn(x, training=training)


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


@keras.saving.register_keras_serializable(package="enas_tf")
class CustomOp(_Block):
    """A user's registered op (``op_registry.register_op``) as a block.

    The user's ``factory(filters, strides)`` makes one layer per slot (one
    when ``slots`` is None): like the official ops, a micro search op keeps
    a copy of its weights per input it may read, and a tensor ``slot`` picks
    the copy with ``routing.dispatch``. The copies are built here, and the
    first one's output shape is checked then, so a wrong factory fails when
    the model is built, naming its op. ``batch_stats_only`` is the parent's
    BN mode, which a user layer cannot take: it sees ``training`` and
    normalizes as it was built to. The output is cast to this block's
    compute dtype, so a layer of another dtype policy still joins the
    official ops in one dispatch. The config records the op's name,
    not the factory.
    """

    config_args = _Block.config_args + ("family", "op_name")

    def __init__(self, filters, strides=1, slots=None, batch_stats_only=False, *, family,
                 op_name, **kwargs):
        super().__init__(filters, strides, slots, batch_stats_only, **kwargs)
        self.family = family
        self.op_name = op_name

    def build(self, input_shape):
        factory = op_registry.factory(self.family, self.op_name)
        self.copies = tuple(self._checked(factory(self.filters, self.strides), input_shape, i)
                            for i in range(self.slots or 1))

    def _checked(self, layer, input_shape, index):
        """``layer`` built; the first copy's output shape is checked against the promise."""
        where = (f"{self.family} op {self.op_name!r} (filters={self.filters}, "
                 f"strides={self.strides})")
        if not isinstance(layer, keras.layers.Layer):
            raise op_registry.OpError(f"{where} factory must return a keras.layers.Layer. "
                                      f"Received: {type(layer).__name__}")
        layer.build(input_shape)
        if index == 0:
            want = self.compute_output_shape(input_shape)
            spec = layer.compute_output_spec(keras.KerasTensor(input_shape, self.compute_dtype))
            got = tuple(getattr(spec, "shape", ()))
            if len(got) != len(want) or any(
                    g is not None and w is not None and g != w for g, w in zip(got, want)):
                raise op_registry.OpError(f"{where} must map inputs of shape "
                                          f"{tuple(input_shape)} to {want}. Received: {got}")
        return layer

    def call(self, x, training=False, slot=None):
        def run_on(layer, x):
            return tf.cast(layer(x, training=training), self.compute_dtype)

        if slot is None:
            return run_on(self.copies[0], x)
        return routing.dispatch(slot, [functools.partial(run_on, layer) for layer in self.copies], x)


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


def block_factory(family, name):
    """The block factory of registered op ``name`` of ``family`` ("macro" or "micro")."""
    official = {"macro": MACRO_OPS, "micro": MICRO_OPS}[family]
    if name in official:
        return official[name]
    return functools.partial(CustomOp, family=family, op_name=name)
