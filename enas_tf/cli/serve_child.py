"""bin/serve_child: serve exported children over TF Serving's REST and gRPC APIs.

Takes tensorflow_model_server's own flags, so the same command line (and
the same clients) work with either server:

    bin/serve_child --port=8500 --rest_api_port=8501 --model_name=enas_ptb \\
        --model_base_path=$PWD/runs/ptb_final_quick/export/enas_ptb
    bin/serve_child --model_config_file=models.config
"""

import signal
import sys
import threading

from absl import app
from absl import flags
from absl import logging

from enas_tf.serving import config
from enas_tf.serving import model_server

FLAGS = flags.FLAGS

flags.DEFINE_integer("port", 8500, "Port of the gRPC API (0: any free port).",
                     lower_bound=0, upper_bound=65535)
flags.DEFINE_integer("rest_api_port", 8501, "Port of the REST API; 0 disables it.",
                     lower_bound=0, upper_bound=65535)
flags.DEFINE_string("grpc_host", "127.0.0.1", "Address the gRPC API listens on.")
flags.DEFINE_string("rest_api_host", "127.0.0.1", "Address the REST API listens on.")
flags.DEFINE_string("model_name", "default", "Name of the model served from "
                    "--model_base_path (the {name} of /v1/models/{name}).")
flags.DEFINE_string("model_base_path", None, "Directory of the model's integer version "
                    "subdirectories; the newest is served.")
flags.DEFINE_string("model_config_file", None, "Text-format ModelServerConfig listing "
                    "several models; overrides --model_name and --model_base_path.")
flags.DEFINE_float("file_system_poll_wait_seconds", 1.0, "Seconds between looks for new "
                   "versions; 0 loads once at startup.", lower_bound=0.0)
flags.DEFINE_integer("max_request_bytes", model_server.DEFAULT_MAX_REQUEST_BYTES,
                     "Largest request body (REST) or message (gRPC) accepted.",
                     lower_bound=1)


def serve_until_signal():
    """Starts the server, then blocks until SIGINT or SIGTERM."""
    if FLAGS.model_config_file and FLAGS.model_base_path:
        logging.warning("--model_config_file is given: --model_name and "
                        "--model_base_path are ignored")
    models = config.from_flags(FLAGS.model_name, FLAGS.model_base_path,
                               FLAGS.model_config_file)
    server = model_server.ModelServer(
        models, grpc_port=FLAGS.port, rest_port=FLAGS.rest_api_port or None,
        grpc_host=FLAGS.grpc_host, rest_host=FLAGS.rest_api_host,
        poll_wait_seconds=FLAGS.file_system_poll_wait_seconds,
        max_request_bytes=FLAGS.max_request_bytes)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    try:
        stopping.wait()
    finally:
        server.stop()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        serve_until_signal()
    except (config.ConfigError, OSError) as e:  # Bad flags, a busy port: one line.
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
