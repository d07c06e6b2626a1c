"""Routing a graph's tensors by the arc: only what the arc chose runs.

A choice is a Python int (fixed arc; plain Python indexing), or, inside a
graph, a scalar int32 tensor turned into one bool per option. ``branch``
(a ``Switch``) makes a tensor live only on the taken option; ``merge``
fires on its first live input. A node that reads a routed input therefore
waits only for the tensor it reads, and ops on dead branches do not run.

Autodiff cannot go through ``Switch``/``Merge`` on its own: a dead
gradient reaching an ``AddN`` would kill the sum. ``RoutedStates`` gives
picks of earlier states a backward pass that stays routed: a state's
gradient adds each reader's only if that reader took it, so a pick costs no
dense zeros for the states it did not take (``tf.switch_case``'s gradient
makes one per state and adds them in). ``dispatch`` runs one of several
functions on a tensor, each differentiated on its own branch.
"""

import tensorflow as tf


def index(choice):
    """An int choice; an eager tensor's value; or, in a graph, the tensor itself.

    Eager tensors are read by value: there is no graph to route through.
    """
    if isinstance(choice, int) or not tf.executing_eagerly():
        return choice
    return int(choice)


def options(choice, count):
    """An int choice; or, for a tensor in a graph, ``count`` bools (option k is taken)."""
    choice = index(choice)
    if isinstance(choice, int):
        return choice
    return tf.unstack(tf.equal(choice, tf.range(count)))


def branch(taken, x):
    """``x`` on the branch of an option whose bool is ``taken``; dead on the others."""
    return tf.raw_ops.Switch(data=x, pred=taken).output_true


def merge(branches):
    """The one live tensor of ``branches`` (one per option), as soon as it exists."""
    return tf.raw_ops.Merge(inputs=branches).output


def add_if(taken, total, x):
    """``total + x`` if ``taken`` else ``total``, waiting for ``x`` only when taken."""
    skip, add = tf.raw_ops.Switch(data=total, pred=taken)
    return merge([skip, add + branch(taken, x)])


def pick(choice, tensors):
    """``tensors[choice]``: an int, or the options of a graph choice (not differentiable)."""
    if isinstance(choice, int):
        return tensors[choice]
    return merge([branch(taken, t) for taken, t in zip(choice, tensors)])


def dispatch(choice, fns, x):
    """``fns[choice](x)``; in a graph, only the chosen fn runs, forward and backward.

    ``choice``: an int, or a scalar int32 tensor (``options`` of it is taken
    here). Each fn reads ``x`` on its own routed branch, and its output is
    routed again, so a fn that ignored ``x`` cannot make a second live input
    to the merge. The backward pass is each fn's own gradient, built on its
    branch: it runs only for the chosen fn; the variables of the others get
    zeros. Unlike ``tf.switch_case`` this adds no branch functions to the
    graph (nor their gradients, nor the optional-wrapped intermediates
    ``switch_case``'s gradient passes between them): the micro search step
    traced in a fraction of the time and memory. Only what depends on ``x``
    is routed (a slice of a weight runs for every option, cheaply), and two
    options must not update one resource: tf.function chains such updates,
    so the dead option's update would hold back the taken one's.
    """
    takes = options(choice, len(fns))
    if isinstance(takes, int):
        return fns[takes](x)

    @tf.custom_gradient
    def run(x):
        tapes, outputs = [], []
        for taken, fn in zip(takes, fns):
            routed = branch(taken, x)
            with tf.GradientTape() as tape:  # fn's own ops: no Switch for the tape
                tape.watch(routed)
                output = fn(routed)
            outputs.append(output)
            tapes.append((tape, routed))
        read = [tape.watched_variables() for tape, _ in tapes]

        def grad(dy, variables=None):
            dx, dvars = [], {}
            for taken, (tape, routed), output, own in zip(takes, tapes, outputs, read):
                d_own = tape.gradient(output, [routed, *own], output_gradients=branch(taken, dy),
                                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
                dx.append(d_own[0])
                # A zero live only if the option was not taken: its weights'
                # zero gradients are filled only then.
                untaken = tf.raw_ops.Switch(data=tf.zeros([], dy.dtype), pred=taken).output_false
                for variable, d in zip(own, d_own[1:]):
                    skip = tf.fill(variable.shape, tf.cast(untaken, variable.dtype))
                    dvars[variable.ref()] = merge([skip, d])
            # Variables read but not differentiated (a BN's moving averages): None.
            return merge(dx), [dvars.get(v.ref()) for v in variables or ()]

        return merge([branch(t, y) for t, y in zip(takes, outputs)]), grad

    return run(x)


class RoutedStates:
    """States that later readers pick by choice, with a routed backward pass.

    ``choices[k]``: reader k's choice (int or scalar int32 tensor) among the
    first ``counts[k]`` states. ``add(state)`` appends a state;
    ``read(k)`` is reader k's pick; ``outputs`` holds one plain copy of
    every state, for what reads them all (a gradient must reach each).
    Each state fans out to one copy per possible reader; a pick's gradient
    is live only towards the copy it took, and the fan-out adds a reader's
    gradient only if that reader took the state.
    """

    def __init__(self, choices, counts):
        self._counts = counts
        self._takes = [options(c, n) for c, n in zip(choices, counts)]
        self._copies = []  # per state: {reader: the copy it may read}
        self.outputs = []

    def add(self, state):
        readers = [k for k, count in enumerate(self._counts) if count > len(self._copies)]
        if isinstance(self._takes[0], int) or not readers:
            copies = [state] * (len(readers) + 1)
        else:
            copies = _fan_out(state, [self._takes[k][len(self._copies)] for k in readers])
        self.outputs.append(copies[0])
        self._copies.append(dict(zip(readers, copies[1:])))

    def read(self, reader):
        take = self._takes[reader]
        copies = [copies[reader] for copies in self._copies[:self._counts[reader]]]
        if isinstance(take, int):
            return copies[take]
        return _routed_pick(take, copies)


def _fan_out(state, taken_by):
    """Copies of ``state``: one always read, then one per reader.

    ``taken_by[k]``: whether reader k took the state.
    """

    @tf.custom_gradient
    def fan_out(x):
        def grad(always, *by_reader):
            total = always
            for taken, g in zip(taken_by, by_reader):
                total = add_if(taken, total, g)
            return total
        return [tf.identity(x) for _ in range(len(taken_by) + 1)], grad

    return fan_out(state)


def _routed_pick(takes, copies):
    """The taken copy; its gradient goes to that copy only (dead towards the others)."""

    @tf.custom_gradient
    def routed_pick(*xs):
        def grad(g):
            return [branch(taken, g) for taken in takes]
        return pick(takes, xs), grad

    return routed_pick(*copies)
