"""Forward FLOPs of a CIFAR search child for one sampled arc, counted from the shapes.

Only convolutions and matmuls count (2 FLOPs per multiply-add); BN,
pooling, ReLU and sums do not. The shapes are the search models'
(``enas_tf/models/cifar_child.py`` with ``fixed_arc=None``): the macro
child keeps its channels through the reductions and runs every layer's
1x1 projection then the chosen op; the micro child calibrates both cell
inputs, runs each node's two chosen ops at stride 1, and combines all
B + 2 states with one 1x1 conv. A training step is 3x the forward count
(backward = 2x forward).
"""

from enas_tf.search_space import macro
from enas_tf.search_space import micro

IMAGE_SIZE, IMAGE_CHANNELS = 32, 3
NUM_CLASSES = 10
_KERNELS = {"conv_3x3": 3, "conv_5x5": 5, "sep_conv_3x3": 3, "sep_conv_5x5": 5}


def conv(batch, size, c_in, c_out, kernel=1):
    """A SAME/VALID convolution producing ``size`` x ``size`` outputs."""
    return 2 * batch * size * size * c_in * c_out * kernel * kernel


def separable(batch, size, channels, c_out, kernel):
    """Depthwise kxk (multiplier 1) then pointwise 1x1."""
    return conv(batch, size, 1, channels, kernel) + conv(batch, size, channels, c_out)


def factorized_reduce(batch, out_size, c_in, c_out):
    """Two 1x1 convs, each to half the channels, at the reduced size."""
    return 2 * conv(batch, out_size, c_in, c_out // 2)


def _halved(size):
    return -(-size // 2)


def macro_forward(net, filters, batch):
    """Forward FLOPs of the macro search child on ``net`` (a ``macro.MacroNet``)."""
    size, f = IMAGE_SIZE, filters
    total = conv(batch, size, IMAGE_CHANNELS, f, 3)
    pool_layers = macro.MacroSpace(net.num_layers).pool_layers()
    for i, name in enumerate(net.op_names()):
        total += conv(batch, size, f, f)  # every op's 1x1 projection first
        if name.startswith("conv"):
            total += conv(batch, size, f, f, _KERNELS[name])
        elif name.startswith("sep"):
            total += separable(batch, size, f, f, _KERNELS[name])
        if i in pool_layers:
            size = _halved(size)
            total += (i + 1) * factorized_reduce(batch, size, f, f)
    return total + 2 * batch * f * NUM_CLASSES


def micro_forward(arc, num_layers, filters, batch, aux_head=False):
    """Forward FLOPs of the micro search child on ``arc`` (a ``micro.MicroArc``).

    ``aux_head`` adds the auxiliary classifier (it runs in training only).
    """
    num_nodes = arc.normal.num_nodes
    reductions = micro.MicroSpace(num_nodes).reduction_layers(num_layers)
    f = filters
    total = conv(batch, IMAGE_SIZE, IMAGE_CHANNELS, 3 * f, 3)
    states = 2 * [(IMAGE_SIZE, 3 * f)]  # (size, channels) of the two cell inputs
    for c in range(num_layers + 2):
        reduction = c in reductions
        f *= 2 if reduction else 1
        size = _halved(states[1][0]) if reduction else states[1][0]
        for in_size, channels in states:  # calibration
            if in_size != size:
                total += factorized_reduce(batch, size, channels, f)
            elif channels != f:
                total += conv(batch, size, channels, f)
        for node in (arc.reduction if reduction else arc.normal).nodes:
            for op in (node[1], node[3]):
                name = micro.OPS[op]
                if name.startswith("sep"):  # two ReLU-sep conv-BN
                    total += 2 * separable(batch, size, f, f, _KERNELS[name])
        total += conv(batch, size, (num_nodes + 2) * f, f)  # combine
        states = [states[1], (size, f)]
        if aux_head and c == reductions[-1] + 1:
            total += _aux_head(batch, size, f)
    return total + 2 * batch * f * NUM_CLASSES


def _aux_head(batch, size, channels):
    """5x5/3 average pooling, 1x1 conv to 128, a conv covering the map to 768, dense."""
    pooled = (size - 5) // 3 + 1
    return (conv(batch, pooled, channels, 128) + conv(batch, pooled, 128, 768, pooled)
            + 2 * batch * 768 * NUM_CLASSES)


def forward(space, arc, config, batch, aux_head=False):
    """Forward FLOPs of one arc (flat int vector) of ``space`` for a ``CifarConfig``."""
    view = space.decode(arc)
    if config.space == "macro":
        return macro_forward(view, config.out_filters, batch)
    return micro_forward(view, config.num_layers, config.out_filters, batch, aux_head)
