"""The message of a failed in-graph arc check (``SearchSpace.check_tensor``)."""

import re

# The length message of the 4-node PTB space (search runs in the tests use it).
PTB_LENGTH = ("ptb arc must have 7 integers (2N-1 for N=4 nodes: the activation of node 0, "
              "then (previous node, activation) for nodes 1..3). Received: {} integers")

# tf.debugging.Assert in a graph (a compiled call, a SavedModel signature),
# then run eagerly (a layer called on its own, outside tf.function; Keras
# may wrap the line in a terminal bold code).
_PATTERNS = (r"assertion failed: \[(.*)\]$",
             r"Summarized data: b'(.*)'(?:\x1b\[0m)?$")


def check_message(error):
    """The message the failed check gave, exactly, or an AssertionError."""
    for pattern in _PATTERNS:
        match = re.search(pattern, str(error), re.MULTILINE)
        if match:
            return match.group(1)
    raise AssertionError(f"not a failed arc check: {error}")
