"""How a serving signature gets the architecture its model runs.

A fixed-arc model needs none. A shared-weight (search) model exported for
one arc gets it as a constant ("pinned"). A supernet export takes it as a
second signature input ``arc`` (int32, ``arc_length`` values), so one
SavedModel answers for every architecture of the space. An input arc is checked in the
graph before any layer reads it: ``tf.switch_case`` runs its last branch for
an out-of-range index, so a bad arc must fail instead, with the message of
``SearchSpace.validate`` (the position, its name, the allowed range, the
value) as an InvalidArgumentError.
"""

import numpy as np
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
        # unrelated message. checked_arc checks it.
        return [tf.TensorSpec([None], tf.int32, name=ARC)]

    def tensor(self, arc=None):
        """The arc the model runs (None for a fixed model)."""
        if self.supernet:
            return checked_arc(arc, self.space)
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


def checked_arc(arc, space):
    """``arc`` after an in-graph check of its length and every value against ``space``.

    The values are compared on a copy fitted to the space's length, so a
    wrong length gets its own message rather than a shape error.
    """
    arc = tf.convert_to_tensor(arc, tf.int32)
    n = space.arc_length
    shape_ok = tf.equal(tf.size(arc), n)
    fitted = tf.concat([arc, tf.zeros([n], tf.int32)], 0)[:n]
    bad = tf.logical_or(fitted < 0, fitted >= tf.constant(space.bounds, tf.int32))
    first = tf.argmax(tf.cast(bad, tf.int32), output_type=tf.int32)
    prefixes = tf.constant(np.array([
        f"{space.name} arc position {i} ({space.position_name(i)}) must be in "
        f"[0, {bound - 1}]. Received: " for i, bound in enumerate(space.bounds.tolist())]))
    message = tf.where(
        shape_ok,
        tf.strings.join([tf.gather(prefixes, first), tf.strings.as_string(fitted[first])]),
        tf.strings.join([f"{space.name} arc must have {n} integers. Received: ",
                         tf.strings.as_string(tf.size(arc)), " integers"]))
    check = tf.debugging.Assert(tf.logical_and(shape_ok, tf.logical_not(tf.reduce_any(bad))),
                                [message])
    with tf.control_dependencies([check]):
        return tf.identity(arc)
