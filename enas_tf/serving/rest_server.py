"""TF Serving's REST API on Python's ThreadingHTTPServer.

    GET  /v1/models/<name>[/versions/<v>]            model status
    GET  /v1/models/<name>[/versions/<v>]/metadata   signature defs
    POST /v1/models/<name>[/versions/<v>]:predict    row or columnar JSON

Every failure is answered with TF Serving's status and ``{"error": "..."}``;
a request body over ``max_request_bytes`` is refused before it is read.
"""

import http.server
import json
import re
import urllib.parse

import grpc
from absl import logging

from enas_tf.serving import errors
from enas_tf.serving import responses
from enas_tf.serving import rest_json

_MODEL = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
_GET = re.compile(_MODEL + r"(?P<metadata>/metadata)?", re.IGNORECASE)
_POST = re.compile(_MODEL + r":(?P<method>predict|classify|regress)", re.IGNORECASE)
_ALLOWED = ("GET /v1/models/<name>[/versions/<v>][/metadata] or "
            "POST /v1/models/<name>[/versions/<v>]:predict")


class RestServer(http.server.ThreadingHTTPServer):
    """Answers the REST API from a ModelRepository, one thread per connection."""

    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 resets bursts of new connections.

    def __init__(self, address, repository, max_request_bytes):
        self.repository = repository
        self.max_request_bytes = max_request_bytes
        super().__init__(address, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # Keep-alive: clients reuse connections.
    # Headers and body go out as two writes; with Nagle on, a small body waits
    # for the client's delayed ACK of the headers (40 ms a request).
    disable_nagle_algorithm = True
    server_version = "enas_tf-serve_child"

    def do_GET(self):  # pylint: disable=invalid-name
        self._answer(self._get)

    def do_POST(self):  # pylint: disable=invalid-name
        self._answer(self._post)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        logging.debug("%s " + format, self.address_string(), *args)

    def _answer(self, route):
        try:
            status, answer = 200, route(urllib.parse.urlsplit(self.path).path)
        except errors.ServingError as e:
            status, answer = e.http_status, json.dumps({"error": e.message}).encode("utf-8")
        except Exception as e:  # pylint: disable=broad-except
            logging.exception("REST %s %s failed", self.command, self.path)
            status, answer = 500, json.dumps({"error": f"internal error: {e}"}).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)

    def _get(self, path):
        match = _GET.fullmatch(path)
        if not match:
            raise _malformed(self.command, path)
        name, version = _name_and_version(match)
        repository = self.server.repository
        if match["metadata"]:
            return responses.to_bytes(responses.metadata_json(
                responses.model_metadata(repository, name, version)))
        return responses.to_bytes(responses.status_json(
            responses.model_status(repository, name, version)))

    def _post(self, path):
        body = self._body()  # Read first, so the connection stays in step.
        match = _POST.fullmatch(path)
        if not match:
            raise _malformed(self.command, path)
        if match["method"].lower() != "predict":
            raise errors.ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                      f":{match['method']} is not served; use :predict")
        name, version = _name_and_version(match)
        servable = self.server.repository.servable(name, version)
        doc = rest_json.parse_body(body)
        signature_name = doc.get("signature_name", "")
        fmt, inputs = rest_json.decode_inputs(doc, servable.signature(signature_name).inputs,
                                              rest_json.may_hold_bools(body))
        return rest_json.encode_outputs(servable.predict(signature_name, inputs), fmt)

    def _body(self):
        """The request body, refused unannounced or over the size limit."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise errors.ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                      "chunked request bodies are not supported; send "
                                      "Content-Length", http_status=411)
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise errors.ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                      "a POST needs a Content-Length header", http_status=411)
        limit = self.server.max_request_bytes
        if int(length) > limit:
            self.close_connection = True  # The unread body must not be parsed as a request.
            raise errors.ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request body of {int(length)} bytes is over the limit of {limit} bytes "
                "(--max_request_bytes)", http_status=413)
        return self.rfile.read(int(length))


def _name_and_version(match):
    version = match["version"]
    return urllib.parse.unquote(match["name"]), None if version is None else int(version)


def _malformed(method, path):
    return errors.invalid(f"Malformed request: {method} {path}; allowed: {_ALLOWED}")
