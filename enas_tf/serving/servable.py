"""One loaded version of a model: its signatures, checked and run.

Inputs are checked against the SignatureDef (names, dtypes, shapes) before
the graph runs, so a wrong request gets a message naming the input and what
the signature allows instead of an error from deep inside the graph.
"""

import os

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from enas_tf.serving import errors

SERVE_TAG = "serve"
DEFAULT_SIGNATURE = "serving_default"


def load(base_path, version):
    """Loads ``<base_path>/<version>`` with the "serve" tag."""
    path = os.path.join(base_path, str(version))
    return Servable(version, read_signature_defs(path), tf.saved_model.load(path, tags=[SERVE_TAG]))


def read_signature_defs(path):
    """The SignatureDef map of the export's "serve" MetaGraph, as TF Serving sees it."""
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    for meta_graph in saved.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return meta_graph.signature_def
    raise ValueError(f"{path} has no MetaGraph tagged {SERVE_TAG!r}")


def shape_text(dims):
    return "[" + ",".join(str(d) for d in dims) + "]"


class Servable:
    """A version's SignatureDefs (metadata) and its signature functions."""

    def __init__(self, version, signature_defs, loaded):
        self.version = version
        self.signature_defs = signature_defs
        self._loaded = loaded  # Keeps the variables alive.
        self._functions = dict(loaded.signatures)

    def predict_signatures(self):
        return sorted(self._functions)

    def signature(self, name, missing_code=grpc.StatusCode.INVALID_ARGUMENT):
        """The SignatureDef called ``name`` ("" means the default one)."""
        name = name or DEFAULT_SIGNATURE
        if name not in self._functions:
            raise errors.ServingError(
                missing_code, f'Serving signature name: "{name}" not found in signature def; '
                f"this model serves: {', '.join(self.predict_signatures())}")
        return self.signature_defs[name]

    def predict(self, signature_name, inputs, output_filter=()):
        """Runs a signature on a dict of arrays; returns a dict of arrays."""
        signature_name = signature_name or DEFAULT_SIGNATURE
        sig = self.signature(signature_name)
        check_inputs(sig, inputs)
        wanted = _output_names(sig, output_filter)
        try:
            outputs = self._functions[signature_name](
                **{name: tf.constant(value) for name, value in inputs.items()})
        except tf.errors.OpError as e:
            raise errors.from_tf_error(e) from e
        return {name: outputs[name].numpy() for name in wanted}


def check_inputs(sig, inputs):
    """Raises INVALID_ARGUMENT unless ``inputs`` fits the signature exactly."""
    check_input_names(sig, inputs)
    for name, value in inputs.items():
        info = sig.inputs[name]
        dtype = tf.as_dtype(info.dtype)
        if tf.as_dtype(value.dtype) != dtype:
            raise errors.invalid(f"input {name!r} must be {dtype.name}; got {value.dtype.name}")
        if not info.tensor_shape.unknown_rank:
            _check_shape(name, value.shape, [dim.size for dim in info.tensor_shape.dim])


def check_input_names(sig, names):
    """Raises INVALID_ARGUMENT unless ``names`` are exactly the signature's inputs."""
    expected, given = set(sig.inputs), set(names)
    if expected != given:
        raise errors.invalid(
            f"input names {{{','.join(sorted(given))}}} do not match the signature's "
            f"{{{','.join(sorted(expected))}}}. Sent extra: {{{','.join(sorted(given - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - given))}}}.")


def _check_shape(name, shape, dims):
    fits = len(shape) == len(dims) and all(d in (-1, s) for s, d in zip(shape, dims))
    if not fits:
        raise errors.invalid(f"input {name!r} has shape {shape_text(shape)}; the signature "
                             f"takes {shape_text(dims)} (-1: any size)")


def _output_names(sig, output_filter):
    unknown = [name for name in output_filter if name not in sig.outputs]
    if unknown:
        raise errors.invalid(f"output tensor alias not found in signature: {unknown[0]}. "
                             f"Outputs expected to be in the set {{{','.join(sorted(sig.outputs))}}}.")
    if len(set(output_filter)) != len(output_filter):
        raise errors.invalid(f"duplicate output tensor alias in output_filter: {list(output_filter)}")
    return list(output_filter) or sorted(sig.outputs)

