"""Shared by the serving tests: real PTB exports and an in-process server."""

import contextlib
import socket

import tensorflow as tf

from enas_tf.serving import config
from enas_tf.serving import model_server
from ptb_cli import run

CHILD_ARC = "1 0 0 1 3 0 2"


def export_child(export_base, model_name, seed=0):
    """Trains a tiny fixed PTB child with bin/search_ptb and exports the next version."""
    run([f"--child_fixed_arc={CHILD_ARC}", "--nocontroller_training", "--num_epochs=1",
         "--child_steps_per_epoch=3", f"--seed={seed}", f"--export_dir={export_base}",
         f"--model_name={model_name}", f"--output_dir={export_base}/runs/{model_name}-{seed}",
         "--reset_output_dir"])
    return f"{export_base}/{model_name}"


def reference(version_dir, signature_name, **inputs):
    """What the SavedModel itself answers: the figures the server must return."""
    outputs = tf.saved_model.load(version_dir).signatures[signature_name](
        **{name: tf.constant(value) for name, value in inputs.items()})
    return {name: value.numpy() for name, value in outputs.items()}


@contextlib.contextmanager
def serving(models, **kwargs):
    """A started ModelServer on free loopback ports, stopped on exit."""
    kwargs = {"grpc_port": 0, "rest_port": 0, "poll_wait_seconds": 0.1, **kwargs}
    server = model_server.ModelServer([config.ModelConfig(*model) for model in models], **kwargs)
    with server:
        yield server


def free_port():
    """A loopback port free right now (for a server started as a subprocess)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
