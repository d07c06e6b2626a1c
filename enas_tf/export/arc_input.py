"""How a serving signature gets the architecture its model runs.

A fixed-arc model needs none. A shared-weight (search) model exported for
one arc gets it as a constant ("pinned"). A supernet export takes it as a
second signature input ``arc`` (int32, ``arc_length`` values), so one
SavedModel answers for every architecture of the space. An input arc is checked in the
graph before any layer reads it (``SearchSpace.check_tensor``): a bad arc
fails with the message of ``SearchSpace.validate`` (the position, its name,
the allowed range, the value) as an InvalidArgumentError.
"""

import tensorflow as tf

ARC = "arc"  # the supernet signatures' input name


class ArcInput:
    """No arc (fixed model), a pinned arc, or the ``arc`` input (supernet)."""

    def __init__(self, space=None, pinned=None, supernet=False):
        if supernet and pinned is not None:
            raise ValueError("a supernet export takes its arc as an input: pin none")
        self.space = space
        self.pinned = None if pinned is None else space.validate(pinned)
        self.supernet = supernet

    @property
    def specs(self):
        """The extra input specs of every signature."""
        if not self.supernet:
            return []
        # Length unset: a loaded signature does not enforce a static one, and
        # the graph, optimised for it, would fail on another length with an
        # unrelated message. SearchSpace.check_tensor checks it.
        return [tf.TensorSpec([None], tf.int32, name=ARC)]

    def tensor(self, arc=None):
        """The arc the model runs (None for a fixed model)."""
        if self.supernet:
            return self.space.check_tensor(arc)
        return None if self.pinned is None else tf.constant(self.pinned, tf.int32)

    def metadata(self):
        """What a client needs to know to build an arc for a supernet export."""
        if not self.supernet:
            return {"supernet": False}
        return {"supernet": True, "arc_bounds": self.space.bounds.tolist(),
                "arc_positions": [self.space.position_name(i)
                                  for i in range(self.space.arc_length)]}


def for_export(space, fixed_arc, arc=None, supernet=False):
    """The arc input of a task's export; a fixed-arc model exports only itself."""
    if fixed_arc is not None:
        if arc is not None or supernet:
            raise ValueError("a fixed-arc model exports only itself: an arc or a supernet "
                             "export needs a search (shared-weight) model")
        return ArcInput()
    if arc is None and not supernet:
        raise ValueError("a search model exports one arc (pass arc) or every arc "
                         "(pass supernet=True)")
    return ArcInput(space, pinned=arc, supernet=supernet)

