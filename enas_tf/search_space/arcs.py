"""Flat integer architectures ("arcs") and the search-space contract.

An arc is a flat int32 vector in the official ENAS string format, so that
published architectures paste in unchanged. Every position of every ENAS
space is an independent choice in ``[0, bound)``; a space is therefore fully
described by one vector of upper bounds plus a name for each position, and
validation, parsing and random sampling live here once for all spaces.
"""

import abc

import numpy as np


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
            raise ArcError(
                f"{self.name} arc must be a flat vector of {self.arc_length} "
                f"integers. Received: shape={values.shape}")
        if values.shape[0] != self.arc_length:
            raise ArcError(
                f"{self.name} arc must have {self.arc_length} integers "
                f"({self.describe()}). Received: {values.shape[0]} integers")
        # Python scalars: no cast can overflow before the range check.
        checked = []
        for i, (value, bound) in enumerate(zip(values.tolist(), self.bounds.tolist())):
            where = f"{self.name} arc position {i} ({self.position_name(i)})"
            if not _is_integral(value):
                raise ArcError(f"{where} must be an integer. Received: {value!r}")
            if not 0 <= int(value) < bound:
                raise ArcError(f"{where} must be in [0, {bound - 1}]. "
                               f"Received: {int(value)}")
            checked.append(int(value))
        return np.array(checked, dtype=np.int32)

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
