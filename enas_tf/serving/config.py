"""Which models to serve: ``--model_name``/``--model_base_path`` or a config file.

The config file is TF Serving's own text-format ``ModelServerConfig``, parsed
with the official proto, so one file works for both servers. Only what this
server does is accepted: the "tensorflow" platform and the default "latest"
version policy; anything else is refused by name instead of being ignored.
"""

import collections
import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

ModelConfig = collections.namedtuple("ModelConfig", ["name", "base_path"])


class ConfigError(ValueError):
    """The models to serve are not given, or not in a form this server serves."""


def from_flags(model_name, model_base_path, model_config_file):
    """The models to serve; the config file wins, as in TF Serving."""
    if model_config_file:
        return from_config_file(model_config_file)
    if not model_base_path:
        raise ConfigError("nothing to serve: give --model_base_path (with "
                          "--model_name) or --model_config_file")
    return [_checked(model_name, model_base_path)]


def from_config_file(path):
    """The models of a text-format ModelServerConfig file."""
    try:
        with open(path, encoding="utf-8") as f:
            config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    except (OSError, text_format.ParseError) as e:
        raise ConfigError(f"--model_config_file={path}: {e}") from e
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"--model_config_file={path}: expected a model_config_list "
                          "{ config { name: ... base_path: ... } }")
    models = [_checked_entry(entry) for entry in config.model_config_list.config]
    if not models:
        raise ConfigError(f"--model_config_file={path}: model_config_list is empty")
    names = [model.name for model in models]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"--model_config_file={path}: model names must be unique; "
                          f"repeated: {', '.join(repeated)}")
    return models


def _checked_entry(entry):
    if entry.model_platform not in ("", "tensorflow"):
        raise ConfigError(f"model {entry.name!r}: model_platform must be \"tensorflow\". "
                          f"Received: {entry.model_platform!r}")
    policy = entry.model_version_policy.WhichOneof("policy_choice")
    if policy not in (None, "latest") or entry.model_version_policy.latest.num_versions > 1:
        raise ConfigError(f"model {entry.name!r}: only the default version policy "
                          "(latest, one version) is served")
    if entry.version_labels:
        raise ConfigError(f"model {entry.name!r}: version_labels are not supported; "
                          "address versions by number")
    return _checked(entry.name, entry.base_path)


def _checked(name, base_path):
    if not name or "/" in name or ":" in name:
        raise ConfigError(f"model name must be non-empty without '/' or ':'. Received: {name!r}")
    if not base_path:
        raise ConfigError(f"model {name!r}: base_path is empty")
    return ModelConfig(name, os.path.abspath(base_path))
