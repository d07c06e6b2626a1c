"""The whole server: a repository of models, its poll thread, REST and gRPC.

Used by bin/serve_child and, in-process, by tests and benchmarks. Models
are loaded before the ports open, as tensorflow_model_server does.
"""

import threading

from absl import logging

from enas_tf.serving import grpc_server
from enas_tf.serving import repository as repository_lib
from enas_tf.serving import rest_server

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024


class ModelServer:
    """Serves ``models`` (ModelConfig list); ports 0 pick free ones, None disables."""

    def __init__(self, models, grpc_port=8500, rest_port=8501, grpc_host="127.0.0.1",
                 rest_host="127.0.0.1", poll_wait_seconds=1.0,
                 max_request_bytes=DEFAULT_MAX_REQUEST_BYTES):
        self.repository = repository_lib.ModelRepository(models)
        self._grpc_address = None if grpc_port is None else f"{grpc_host}:{grpc_port}"
        self._rest_address = None if rest_port is None else (rest_host, rest_port)
        self._poll_wait_seconds = poll_wait_seconds
        self._max_request_bytes = max_request_bytes
        self._grpc = self._rest = None
        self.grpc_port = self.rest_port = None

    def start(self):
        self.repository.poll()
        if self._poll_wait_seconds > 0:
            self.repository.start_polling(self._poll_wait_seconds)
        if self._grpc_address:
            self._grpc, self.grpc_port = grpc_server.start(
                self.repository, self._grpc_address, self._max_request_bytes)
            logging.info("Running gRPC ModelServer at %s:%d",
                         self._grpc_address.rsplit(":", 1)[0], self.grpc_port)
        if self._rest_address:
            self._rest = rest_server.RestServer(self._rest_address, self.repository,
                                                self._max_request_bytes)
            self.rest_port = self._rest.server_address[1]
            threading.Thread(target=self._rest.serve_forever, name="rest", daemon=True).start()
            logging.info("Exporting HTTP/REST API at %s:%d", self._rest_address[0], self.rest_port)
        return self

    def stop(self):
        if self._rest:
            self._rest.shutdown()
            self._rest.server_close()
        if self._grpc:
            self._grpc.stop(grace=1).wait()
        self.repository.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
