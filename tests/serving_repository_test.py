"""Serving without a network: the config, the served versions, one Servable."""

import os
import shutil
import time

import grpc
import numpy as np
import pytest

from enas_tf.serving import config
from enas_tf.serving import errors
from enas_tf.serving import repository as repository_lib
from enas_tf.serving import servable as servable_lib
from serving_support import export_child, reference

State = repository_lib.State
TOKENS = np.array([[1, 2, 3], [4, 5, 6]], np.int64)


@pytest.fixture(scope="module", name="exported")
def fixture_exported(tmp_path_factory):
    """A real export: <base>/lm/1."""
    return export_child(str(tmp_path_factory.mktemp("export")), "lm")


@pytest.fixture(name="base_path")
def fixture_base_path(exported, tmp_path):
    """A fresh base path holding a copy of version 1, for tests that add versions."""
    base = tmp_path / "lm"
    shutil.copytree(os.path.join(exported, "1"), base / "1")
    return str(base)


def _repository(base_path, load=servable_lib.load):
    repository = repository_lib.ModelRepository([config.ModelConfig("lm", base_path)], load)
    repository.poll()
    return repository


def _code(excinfo):
    return excinfo.value.code


class ConfigTest:

    def test_flags_name_one_model(self, tmp_path):
        models = config.from_flags("lm", str(tmp_path), None)
        assert models == [config.ModelConfig("lm", str(tmp_path))]

    def test_config_file_names_every_model(self, tmp_path):
        path = tmp_path / "models.config"
        path.write_text('model_config_list { config { name: "a" base_path: "/x/a" '
                        'model_platform: "tensorflow" } config { name: "b" base_path: "/x/b" } }')
        assert config.from_flags("ignored", "/ignored", str(path)) == [
            config.ModelConfig("a", "/x/a"), config.ModelConfig("b", "/x/b")]

    @pytest.mark.parametrize("text, complaint", [
        ('model_config_list { config { name: "a" base_path: "/x" model_platform: "onnx" } }',
         "model_platform"),
        ('model_config_list { config { name: "a" base_path: "/x" '
         'model_version_policy { all {} } } }', "version policy"),
        ('model_config_list { config { name: "a" base_path: "/x" } '
         'config { name: "a" base_path: "/y" } }', "repeated: a"),
        ('model_config_list { config { name: "a" } }', "base_path is empty"),
        ('model_config_list { config { nme: "a" } }', "nme"),
        ("", "model_config_list"),
    ])
    def test_bad_config_file_is_named(self, tmp_path, text, complaint):
        path = tmp_path / "models.config"
        path.write_text(text)
        with pytest.raises(config.ConfigError, match=complaint):
            config.from_config_file(str(path))

    def test_nothing_to_serve_is_refused(self):
        with pytest.raises(config.ConfigError, match="--model_base_path"):
            config.from_flags("default", None, None)


class RepositoryTest:

    def test_serves_the_newest_version(self, base_path):
        shutil.copytree(os.path.join(base_path, "1"), os.path.join(base_path, "7"))
        repository = _repository(base_path)
        assert repository.servable("lm").version == 7
        assert repository.version_states("lm") == [(7, State.AVAILABLE, "")]

    def test_new_version_replaces_the_served_one_and_held_one_still_answers(self, base_path):
        repository = _repository(base_path)
        held = repository.servable("lm")
        shutil.copytree(os.path.join(base_path, "1"), os.path.join(base_path, "2"))
        repository.poll()
        assert repository.servable("lm").version == 2
        assert [(v, s) for v, s, _ in repository.version_states("lm")] == [
            (2, State.AVAILABLE), (1, State.END)]
        expected = reference(os.path.join(base_path, "1"), "serving_default", tokens=TOKENS)
        np.testing.assert_allclose(held.predict("", {"tokens": TOKENS})["log_probs"],
                                   expected["log_probs"], rtol=1e-6)

    def test_poll_thread_picks_up_a_version(self, base_path):
        repository = _repository(base_path)
        repository.start_polling(0.05)
        try:
            shutil.copytree(os.path.join(base_path, "1"), os.path.join(base_path, "3"))
            deadline = time.monotonic() + 20
            while repository.servable("lm").version != 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert repository.servable("lm").version == 3
        finally:
            repository.stop()

    def test_broken_version_is_retried_then_given_up_while_the_old_one_serves(self, base_path):
        attempts = []

        def counting_load(path, version):
            attempts.append(version)
            return servable_lib.load(path, version)

        repository = _repository(base_path, counting_load)
        os.makedirs(os.path.join(base_path, "5"))
        with open(os.path.join(base_path, "5", "saved_model.pb"), "wb") as f:
            f.write(b"not a SavedModel")
        for _ in range(repository_lib.MAX_LOAD_ATTEMPTS + 2):
            repository.poll()
        assert attempts.count(5) == repository_lib.MAX_LOAD_ATTEMPTS
        assert repository.servable("lm").version == 1
        version, state, message = repository.version_states("lm", 5)[0]
        assert (version, state) == (5, State.END) and message

    def test_removed_version_falls_back_to_the_previous(self, base_path):
        shutil.copytree(os.path.join(base_path, "1"), os.path.join(base_path, "2"))
        repository = _repository(base_path)
        shutil.rmtree(os.path.join(base_path, "2"))
        repository.poll()
        assert repository.servable("lm").version == 1

    def test_empty_base_path_serves_once_a_version_appears(self, base_path, tmp_path):
        empty = str(tmp_path / "later")
        repository = _repository(empty)
        with pytest.raises(errors.ServingError, match="no version of lm has loaded") as excinfo:
            repository.servable("lm")
        assert _code(excinfo) == grpc.StatusCode.NOT_FOUND
        shutil.copytree(os.path.join(base_path, "1"), os.path.join(empty, "4"))
        repository.poll()
        assert repository.servable("lm").version == 4

    @pytest.mark.parametrize("name, version, message", [
        ("nope", None, r"Latest\(nope\); this server serves: lm"),
        ("lm", 9, r"Specific\(lm, 9\); lm serves version 1"),
    ])
    def test_unknown_model_or_version_is_not_found(self, base_path, name, version, message):
        repository = _repository(base_path)
        with pytest.raises(errors.ServingError, match=message) as excinfo:
            repository.servable(name, version)
        assert _code(excinfo) == grpc.StatusCode.NOT_FOUND
        with pytest.raises(errors.ServingError) as excinfo:
            repository.version_states(name, version)
        assert _code(excinfo) == grpc.StatusCode.NOT_FOUND


class ServableTest:

    @pytest.fixture(scope="class", name="child")
    def fixture_child(self, exported):
        return servable_lib.load(exported, 1)

    def test_predict_equals_the_saved_model(self, child, exported):
        initial_state = np.full([2, 8], 0.5, np.float32)
        got = child.predict("serve_with_state", {"tokens": TOKENS, "initial_state": initial_state})
        expected = reference(os.path.join(exported, "1"), "serve_with_state", tokens=TOKENS,
                             initial_state=initial_state)
        assert set(got) == {"log_probs", "final_state"}
        for name, value in expected.items():
            np.testing.assert_allclose(got[name], value, rtol=1e-6)

    def test_output_filter_picks_outputs(self, child):
        assert list(child.predict("", {"tokens": TOKENS}, ["final_state"])) == ["final_state"]
        with pytest.raises(errors.ServingError, match=r"in the set \{final_state,log_probs\}"):
            child.predict("", {"tokens": TOKENS}, ["logits"])

    @pytest.mark.parametrize("signature, inputs, message", [
        ("", {"token": TOKENS}, r"Sent extra: \{token\}. Missing but required: \{tokens\}"),
        ("", {"tokens": TOKENS.astype(np.int32)}, "'tokens' must be int64; got int32"),
        ("", {"tokens": TOKENS[0]}, r"shape \[3\]; the signature takes \[-1,-1\]"),
        ("serve_with_state", {"tokens": TOKENS, "initial_state": np.zeros([2, 3], np.float32)},
         "Matrix size-incompatible"),
        ("", {"tokens": TOKENS + 1000}, "288"),
        # The model's assert or its embedding lookup, whichever runs first.
        ("", {"tokens": -TOKENS}, r"must be >= 0|= -\d is not in \[0, 288\)"),
        ("scores", {"tokens": TOKENS}, "this model serves: serve_with_state, serving_default"),
    ])
    def test_bad_request_is_invalid_argument_on_one_line(self, child, signature, inputs, message):
        with pytest.raises(errors.ServingError, match=message) as excinfo:
            child.predict(signature, inputs)
        assert _code(excinfo) == grpc.StatusCode.INVALID_ARGUMENT
        assert "\n" not in excinfo.value.message

    def test_tf_error_line_drops_the_location(self):
        message = ("Graph execution error:\n\nDetected at node x defined at (most recent call "
                   "last):\n<stack traces unavailable>\nassertion failed: [ids < 10]\n\t "
                   "[[{{node x}}]] [Op:__inference_f_1]")
        assert errors.tf_error_line(message) == "assertion failed: [ids < 10]"
