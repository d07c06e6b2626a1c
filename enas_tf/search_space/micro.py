"""The CIFAR-10 micro search space of ENAS: a normal and a reduction cell.

A cell reads the outputs of the two previous cells (inputs 0 and 1) and has
B nodes; node b picks two inputs among 0..b+1 (cell inputs and earlier nodes,
node b's own output being index b+2) and one op for each, and sums the two
results. Flat layout (official, 8B integers): the normal cell's 4B
integers, then the reduction cell's, each node as
``[input_1, op_1, input_2, op_2]``. Op codes index the space's own op list
(``ops``, see ``search_space.ops``), by default the official one.
"""

import dataclasses

import numpy as np

from enas_tf.search_space import arcs
from enas_tf.search_space import ops as op_registry

OPS = op_registry.OFFICIAL["micro"]
CELLS = ("normal", "reduction")
FIELDS = ("input 1", "op 1", "input 2", "op 2")


@dataclasses.dataclass(frozen=True)
class MicroCell:
    """Typed view of one cell."""

    nodes: tuple  # nodes[b] = (input_1, op_1, input_2, op_2)
    space_ops: tuple = dataclasses.field(default=OPS, compare=False)  # names of the op codes

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def loose_ends(self) -> tuple:
        """Node outputs (as input indices b+2) no node reads: concatenated as the output.

        Only node outputs count here. The official child also concatenates a
        cell input (0 or 1) that no node reads; the child model decides that.
        """
        used = {node[0] for node in self.nodes} | {node[2] for node in self.nodes}
        return tuple(b + 2 for b in range(self.num_nodes) if b + 2 not in used)


@dataclasses.dataclass(frozen=True)
class MicroArc:
    """Typed view of a micro arc: both cells."""

    normal: MicroCell
    reduction: MicroCell


class MicroSpace(arcs.SearchSpace):
    """Pairs of B-node cells over num_ops ops.

    ``ops``: registered micro op names, an op code being an index into them;
    ``num_ops`` alone means the first num_ops official ops.
    """

    name = "micro"

    def __init__(self, num_nodes: int = 5, num_ops: int = None, ops=None):
        if num_nodes < 1:
            raise ValueError(f"num_nodes must be >= 1. Received: num_nodes={num_nodes}")
        self.ops = op_registry.space_ops("micro", ops, num_ops)
        self.num_nodes = num_nodes
        self.num_ops = num_ops = len(self.ops)
        cell = [bound for b in range(num_nodes) for bound in (b + 2, num_ops, b + 2, num_ops)]
        self._bounds = np.array(cell * len(CELLS), dtype=np.int32)

    @property
    def bounds(self) -> np.ndarray:
        return self._bounds

    @property
    def op_names(self) -> tuple:
        return self.ops

    def op_positions(self) -> list:
        return [p for p in range(self.arc_length) if FIELDS[p % 4].startswith("op")]

    def position(self, reduction: bool, node: int, field: int) -> int:
        """Where ``field`` (0..3: input 1, op 1, input 2, op 2) of a node sits."""
        if not 0 <= node < self.num_nodes or not 0 <= field < len(FIELDS):
            raise ValueError(f"node must be in [0, {self.num_nodes - 1}] and field in "
                             f"[0, 3]. Received: node={node}, field={field}")
        return 4 * self.num_nodes * int(reduction) + 4 * node + field

    def position_name(self, position: int) -> str:
        cell, rest = divmod(position, 4 * self.num_nodes)
        node, field = divmod(rest, 4)
        return f"{CELLS[cell]} cell node {node} {FIELDS[field]}"

    def describe(self) -> str:
        return (f"8B for B={self.num_nodes} nodes: the normal cell then the reduction "
                "cell, each node as (input 1, op 1, input 2, op 2)")

    def decode(self, arc) -> MicroArc:
        values = self.validate(arc).tolist()
        nodes = [tuple(values[i:i + 4]) for i in range(0, len(values), 4)]
        return MicroArc(normal=MicroCell(tuple(nodes[:self.num_nodes]), self.ops),
                        reduction=MicroCell(tuple(nodes[self.num_nodes:]), self.ops))

    def encode(self, micro_arc: MicroArc) -> np.ndarray:
        values = []
        for name, cell in zip(CELLS, (micro_arc.normal, micro_arc.reduction)):
            if cell.num_nodes != self.num_nodes or any(len(n) != 4 for n in cell.nodes):
                raise arcs.ArcError(
                    f"{self.name} {name} cell must have {self.num_nodes} nodes of 4 "
                    f"integers. Received: {cell.nodes!r}")
            values += [v for node in cell.nodes for v in node]
        return self.validate(np.array(values, dtype=np.int64))

    def reduction_layers(self, num_layers: int) -> tuple:
        """Indices of the reduction cells among the num_layers + 2 cells (official)."""
        distance = num_layers // 3
        return (distance, 2 * distance + 1)
