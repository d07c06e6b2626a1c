"""bin/serve_child's gRPC API through TF Serving's official stubs, and the binary."""

import concurrent.futures
import http.client
import json
import os
import signal
import subprocess
import sys

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from enas_tf.serving import servable
from ptb_cli import ROOT
from serving_support import export_child, free_port, reference, serving

TOKENS = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.int64)
STATE = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
MAX_REQUEST_BYTES = 64 * 1024


@pytest.fixture(scope="module", name="model_path")
def fixture_model_path(tmp_path_factory):
    return export_child(str(tmp_path_factory.mktemp("export")), "lm")


@pytest.fixture(scope="module", name="channel")
def fixture_channel(model_path):
    with serving([("lm", model_path)], rest_port=None,
                 max_request_bytes=MAX_REQUEST_BYTES) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            yield channel


@pytest.fixture(name="stub")
def fixture_stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def predict_request(name="lm", signature="", version=None, output_filter=(), **inputs):
    request = predict_pb2.PredictRequest(output_filter=list(output_filter))
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for key, value in (inputs or {"tokens": TOKENS}).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def outputs(response):
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def assert_outputs_equal(got, want):
    assert set(got) == set(want)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-6)


class PredictTest:

    def test_default_signature_equals_the_saved_model(self, stub, model_path):
        response = stub.Predict(predict_request(), timeout=30)
        assert (response.model_spec.name, response.model_spec.version.value,
                response.model_spec.signature_name) == ("lm", 1, "serving_default")
        assert_outputs_equal(outputs(response), reference(
            os.path.join(model_path, "1"), "serving_default", tokens=TOKENS))

    def test_second_signature_with_state(self, stub, model_path):
        response = stub.Predict(predict_request(signature="serve_with_state", tokens=TOKENS,
                                                initial_state=STATE), timeout=30)
        assert_outputs_equal(outputs(response), reference(
            os.path.join(model_path, "1"), "serve_with_state", tokens=TOKENS, initial_state=STATE))

    def test_outputs_fill_typed_fields_like_tf_serving(self, stub):
        response = stub.Predict(predict_request(output_filter=["final_state"], version=1),
                                timeout=30)
        state = response.outputs["final_state"]
        assert list(response.outputs) == ["final_state"]
        assert [d.size for d in state.tensor_shape.dim] == [2, 8]
        assert len(state.float_val) == 16 and not state.tensor_content

    def test_64_parallel_predicts_each_get_their_own_answer(self, stub, model_path):
        batch = np.arange(64 * 5, dtype=np.int64).reshape(64, 5) % 288
        want = reference(os.path.join(model_path, "1"), "serving_default", tokens=batch)

        def one(i):
            return outputs(stub.Predict(predict_request(tokens=batch[i:i + 1]), timeout=60))

        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
            answers = list(pool.map(one, range(64), timeout=120))
        for i, answer in enumerate(answers):
            np.testing.assert_allclose(answer["log_probs"][0], want["log_probs"][i], rtol=1e-5)


class MetadataAndStatusTest:

    def test_metadata_is_the_saved_models_signature_def_map(self, stub, model_path):
        response = stub.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec={"name": "lm"}, metadata_field=["signature_def"]), timeout=30)
        assert (response.model_spec.name, response.model_spec.version.value) == ("lm", 1)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        assert response.metadata["signature_def"].Unpack(signature_map)
        assert dict(signature_map.signature_def) == dict(
            servable.read_signature_defs(os.path.join(model_path, "1")))

    def test_model_status(self, channel):
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "lm"}), timeout=30)
        [version] = status.model_version_status
        assert (version.version, version.state, version.status.error_code) == (
            1, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0)


def _metadata(name="lm", fields=("signature_def",)):
    return get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": name},
                                                          metadata_field=list(fields))


# (method, request, status code, words the message must contain)
BAD_CALLS = [
    ("Predict", predict_request(name="nope"), grpc.StatusCode.NOT_FOUND, "serves: lm"),
    ("Predict", predict_request(version=4), grpc.StatusCode.NOT_FOUND, "Specific(lm, 4)"),
    ("Predict", predict_request(signature="scores"), grpc.StatusCode.FAILED_PRECONDITION,
     "serves: serve_with_state, serving_default"),
    ("Predict", predict_request(token=TOKENS), grpc.StatusCode.INVALID_ARGUMENT,
     "Sent extra: {token}. Missing but required: {tokens}"),
    ("Predict", predict_request(tokens=TOKENS.astype(np.float32)),
     grpc.StatusCode.INVALID_ARGUMENT, "'tokens' must be DT_INT64; got DT_FLOAT"),
    ("Predict", predict_request(tokens=TOKENS[0]), grpc.StatusCode.INVALID_ARGUMENT,
     "takes [-1,-1]"),
    ("Predict", predict_request(tokens=TOKENS * 1000), grpc.StatusCode.INVALID_ARGUMENT, "288"),
    ("Predict", predict_request(output_filter=["logits"]), grpc.StatusCode.INVALID_ARGUMENT,
     "{final_state,log_probs}"),
    ("Predict", predict_request(tokens=np.zeros([1, MAX_REQUEST_BYTES // 8], np.int64)),
     grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max"),
    ("GetModelMetadata", _metadata("nope"), grpc.StatusCode.NOT_FOUND, "serves: lm"),
    ("GetModelMetadata", _metadata(fields=()), grpc.StatusCode.INVALID_ARGUMENT,
     "at least one metadata_field"),
    ("GetModelMetadata", _metadata(fields=["graph"]), grpc.StatusCode.INVALID_ARGUMENT,
     "Metadata field graph is not supported"),
    ("Classify", classification_pb2.ClassificationRequest(), grpc.StatusCode.UNIMPLEMENTED, ""),
]


class ErrorTest:

    @pytest.mark.parametrize("method, request_proto, code, words", BAD_CALLS)
    def test_bad_call_gets_tf_serving_code_and_server_keeps_serving(
            self, stub, method, request_proto, code, words):
        with pytest.raises(grpc.RpcError) as excinfo:
            getattr(stub, method)(request_proto, timeout=30)
        assert excinfo.value.code() == code
        assert words in excinfo.value.details() and "\n" not in excinfo.value.details()
        assert stub.Predict(predict_request(), timeout=30).outputs["log_probs"].float_val

    def test_status_of_unknown_version_is_not_found(self, channel):
        with pytest.raises(grpc.RpcError) as excinfo:
            model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                get_model_status_pb2.GetModelStatusRequest(
                    model_spec={"name": "lm", "version": {"value": 2}}), timeout=30)
        assert excinfo.value.code() == grpc.StatusCode.NOT_FOUND
        assert "Could not find version 2 of model lm" in excinfo.value.details()


class BinaryTest:
    """bin/serve_child itself, with tensorflow_model_server's flags."""

    def test_serves_both_apis_and_stops_on_sigterm(self, model_path):
        grpc_port, rest_port = free_port(), free_port()
        process = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "bin", "serve_child"), f"--port={grpc_port}",
             f"--rest_api_port={rest_port}", "--model_name=enas_ptb",
             f"--model_base_path={model_path}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                grpc.channel_ready_future(channel).result(timeout=60)
                response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                    predict_request(name="enas_ptb"), timeout=30)
            assert response.model_spec.version.value == 1
            connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=30)
            connection.request("GET", "/v1/models/enas_ptb")
            answer = json.loads(connection.getresponse().read())
            connection.close()
            assert answer["model_version_status"][0]["state"] == "AVAILABLE"
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr[-2000:]
        assert f"Exporting HTTP/REST API at 127.0.0.1:{rest_port}" in stderr

    def test_nothing_to_serve_is_a_one_line_error(self):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "serve_child"),
                                 "--port=0", "--rest_api_port=0"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines()[-1] == (
            "error: nothing to serve: give --model_base_path (with --model_name) "
            "or --model_config_file")
