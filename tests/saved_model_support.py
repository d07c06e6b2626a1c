"""For the export tests: bin/export_child, inputs, and the loaders besides
tf.saved_model.load (that one is serving_support.reference)."""

import os

import keras
import numpy as np
import tensorflow as tf

from ptb_cli import ROOT, run_binary

EXPORT_BINARY = os.path.join(ROOT, "bin", "export_child")


def session_predict(export_path, inputs, signature="serving_default"):
    """Runs a signature through a TF1 session, by tensor names (as TF Serving's C++ server)."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_path)
        sig = meta.signature_def[signature]
        feeds = {sig.inputs[k].name: v for k, v in inputs.items()}
        fetches = {k: v.name for k, v in sig.outputs.items()}
        return session.run(fetches, feeds)


def tfsm_predict(export_path, inputs, endpoint="serve"):
    """keras.layers.TFSMLayer: an export as a layer of a Keras 3 model.

    The layer passes its first input positionally, which signature functions
    refuse (keywords only), so it calls the export's function behind
    ``serving_default``, ``serve``; ``inputs`` is in the signature's order.
    """
    layer = keras.layers.TFSMLayer(export_path, call_endpoint=endpoint)
    (_, first), *rest = [(k, tf.constant(v)) for k, v in inputs.items()]
    outputs = layer(first, **dict(rest))
    return {k: np.asarray(v) for k, v in outputs.items()}


def export_child(args, check=True):
    """Runs bin/export_child as a user does."""
    return run_binary(EXPORT_BINARY, args, check)


def tokens(seed=0):
    """A [3, 6] batch of token ids of the tiny PTB vocabulary."""
    return np.random.default_rng(seed).integers(0, 100, (3, 6)).astype(np.int64)


def images(count=5, seed=0):
    """Random uint8 CIFAR-10 images."""
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def assert_same_outputs(got, want):
    """Two loaders' answers: the same outputs, equal up to float rounding."""
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
