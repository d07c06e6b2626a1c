"""The candidate ops of the search spaces, by name: the official ones and the user's.

Three families: ``"macro"`` and ``"micro"`` (CIFAR layer ops) and ``"rnn"``
(the PTB cell's activations). A space offers some registered names of its
family, in an order of its choosing (``MacroSpace(L, ops=...)``,
``MicroSpace(B, ops=...)``, ``RnnSpace(N, activations=...)``); an arc's op
code is an index into that space's own list. The official ops are
registered from the start, in the official order, and are every space's
default, so published arcs keep their meaning.

``register_op(family, name, factory)`` adds an op without editing the
package. The public factory contracts:

* macro, micro: ``factory(filters, strides) -> keras.layers.Layer`` whose
  ``call(x, training=...)`` maps NHWC ``[B, H, W, C]`` to
  ``[B, ceil(H / strides), ceil(W / strides), filters]`` (macro ops always
  get ``strides=1``; a micro reduction cell gives its ops on the cell
  inputs ``strides=2``). The layer must create its variables in
  ``build()``: a search layer builds every candidate before
  ``routing.dispatch`` picks one inside a traced step.
* rnn: ``activation(x) -> tensor``, elementwise (same shape and dtype);
  its derivative for the cell's hand-written backward pass comes from
  autodiff.

The layers call the factory (``candidate_ops.CustomOp``,
``cell_wiring.activations``); Keras configs record op names, never the
callables, so a saved model needs its custom ops registered again before
it is loaded.
"""

import re

FAMILIES = ("macro", "micro", "rnn")

OFFICIAL = {
    "macro": ("conv_3x3", "sep_conv_3x3", "conv_5x5", "sep_conv_5x5",
              "avg_pool_3x3", "max_pool_3x3"),
    "micro": ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity"),
    "rnn": ("tanh", "relu", "identity", "sigmoid"),
}

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_custom = {family: {} for family in FAMILIES}  # name -> the user's factory


class OpError(ValueError):
    """A bad op name, registration or custom op; the message is one line."""


def _checked_family(family):
    if family not in FAMILIES:
        raise OpError(f"family must be one of {', '.join(FAMILIES)}. Received: {family!r}")
    return family


def register_op(family, name, factory):
    """Adds op ``name`` of ``family`` made by ``factory`` (see the module docstring)."""
    _checked_family(family)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise OpError("op name must be a letter followed by letters, digits or "
                      f"underscores. Received: {name!r}")
    if name in op_names(family):
        raise OpError(f"{family} op {name!r} is already registered; pick another name. "
                      f"Registered: {', '.join(op_names(family))}")
    if not callable(factory):
        raise OpError(f"{family} op {name!r} needs a callable factory. "
                      f"Received: {type(factory).__name__}")
    _custom[family][name] = factory


def op_names(family):
    """Every registered op name of ``family``: the official ones first, in order."""
    return OFFICIAL[_checked_family(family)] + tuple(_custom[family])


def factory(family, name):
    """The user's factory registered as ``name`` (official ops live in the layers)."""
    try:
        return _custom[_checked_family(family)][name]
    except KeyError:
        raise OpError(f"{family} op {name!r} is not a registered custom op. "
                      f"Custom ops: {', '.join(_custom[family]) or 'none'}") from None


def space_ops(family, names=None, count=None, what="ops", count_name="num_ops"):
    """A space's op names: ``names`` checked, else the first ``count`` official ops.

    ``count`` (the older ``num_branches`` / ``num_ops`` arguments) defaults
    to all official ops; with ``names`` it may only repeat their number.
    """
    official = OFFICIAL[_checked_family(family)]
    if names is None:
        count = len(official) if count is None else count
        if not 1 <= count <= len(official):
            raise OpError(f"{count_name} must be in [1, {len(official)}]. "
                          f"Received: {count_name}={count}")
        return official[:count]
    if isinstance(names, str) or not names:
        raise OpError(f"{what} must be a non-empty sequence of {family} op names. "
                      f"Received: {what}={names!r}")
    names = tuple(names)
    for name in names:
        if name not in op_names(family):
            raise OpError(f"{what} must be registered {family} op names. Received: {name!r} "
                          f"(registered: {', '.join(op_names(family))})")
    if len(set(names)) != len(names):
        raise OpError(f"{what} must not repeat an op. Received: {what}={names}")
    if count is not None and count != len(names):
        raise OpError(f"{count_name} must be the number of {what} ({len(names)}) when "
                      f"{what} are given. Received: {count_name}={count}")
    return names
