"""One error type for both APIs: a gRPC status code and a one-line message.

REST answers with the HTTP status TF Serving maps that code to, so a client
sees the same failure whichever API it uses.
"""

import grpc

# TF Serving's mapping from status codes to HTTP (model_servers/http_server).
_HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
# TensorFlow's error codes are gRPC's numbering.
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

# Lines of a TF runtime error that locate it rather than say what it is.
_NOISE_PREFIXES = ("Graph execution error", "Detected at node", "<stack traces",
                   "[[", "File \"", "Node:")


class ServingError(Exception):
    """A request failure: ``code`` for gRPC, ``http_status`` for REST."""

    def __init__(self, code, message, http_status=None):
        super().__init__(message)
        self.code = code
        self.message = " ".join(message.split())  # Always one line.
        self.http_status = http_status or _HTTP_STATUS.get(code, 500)


def invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message):
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def from_tf_error(error):
    """A TF runtime error (e.g. a failed assert in the model) as a ServingError."""
    code = _BY_NUMBER.get(error.error_code, grpc.StatusCode.UNKNOWN)
    return ServingError(code, tf_error_line(error.message))


def tf_error_line(message):
    """The line of a TF error message that says what went wrong."""
    lines = [line.strip() for line in message.splitlines()]
    useful = [line for line in lines if line and not line.startswith(_NOISE_PREFIXES)]
    line = (useful or lines or [""])[0]
    op_suffix = line.rfind(" [Op:")
    return line[:op_suffix] if op_suffix > 0 else line
