"""bin/serve_child's REST API, queried over loopback HTTP as a client would."""

import concurrent.futures
import http.client
import json
import os
import re
import shutil
import time

import numpy as np
import pytest
import tensorflow as tf

from enas_tf.serving import config
from enas_tf.serving import errors
from enas_tf.serving import rest_json
from serving_support import export_child, reference, serving

TOKENS = [[1, 2, 3, 4], [5, 6, 7, 8]]
MAX_REQUEST_BYTES = 64 * 1024


@pytest.fixture(scope="module", name="exports")
def fixture_exports(tmp_path_factory):
    """Two real exports under one base: lm (seed 0) and other (seed 1)."""
    base = str(tmp_path_factory.mktemp("export"))
    return {"lm": export_child(base, "lm", seed=0), "other": export_child(base, "other", seed=1)}


@pytest.fixture(scope="module", name="server")
def fixture_server(exports, tmp_path_factory):
    """Both models from a models.config file, as in the README."""
    path = tmp_path_factory.mktemp("config") / "models.config"
    path.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" }}\n'
        for name, base in exports.items()) + "}\n")
    models = config.from_config_file(str(path))
    with serving(models, grpc_port=None, max_request_bytes=MAX_REQUEST_BYTES) as server:
        yield server


def call(server, method, path, body=None, headers=None):
    """(HTTP status, parsed JSON answer) of one request."""
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def predict(server, body, path="/v1/models/lm:predict"):
    status, answer = call(server, "POST", path, body)
    assert status == 200, answer
    return answer


def expected(exports, name="lm", signature="serving_default", **inputs):
    inputs.setdefault("tokens", np.array(TOKENS, np.int64))
    return reference(os.path.join(exports[name], "1"), signature, **inputs)


def assert_close(got, want):
    np.testing.assert_allclose(np.array(got, np.float32), want, rtol=1e-5, atol=1e-6)


class StatusAndMetadataTest:

    def test_model_status_has_tf_servings_shape(self, server):
        assert call(server, "GET", "/v1/models/lm") == (200, {"model_version_status": [{
            "version": "1", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]})
        assert call(server, "GET", "/v1/models/other/versions/1")[1]["model_version_status"][0][
            "state"] == "AVAILABLE"

    def test_metadata_lists_both_signatures(self, server):
        for path in ("/v1/models/lm/metadata", "/v1/models/lm/versions/1/metadata"):
            status, answer = call(server, "GET", path)
            assert status == 200
            assert answer["model_spec"] == {"name": "lm", "version": "1", "signature_name": ""}
            signatures = answer["metadata"]["signature_def"]["signature_def"]
            assert {"serving_default", "serve_with_state"} <= set(signatures)
            default = signatures["serving_default"]
            assert default["method_name"] == "tensorflow/serving/predict"
            tokens = default["inputs"]["tokens"]
            assert tokens["dtype"] == "DT_INT64"
            assert [d["size"] for d in tokens["tensor_shape"]["dim"]] == ["-1", "-1"]
            assert set(default["outputs"]) == {"log_probs", "final_state"}
            assert set(signatures["serve_with_state"]["inputs"]) == {"tokens", "initial_state"}


class PredictTest:

    def test_row_format_without_names(self, server, exports):
        predictions = predict(server, {"instances": TOKENS})["predictions"]
        want = expected(exports)
        assert len(predictions) == 2 and set(predictions[0]) == {"log_probs", "final_state"}
        for name, value in want.items():
            assert_close([row[name] for row in predictions], value)

    def test_row_format_with_names_and_signature(self, server, exports):
        state = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
        body = {"signature_name": "serve_with_state", "instances": [
            {"tokens": t, "initial_state": s} for t, s in zip(TOKENS, state.tolist())]}
        predictions = predict(server, body)["predictions"]
        want = expected(exports, signature="serve_with_state", initial_state=state)
        for name, value in want.items():
            assert_close([row[name] for row in predictions], value)

    def test_columnar_format_with_and_without_names(self, server, exports):
        want = expected(exports)
        for inputs in (TOKENS, {"tokens": TOKENS}):
            outputs = predict(server, {"inputs": inputs})["outputs"]
            assert set(outputs) == {"log_probs", "final_state"}
            for name, value in want.items():
                assert_close(outputs[name], value)

    def test_columnar_format_of_the_second_signature(self, server, exports):
        state = np.full([2, 8], 0.25, np.float32)
        outputs = predict(server, {"signature_name": "serve_with_state", "inputs": {
            "tokens": TOKENS, "initial_state": state.tolist()}})["outputs"]
        for name, value in expected(exports, signature="serve_with_state",
                                    initial_state=state).items():
            assert_close(outputs[name], value)

    def test_explicit_version_and_second_model(self, server, exports):
        outputs = predict(server, {"inputs": TOKENS}, "/v1/models/other/versions/1:predict")
        assert_close(outputs["outputs"]["log_probs"], expected(exports, "other")["log_probs"])
        assert not np.allclose(outputs["outputs"]["log_probs"], expected(exports)["log_probs"])

    def test_64_parallel_requests_each_get_their_own_answer(self, server, exports):
        batch = np.arange(64 * 5, dtype=np.int64).reshape(64, 5) % 288
        want = expected(exports, tokens=batch)["log_probs"]

        def one(i):
            return predict(server, {"instances": [batch[i].tolist()]})["predictions"][0]

        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
            answers = list(pool.map(one, range(64), timeout=120))
        for i, answer in enumerate(answers):
            assert_close(answer["log_probs"], want[i])


def _oversized():
    return json.dumps({"instances": [[1] * (MAX_REQUEST_BYTES // 2)]})


# (method, path, body, HTTP status, words the one-line error must contain)
BAD_REQUESTS = [
    ("POST", "/v1/models/lm:predict", '{"instances": [[1, 2]', 400, "JSON Parse error"),
    ("POST", "/v1/models/lm:predict", "", 400, "JSON Parse error"),
    ("POST", "/v1/models/lm:predict", "[1, 2]", 400, "Is not object"),
    ("POST", "/v1/models/lm:predict", {"inputs": {"token": TOKENS}}, 400, "Unknown: {token}"),
    ("POST", "/v1/models/lm:predict", {"instances": [{"token": [1]}]}, 400, "keys {tokens}"),
    ("POST", "/v1/models/lm:predict", {"instances": [[1, 2.5]]}, 400,
     "instances[0][1]: JSON Value: 2.5 is not of expected type: int64"),
    ("POST", "/v1/models/lm:predict", {"instances": [[1, 2], [3]]}, 400, "ragged"),
    ("POST", "/v1/models/lm:predict", {"instances": [1, 2]}, 400, "takes [-1,-1]"),
    ("POST", "/v1/models/lm:predict", {"instances": [[1, 2, 100000]]}, 400, "288"),
    ("POST", "/v1/models/lm:predict", {"instances": []}, 400, "No values in 'instances'"),
    ("POST", "/v1/models/lm:predict", {"instances": TOKENS, "inputs": TOKENS}, 400,
     "send exactly one"),
    ("POST", "/v1/models/lm:predict", {"tokens": TOKENS}, 400, "Missing 'inputs' or 'instances'"),
    ("POST", "/v1/models/lm:predict", {"signature_name": "scores", "inputs": TOKENS}, 400,
     "this model serves: serve_with_state, serving_default"),
    ("POST", "/v1/models/lm:predict", {"signature_name": "serve_with_state", "inputs": TOKENS},
     400, "multiple input tensors are required: {initial_state,tokens}"),
    ("POST", "/v1/models/nope:predict", {"inputs": TOKENS}, 404, "this server serves: lm, other"),
    ("POST", "/v1/models/lm/versions/3:predict", {"inputs": TOKENS}, 404, "serves version 1"),
    ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("GET", "/v1/models/lm/versions/3", None, 404, "Could not find version 3 of model lm"),
    ("GET", "/v1/models/lm/versions/3/metadata", None, 404, "Specific(lm, 3)"),
    ("GET", "/v1/models", None, 400, "Malformed request"),
    ("POST", "/v1/models/lm:explain", {}, 400, "allowed: GET /v1/models/<name>"),
    ("POST", "/v1/models/lm:classify", {}, 501, "use :predict"),
    ("POST", "/v1/models/lm:predict", _oversized(), 413, f"limit of {MAX_REQUEST_BYTES} bytes"),
]


class ErrorTest:

    @pytest.mark.parametrize("method, path, body, status, words", BAD_REQUESTS)
    def test_bad_request_gets_tf_serving_error_and_server_keeps_serving(
            self, server, method, path, body, status, words):
        got_status, answer = call(server, method, path, body)
        assert got_status == status, answer
        assert list(answer) == ["error"] and "\n" not in answer["error"]
        assert words in answer["error"]
        assert len(predict(server, {"instances": TOKENS})["predictions"]) == 2

    def test_post_without_content_length_is_refused(self, server):
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
        try:
            connection.putrequest("POST", "/v1/models/lm:predict")
            connection.endheaders()
            response = connection.getresponse()
            assert response.status == 411
            assert "Content-Length" in json.loads(response.read())["error"]
        finally:
            connection.close()


class VersionPickupTest:

    def test_new_export_is_served_without_restart(self, exports, tmp_path):
        base = str(tmp_path)
        shutil.copytree(os.path.join(exports["lm"], "1"), os.path.join(base, "lm", "1"))
        with serving([("lm", os.path.join(base, "lm"))], grpc_port=None) as server:
            before = predict(server, {"inputs": TOKENS})["outputs"]["log_probs"]
            export_child(base, "lm", seed=1)  # Writes <base>/lm/2.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                states = call(server, "GET", "/v1/models/lm")[1]["model_version_status"]
                if states[0]["version"] == "2" and states[0]["state"] == "AVAILABLE":
                    break
                time.sleep(0.1)
            assert [(s["version"], s["state"]) for s in states] == [("2", "AVAILABLE"),
                                                                     ("1", "END")]
            after = predict(server, {"inputs": TOKENS})["outputs"]["log_probs"]
        want = reference(os.path.join(base, "lm", "2"), "serving_default",
                         tokens=np.array(TOKENS, np.int64))["log_probs"]
        assert_close(after, want)
        assert not np.allclose(before, after)


class RestJsonTest:
    """The JSON rules on their own, for dtypes the PTB child does not have."""

    @pytest.mark.parametrize("value, dtype, words", [
        ([300], tf.uint8, "out of range for uint8 (0..255)"),
        ([2 ** 64], tf.int64, "out of range for int64"),
        ([True, 1], tf.float32, "true is not of expected type: float32"),
        ([2 ** 25], tf.float32, "without loss of precision"),
        ([1.0], tf.bool, "not of expected type: bool"),
        ([None], tf.float32, "null is not of expected type"),
        ([[1], [[2]]], tf.int32, "ragged"),
        ([{"b64": "!!"}], tf.string, "Unable to base64 decode"),
    ])
    def test_value_the_dtype_does_not_take_is_named(self, value, dtype, words):
        with pytest.raises(errors.ServingError, match=re.escape(words)):
            rest_json.to_array(value, dtype.as_datatype_enum, "inputs")

    def test_values_the_dtype_takes(self):
        cases = [([[1, 2]], tf.uint8, [[1, 2]]), ([1, 2.5, float("nan")], tf.float32, None),
                 ([[True]], tf.bool, [[True]]), ([], tf.int64, []),
                 (["a", {"b64": "AAE="}], tf.string, [b"a", b"\x00\x01"])]
        for value, dtype, want in cases:
            array = rest_json.to_array(value, dtype.as_datatype_enum, "inputs")
            assert array.dtype == (object if dtype == tf.string else dtype.as_numpy_dtype)
            if want is not None:
                assert array.tolist() == want

    def test_outputs_bytes_as_b64_and_one_output_without_name(self):
        outputs = {"ids_bytes": np.array([b"\x00\x01"], dtype=object)}
        assert json.loads(rest_json.encode_outputs(outputs, rest_json.ROW)) == {
            "predictions": [{"b64": "AAE="}]}
        outputs = {"classes": np.array([3, 1]), "probabilities": np.eye(2, dtype=np.float32)}
        assert json.loads(rest_json.encode_outputs(outputs, rest_json.COLUMNAR)) == {
            "outputs": {"classes": [3, 1], "probabilities": [[1.0, 0.0], [0.0, 1.0]]}}
        with pytest.raises(errors.ServingError, match="inconsistent batch size"):
            rest_json.encode_outputs({"a": np.zeros([2]), "b": np.zeros([3])}, rest_json.ROW)
