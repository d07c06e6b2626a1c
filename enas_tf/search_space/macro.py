"""The CIFAR-10 macro search space of ENAS: a whole network, layer by layer.

Each of the L layers picks one op and, for every earlier layer, whether to
take that layer's output as a skip input. Flat layout (official, L +
L(L-1)/2 integers), layer i's fields starting at ``i + i(i-1)/2``::

    [op_0, op_1, skip_1_0, op_2, skip_2_0, skip_2_1, op_3, skip_3_0, ...]

Op codes index the space's own op list (``ops``, see ``search_space.ops``);
the default is the official list, so codes follow the official README, and
``num_branches=4`` (the official final script) restricts layers to its
first four ops, the four convolutions.
"""

import dataclasses

import numpy as np

from enas_tf.search_space import arcs
from enas_tf.search_space import ops as op_registry

OPS = op_registry.OFFICIAL["macro"]


@dataclasses.dataclass(frozen=True)
class MacroNet:
    """Typed view of a macro arc."""

    ops: tuple  # ops[i] is layer i's op code
    skips: tuple  # skips[i][j] == 1 iff layer i takes layer j < i as a skip input
    space_ops: tuple = dataclasses.field(default=OPS, compare=False)  # names of the codes

    @property
    def num_layers(self) -> int:
        return len(self.ops)

    def op_names(self) -> tuple:
        return tuple(self.space_ops[op] for op in self.ops)


class MacroSpace(arcs.SearchSpace):
    """L-layer networks: num_branches^L * 2^(L(L-1)/2) architectures.

    ``ops``: registered macro op names, an op code being an index into them;
    ``num_branches`` alone means the first num_branches official ops.
    """

    name = "macro"

    def __init__(self, num_layers: int = 12, num_branches: int = None, ops=None):
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1. Received: num_layers={num_layers}")
        self.ops = op_registry.space_ops("macro", ops, num_branches,
                                         count_name="num_branches")
        self.num_layers = num_layers
        self.num_branches = num_branches = len(self.ops)
        bounds, self._names = [], []
        for layer in range(num_layers):
            bounds += [num_branches] + [2] * layer
            self._names += [f"layer {layer} op"] + [
                f"layer {layer} skip from layer {prev}" for prev in range(layer)]
        self._bounds = np.array(bounds, dtype=np.int32)

    @property
    def bounds(self) -> np.ndarray:
        return self._bounds

    @property
    def op_names(self) -> tuple:
        return self.ops

    def op_positions(self) -> list:
        return [self.op_position(layer) for layer in range(self.num_layers)]

    @staticmethod
    def op_position(layer: int) -> int:
        return layer + layer * (layer - 1) // 2

    @staticmethod
    def skip_position(layer: int, prev: int) -> int:
        if not 0 <= prev < layer:
            raise ValueError(f"layer {layer} has skips from layers 0..{layer - 1} only. "
                             f"Received: prev={prev}")
        return MacroSpace.op_position(layer) + 1 + prev

    def position_name(self, position: int) -> str:
        return self._names[position]

    def describe(self) -> str:
        return (f"L + L(L-1)/2 for L={self.num_layers} layers: per layer i, its op "
                f"in [0, {self.num_branches - 1}] then i skip bits for layers 0..i-1")

    def decode(self, arc) -> MacroNet:
        values = self.validate(arc).tolist()
        starts = [self.op_position(i) for i in range(self.num_layers)]
        return MacroNet(ops=tuple(values[s] for s in starts),
                        skips=tuple(tuple(values[s + 1:s + 1 + i])
                                    for i, s in enumerate(starts)),
                        space_ops=self.ops)

    def encode(self, net: MacroNet) -> np.ndarray:
        if net.num_layers != self.num_layers or len(net.skips) != self.num_layers:
            raise arcs.ArcError(
                f"{self.name} net must have {self.num_layers} ops and skip rows. "
                f"Received: {len(net.ops)} ops, {len(net.skips)} skip rows")
        values = []
        for layer, (op, skips) in enumerate(zip(net.ops, net.skips)):
            if len(skips) != layer:
                raise arcs.ArcError(
                    f"{self.name} net layer {layer} must have {layer} skip bits. "
                    f"Received: {len(skips)}")
            values += [op, *skips]
        return self.validate(np.array(values, dtype=np.int64))

    def pool_layers(self) -> tuple:
        """Layers followed by a factorized reduction (official general_child).

        The official code uses ``[L//3 - 1, 2*(L//3) - 1]``; nets of fewer
        than 3 layers get no reduction.
        """
        distance = self.num_layers // 3
        return tuple(p for p in (distance - 1, 2 * distance - 1) if p >= 0)
