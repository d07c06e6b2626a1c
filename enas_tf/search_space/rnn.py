"""The PTB recurrent-cell search space of ENAS.

A cell has N nodes. Node 0 reads the input x_t and the previous state
h_{t-1} and picks only its activation; node l >= 1 picks one previous node
j < l and an activation. Flat layout (official, 2N-1 integers)::

    [act_0, prev_1, act_1, prev_2, act_2, ..., prev_{N-1}, act_{N-1}]

Activation codes index the space's own activation list (``activations``,
see ``search_space.ops``); by default the official one: 0 tanh, 1 ReLU,
2 identity, 3 sigmoid.
"""

import dataclasses

import numpy as np

from enas_tf.search_space import arcs
from enas_tf.search_space import ops as op_registry

ACTIVATIONS = op_registry.OFFICIAL["rnn"]


@dataclasses.dataclass(frozen=True)
class RnnCell:
    """Typed view of a PTB cell arc."""

    activations: tuple  # one code per node
    prev_nodes: tuple  # prev_nodes[l - 1] is node l's input node, l >= 1
    space_activations: tuple = dataclasses.field(default=ACTIVATIONS, compare=False)

    @property
    def num_nodes(self) -> int:
        return len(self.activations)

    @property
    def loose_ends(self) -> tuple:
        """Nodes no other node reads: their average is the cell output."""
        used = set(self.prev_nodes)
        return tuple(i for i in range(self.num_nodes) if i not in used)

    def activation_names(self) -> tuple:
        return tuple(self.space_activations[a] for a in self.activations)


class RnnSpace(arcs.SearchSpace):
    """N-node recurrent cells over A activations (A^N * (N-1)! cells).

    ``activations``: registered rnn op names (default: the official four).
    """

    name = "ptb"

    def __init__(self, num_nodes: int = 12, activations=None):
        if num_nodes < 2:
            raise ValueError(f"num_nodes must be >= 2. Received: num_nodes={num_nodes}")
        self.num_nodes = num_nodes
        self.activations = op_registry.space_ops("rnn", activations, what="activations")
        bounds = [len(self.activations)]
        for node in range(1, num_nodes):
            bounds += [node, len(self.activations)]
        self._bounds = np.array(bounds, dtype=np.int32)

    @property
    def bounds(self) -> np.ndarray:
        return self._bounds

    @property
    def op_names(self) -> tuple:
        return self.activations

    def op_positions(self) -> list:
        return [self.activation_position(node) for node in range(self.num_nodes)]

    @staticmethod
    def prev_position(node: int) -> int:
        return 2 * node - 1

    @staticmethod
    def activation_position(node: int) -> int:
        return 2 * node

    def position_name(self, position: int) -> str:
        node = (position + 1) // 2
        what = "activation" if position % 2 == 0 else "previous node"
        return f"node {node} {what}"

    def describe(self) -> str:
        return (f"2N-1 for N={self.num_nodes} nodes: the activation of node 0, then "
                f"(previous node, activation) for nodes 1..{self.num_nodes - 1}")

    def decode(self, arc) -> RnnCell:
        values = self.validate(arc).tolist()
        return RnnCell(activations=tuple(values[0::2]),
                       prev_nodes=tuple(values[1::2]), space_activations=self.activations)

    def encode(self, cell: RnnCell) -> np.ndarray:
        values = [cell.activations[0]]
        for prev, act in zip(cell.prev_nodes, cell.activations[1:]):
            values += [prev, act]
        return self.validate(np.array(values))


# enas_lm (google-research) orders activations tanh, ReLU, sigmoid, identity
# and fixes node 0 to tanh; its arcs list (prev, activation) per later node.
_ENAS_LM_TO_OFFICIAL_ACTIVATION = (0, 1, 3, 2)


def from_enas_lm_string(text: str) -> np.ndarray:
    """Converts an enas_lm arc ('0 2 1 0 ...') to this space's format.

    enas_lm's N pairs describe nodes 1..N after a fixed tanh node 0, so the
    result has N+1 nodes; activation codes are remapped to the official order.
    """
    tokens = text.split()
    if not tokens or len(tokens) % 2:
        raise arcs.ArcError(
            "enas_lm arc must be an even, non-zero number of integers "
            f"(previous node, activation) pairs. Received: {len(tokens)} integers")
    values = [0]
    for i in range(0, len(tokens), 2):
        try:
            prev, act = int(tokens[i]), int(tokens[i + 1])
        except ValueError:
            raise arcs.ArcError(
                f"enas_lm arc tokens {i}-{i + 1} must be integers. "
                f"Received: {tokens[i]!r} {tokens[i + 1]!r}") from None
        if not 0 <= act < len(_ENAS_LM_TO_OFFICIAL_ACTIVATION):
            raise arcs.ArcError(
                f"enas_lm arc token {i + 1} (activation) must be in [0, 3]. "
                f"Received: {act}")
        values += [prev, _ENAS_LM_TO_OFFICIAL_ACTIVATION[act]]
    return RnnSpace(len(tokens) // 2 + 1).validate(np.array(values))
