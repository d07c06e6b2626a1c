"""A small model server that speaks TF Serving's REST and gRPC APIs.

Clients written against ``tensorflow_model_server`` work unchanged against
``bin/serve_child`` (and back), which matters where the real server cannot
be installed: same URLs, JSON, protos, status codes and flags.
"""
