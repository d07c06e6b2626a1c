"""GetModelStatus and GetModelMetadata answers, as protos and as TF Serving's JSON.

Both APIs build the same protos; REST prints them the way TF Serving does
(proto field names, default values included, int64 as strings), so a client
parsing one server's JSON parses the other's.
"""

import json

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2

from enas_tf.serving import errors

SIGNATURE_DEF_FIELD = "signature_def"


def model_status(repository, name, version=None):
    """GetModelStatusResponse: the state of every version (or of one)."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for v, state, message in repository.version_states(name, version):
        entry = response.model_version_status.add(version=v, state=state)
        entry.status.SetInParent()
        if message:
            entry.status.error_code = entry.status.UNKNOWN
            entry.status.error_message = message
    return response


def model_metadata(repository, name, version=None, fields=(SIGNATURE_DEF_FIELD,)):
    """GetModelMetadataResponse with the served version's SignatureDefMap."""
    if not fields:
        raise errors.invalid("GetModelMetadataRequest must specify at least one metadata_field "
                             f"({SIGNATURE_DEF_FIELD})")
    unsupported = [field for field in fields if field != SIGNATURE_DEF_FIELD]
    if unsupported:
        raise errors.invalid(f"Metadata field {unsupported[0]} is not supported; "
                             f"supported: {SIGNATURE_DEF_FIELD}")
    served = repository.servable(name, version)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = name
    response.model_spec.version.value = served.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in served.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
    return response


def status_json(response):
    return _print(response, preserve_names=False)


def metadata_json(response):
    """TF Serving's layout: model_spec beside the unpacked SignatureDefMap."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
    return {"model_spec": _print(response.model_spec),
            "metadata": {SIGNATURE_DEF_FIELD: _print(signature_map)}}


def to_bytes(answer):
    return json.dumps(answer, indent=1).encode("utf-8")


def _print(message, preserve_names=True):
    return json_format.MessageToDict(message, preserving_proto_field_name=preserve_names,
                                     always_print_fields_with_no_presence=True)
