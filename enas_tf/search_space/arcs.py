"""Flat integer architectures ("arcs") and the search-space contract.

An arc is a flat int32 vector in the official ENAS string format, so that
published architectures paste in unchanged. Every position of every ENAS
space is an independent choice in ``[0, bound)``; a space is therefore fully
described by one vector of upper bounds plus a name for each position, and
validation, parsing and random sampling live here once for all spaces.
So does the one in-graph check of an arc tensor (``check_tensor``), which
every layer, model and export runs, with the same messages as ``validate``.
"""

import abc

import numpy as np
import tensorflow as tf


class ArcError(ValueError):
    """A malformed architecture; the message is one line naming what and where."""


class SearchSpace(abc.ABC):
    """The decisions of one ENAS search space, as a flat vector of choices."""

    name: str = "abstract"

    @property
    @abc.abstractmethod
    def bounds(self) -> np.ndarray:
        """Exclusive upper bound of each arc position (int32, lower bound 0)."""

    @abc.abstractmethod
    def position_name(self, position: int) -> str:
        """Human name of an arc position, e.g. 'node 3 previous node'."""

    @property
    def arc_length(self) -> int:
        return int(self.bounds.shape[0])

    def validate(self, arc) -> np.ndarray:
        """Returns ``arc`` as int32 numpy, or raises ArcError naming the fault."""
        values = np.asarray(arc)
        if values.ndim != 1:
            raise ArcError(self._rank_message(values.shape))
        if values.shape[0] != self.arc_length:
            raise ArcError(self._length_message(values.shape[0]))
        # Python scalars: no cast can overflow before the range check.
        checked = []
        for i, (value, bound) in enumerate(zip(values.tolist(), self.bounds.tolist())):
            if not _is_integral(value):
                raise ArcError(f"{self._where(i)} must be an integer. Received: {value!r}")
            if not 0 <= int(value) < bound:
                raise ArcError(self._range_message(i, int(value)))
            checked.append(int(value))
        return np.array(checked, dtype=np.int32)

    def check_tensor(self, arc) -> tf.Tensor:
        """``arc`` as int32 [arc_length], after an in-graph check with ``validate``'s messages.

        An out-of-range index takes no routed option (and ``tf.switch_case``
        runs its last branch for it), so every arc tensor passes through here
        before a layer reads it. A bad
        arc fails as an InvalidArgumentError with ``validate``'s message for
        it. What comes back is the arc fitted to the space's length, so a
        layer never indexes past a short arc and a wrong length gets its own
        message rather than a shape error. A wrong rank, known when tracing,
        raises ArcError then. TensorFlow prints the message C-escaped: names
        and ``describe`` use no quotes or backslashes.
        """
        arc = tf.convert_to_tensor(arc, tf.int32)
        if arc.shape.rank != 1:
            raise ArcError(self._rank_message(arc.shape))
        n = self.arc_length
        length_ok = tf.equal(tf.size(arc), n)
        fitted = tf.reshape(tf.concat([arc, tf.zeros([n], tf.int32)], 0)[:n], [n])
        bad = tf.logical_or(fitted < 0, fitted >= tf.constant(self.bounds, tf.int32))
        first = tf.argmax(tf.cast(bad, tf.int32), output_type=tf.int32)
        # Message i + 1 is position i's, message 0 the length's; "{}" the value.
        templates = tf.constant([self._length_message("{}")] + [
            self._range_message(i, "{}") for i in range(n)])
        fault = tf.where(length_ok, first + 1, 0)
        received = tf.where(length_ok, fitted[first], tf.size(arc))
        message = tf.strings.regex_replace(tf.gather(templates, fault), r"\{\}",
                                           tf.strings.as_string(received),
                                           replace_global=False)
        check = tf.debugging.Assert(
            tf.logical_and(length_ok, tf.logical_not(tf.reduce_any(bad))), [message])
        with tf.control_dependencies([check]):
            return tf.identity(fitted)

    def _where(self, position: int) -> str:
        return f"{self.name} arc position {position} ({self.position_name(position)})"

    def _rank_message(self, shape) -> str:
        return (f"{self.name} arc must be a flat vector of {self.arc_length} "
                f"integers. Received: shape={shape}")

    def _length_message(self, received) -> str:
        return (f"{self.name} arc must have {self.arc_length} integers "
                f"({self.describe()}). Received: {received} integers")

    def _range_message(self, position: int, received) -> str:
        return (f"{self._where(position)} must be in "
                f"[0, {self.bounds[position] - 1}]. Received: {received}")

    def from_string(self, text: str) -> np.ndarray:
        """Parses the official whitespace-separated format (any line breaks)."""
        if not isinstance(text, str):
            raise ArcError(f"{self.name} arc must be a string of integers. "
                           f"Received: {type(text).__name__}")
        values = []
        for i, token in enumerate(text.split()):
            try:
                values.append(int(token))
            except ValueError:
                raise ArcError(
                    f"{self.name} arc token {i} must be an integer. "
                    f"Received: {token!r}") from None
        return self.validate(np.array(values, dtype=object))

    def to_string(self, arc) -> str:
        return " ".join(str(v) for v in self.validate(arc).tolist())

    op_names: tuple = ()  # the values of an op position, by index

    def op_positions(self) -> list:
        """The arc positions that choose an op among ``op_names`` (the others
        choose wiring); a search's policy statistics count ops there."""
        return []

    def random_arc(self, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random valid arc (tests, random-search baselines)."""
        return rng.integers(0, self.bounds).astype(np.int32)

    def describe(self) -> str:
        """One-line summary of the layout, used in error messages."""
        return f"{self.arc_length} positions"


def _is_integral(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()
