"""Subprocess side of shape_sweep_test: runs sweep cases, one after another.

Reads a JSON list of cases on stdin and, for each, builds the block it
names at its shape and dtype policy, runs forward and backward inside a
``tf.function`` (as a training step does, so Grappler's rewrites and
oneDNN's kernels are the ones a search runs), and checks the output shape
and that every gradient is finite. Prints ``start ID`` before a case and
``done ID`` or ``error ID MESSAGE`` after it, flushed, so the parent knows
which case a native crash interrupted.

    echo '[{"id": "...", "block": "factorized_reduce", ...}]' | python tests/shape_sweep_support.py
"""

import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from enas_tf.layers import candidate_ops
from enas_tf.layers import macro_layer
from enas_tf.layers import micro_cell
from enas_tf.models import cifar_child
from enas_tf.models import ptb_child
from enas_tf.search_space import macro
from enas_tf.search_space import micro
from enas_tf.search_space import rnn


def _image_block(case, policy):
    """(layer, call(layer, x, training)) of an image block case."""
    kind, filters, strides = case["block"], case["filters"], case.get("strides", 1)
    if kind == "conv_bn":
        layer = candidate_ops.ConvBn(filters, case["kernel"], strides=strides,
                                     separable=case["separable"], pre_relu=True,
                                     post_relu=True, dtype=policy)
    elif kind == "factorized_reduce":
        layer = candidate_ops.FactorizedReduce(filters, strides=strides, pre_relu=True,
                                               dtype=policy)
    elif kind == "macro_op":
        layer = candidate_ops.MACRO_OPS[case["op"]](filters, dtype=policy)
    elif kind == "micro_op":
        slots = case.get("slots")
        layer = candidate_ops.MICRO_OPS[case["op"]](filters, strides=strides, slots=slots,
                                                    batch_stats_only=bool(slots), dtype=policy)
        if case.get("slots"):
            return layer, lambda l, x, t: l(x, training=t, slot=tf.constant(case["slots"] - 1))
    elif kind == "aux_head":
        layer = cifar_child.AuxHead(filters, dtype=policy)
    else:
        raise ValueError(f"unknown image block {kind}")
    return layer, lambda l, x, t: l(x, training=t)


def _random_arc(space, seed):
    rng = np.random.default_rng(seed)
    return np.array([rng.integers(bound) for bound in space.bounds], np.int32)


def _macro_layers(case, policy):
    """Layer ``layer_id`` of a macro child over that many equal inputs."""
    layer_id, filters = case["layer_id"], case["filters"]
    arc = _random_arc(macro.MacroSpace(layer_id + 1), case["seed"])
    if case["search"]:
        layer = macro_layer.MacroSearchLayer(layer_id, filters, dtype=policy)
    else:
        view = macro.MacroSpace(layer_id + 1).decode(arc)
        layer = macro_layer.MacroFixedLayer(layer_id, filters, view.ops[layer_id],
                                            view.skips[layer_id], dtype=policy)
    arc = tf.constant(arc)
    return layer, lambda l, x, t: l([x] * max(layer_id, 1), arc, training=t)


def _micro_cell(case, policy):
    """A micro cell over two equal inputs, normal or reduction."""
    space = micro.MicroSpace(case["num_nodes"])
    arc = _random_arc(space, case["seed"])
    shape = (case["filters"], case["num_nodes"], case["reduction"])
    if case["search"]:
        layer = micro_cell.MicroSearchCell(*shape, dtype=policy)
    else:
        view = space.decode(arc)
        nodes = (view.reduction if case["reduction"] else view.normal).nodes
        layer = micro_cell.MicroFixedCell(*shape, nodes=nodes, dtype=policy)
    arc = tf.constant(arc)
    return layer, lambda l, x, t: l([x, x], arc, training=t)


def _child(case, policy):
    """A whole macro or micro child, searching (arc as input) or fixed."""
    if case["space"] == "macro":
        space = macro.MacroSpace(case["num_layers"])
        arc = _random_arc(space, case["seed"])
        model = cifar_child.MacroChild(case["num_layers"], case["filters"],
                                       fixed_arc=None if case["search"] else arc,
                                       dtype=policy)
    else:
        space = micro.MicroSpace(case["num_nodes"])
        arc = _random_arc(space, case["seed"])
        model = cifar_child.MicroChild(case["num_layers"], case["filters"], case["num_nodes"],
                                       use_aux_heads=True,
                                       fixed_arc=None if case["search"] else arc,
                                       dtype=policy)
    arc = tf.constant(arc)

    def call(m, x, training):
        out = m(x, arc, training=training)
        # Training with the aux head gives (logits, aux_logits), the same shape.
        return tf.stack(out) if isinstance(out, tuple) else out
    return model, call


def run_image_case(case):
    policy = keras.dtype_policies.DTypePolicy(case["policy"])
    builders = {"macro_layer": _macro_layers, "micro_cell": _micro_cell, "child": _child}
    layer, call = builders.get(case["block"], _image_block)(case, policy)
    x = tf.random.stateless_normal(case["input"], seed=[1, 2])
    want_shape = tuple(call(layer, x, False).shape)  # builds it, eagerly
    weights = layer.trainable_weights

    @tf.function(jit_compile=False)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = call(layer, x, True)
            loss = tf.reduce_sum(tf.square(tf.cast(y, tf.float32)))
        return y, tape.gradient(loss, [x] + weights)

    y, grads = step(x)
    check(y, grads, want_shape)


def run_ptb_case(case):
    """The PTB child's forward and backward: every matmul of the cell and softmax."""
    policy = keras.dtype_policies.DTypePolicy(case["policy"])
    space = rnn.RnnSpace(case["num_nodes"])
    arc = _random_arc(space, case["seed"])
    model = ptb_child.PtbChild(case["vocab"], case["hidden"], case["num_nodes"],
                               fixed_arc=None if case["search"] else arc, dtype=policy)
    batch, steps = case["input"]
    tokens = tf.random.stateless_uniform([batch, steps], [3, 4], maxval=case["vocab"],
                                         dtype=tf.int32)
    state = model.initial_state(batch)
    arc = tf.constant(arc)
    model(tokens, state, arc)

    @tf.function(jit_compile=False)
    def step():
        with tf.GradientTape() as tape:
            logits, _, _ = model(tokens, state, arc, training=True, seed=tf.constant([5, 6]))
            loss = tf.reduce_sum(tf.square(tf.cast(logits, tf.float32)))
        return logits, tape.gradient(loss, model.trainable_weights)

    logits, grads = step()
    check(logits, grads, (batch, steps, case["vocab"]))


def check(y, grads, want_shape):
    """The output has the promised shape; it and every gradient are finite."""
    if tuple(y.shape)[-len(want_shape):] != want_shape:
        raise AssertionError(f"output shape {tuple(y.shape)}, want {tuple(want_shape)}")
    if not np.all(np.isfinite(tf.cast(y, tf.float32).numpy())):
        raise AssertionError("output not finite")
    for g in grads:
        if g is None:
            continue
        values = tf.convert_to_tensor(g)
        if not np.all(np.isfinite(tf.cast(values, tf.float32).numpy())):
            raise AssertionError("gradient not finite")


def main():
    cases = json.load(sys.stdin)
    for case in cases:
        print("start", case["id"], flush=True)
        if case["block"] == "crash":  # the test of the sweep itself
            os.abort()
        try:
            (run_ptb_case if case["block"] == "ptb_child" else run_image_case)(case)
        except Exception as e:  # pylint: disable=broad-except
            message = " ".join(f"{type(e).__name__}: {e}".split())[:400]
            print("error", case["id"], message, flush=True)
        else:
            print("done", case["id"], flush=True)


if __name__ == "__main__":
    main()
