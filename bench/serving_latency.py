"""Latency and throughput of bin/serve_child over REST and gRPC, one exported child.

Starts bin/serve_child as its own process on free loopback ports (as a user
runs it, so client and server do not share a GIL), builds a batch-1 request
from the served signature (unknown sizes: batch 1, others --unknown_dim;
integer inputs drawn below --int_high, e.g. token ids < vocabulary size),
then times, after warm-up: --requests sequential calls per API (median and
p99 latency, one kept-alive connection) and --seconds of --concurrency
client threads (requests per second).

    python bench/serving_latency.py --model_base_path=runs/ptb_final_quick/export/enas_ptb \\
        --json_out=serving_latency.json
"""

import concurrent.futures
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

import grpc
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

import harness
from enas_tf.serving import repository
from enas_tf.serving import servable

flags.DEFINE_string("model_base_path", None, "Export directory of one model "
                    "(<export_dir>/<model_name>, holding version subdirectories).")
flags.DEFINE_string("model_name", "child", "Name to serve it under.")
flags.DEFINE_string("signature_name", "serving_default", "Signature to call.")
flags.DEFINE_integer("unknown_dim", 35, "Size of unknown non-batch dimensions "
                     "(PTB: time steps).")
flags.DEFINE_integer("int_high", 10, "Integer inputs are drawn from [0, int_high).")
flags.DEFINE_integer("requests", 300, "Sequential timed requests per API.")
flags.DEFINE_integer("warmup", 30, "Untimed requests per API first.")
flags.DEFINE_integer("concurrency", 8, "Client threads of the throughput run.")
flags.DEFINE_float("seconds", 5.0, "Length of each throughput run.")
flags.mark_flag_as_required("model_base_path")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def example_inputs(signature):
    """A batch-1 input per signature input, random but valid."""
    rng = np.random.default_rng(0)
    inputs = {}
    for name, info in signature.inputs.items():
        dims = [d.size for d in info.tensor_shape.dim]
        shape = [1] + [FLAGS.unknown_dim if d < 0 else d for d in dims[1:]]
        dtype = tf.as_dtype(info.dtype)
        if dtype.is_integer:
            inputs[name] = rng.integers(0, FLAGS.int_high, shape).astype(dtype.as_numpy_dtype)
        else:
            inputs[name] = rng.random(shape).astype(dtype.as_numpy_dtype)
    return inputs


class RestClient:
    """POSTs one prepared :predict body over a kept-alive connection."""

    def __init__(self, port, inputs):
        self._body = json.dumps({"signature_name": FLAGS.signature_name, "instances": [
            {name: value[0].tolist() for name, value in inputs.items()}]})
        self._path = f"/v1/models/{FLAGS.model_name}:predict"
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def __call__(self):
        self._connection.request("POST", self._path, body=self._body)
        response = self._connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(body[:300])
        return len(body)


class GrpcClient:
    """Sends one prepared PredictRequest over a shared channel."""

    def __init__(self, channel, inputs):
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        self._request = predict_pb2.PredictRequest()
        self._request.model_spec.name = FLAGS.model_name
        self._request.model_spec.signature_name = FLAGS.signature_name
        for name, value in inputs.items():
            self._request.inputs[name].CopyFrom(tf.make_tensor_proto(value))

    def __call__(self):
        return self._stub.Predict(self._request, timeout=60).ByteSize()


def latency_ms(call):
    times = [s * 1e3 for s in harness.timed(call, FLAGS.requests, warmup=FLAGS.warmup)]
    return {"median_ms": statistics.median(times), "min_ms": min(times),
            "max_ms": max(times),
            "p99_ms": float(np.percentile(times, 99)), "requests": len(times)}


def throughput(make_client):
    """Requests per second of --concurrency threads, each with its own client."""
    clients = [make_client() for _ in range(FLAGS.concurrency)]
    deadline = time.perf_counter() + FLAGS.seconds

    def loop(client):
        count = 0
        while time.perf_counter() < deadline:
            client()
            count += 1
        return count

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(FLAGS.concurrency) as pool:
        total = sum(pool.map(loop, clients))
    return total / (time.perf_counter() - start)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv):
    del argv
    version = max(repository.version_dirs(FLAGS.model_base_path))
    signature = servable.read_signature_defs(
        os.path.join(FLAGS.model_base_path, str(version)))[FLAGS.signature_name]
    inputs = example_inputs(signature)
    grpc_port, rest_port = free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "bin", "serve_child"), f"--port={grpc_port}",
         f"--rest_api_port={rest_port}", f"--model_name={FLAGS.model_name}",
         f"--model_base_path={os.path.abspath(FLAGS.model_base_path)}"],
        stderr=subprocess.DEVNULL)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=120)
            apis = {"rest": lambda: RestClient(rest_port, inputs),
                    "grpc": lambda: GrpcClient(channel, inputs)}
            results = {}
            for api, make_client in apis.items():
                results[api] = latency_ms(make_client())
                results[api]["requests_per_second"] = throughput(make_client)
                results[api]["answer_bytes"] = make_client()()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    report = {"model_base_path": FLAGS.model_base_path, "version": version,
              "signature": FLAGS.signature_name,
              "input_shapes": {name: list(value.shape) for name, value in inputs.items()},
              "concurrency": FLAGS.concurrency, "results": results}
    harness.print_table(
        [("api", 6, ""), ("median ms", 11, ".2f"), ("p99 ms", 10, ".2f"),
         ("req/s", 10, ".1f"), ("answer B", 10, "d")],
        [(api, r["median_ms"], r["p99_ms"], r["requests_per_second"], r["answer_bytes"])
         for api, r in results.items()])
    harness.finish(report)


if __name__ == "__main__":
    app.run(main)
