"""TensorProto <-> numpy for the gRPC API.

Answers fill the typed value fields (``float_val``, ``int64_val``, ...) the
way TF Serving's Predict does (Tensor::AsProtoField), so clients that read
``response.outputs["x"].float_val`` directly work, as do those using
``tf.make_ndarray``. Requests may use typed fields or ``tensor_content``.
"""

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2

from enas_tf.serving import errors

_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
}
_HALF_BITS = (types_pb2.DT_HALF, types_pb2.DT_BFLOAT16)  # Stored as their uint16 bits.


def to_proto(array):
    """A TensorProto with the array's values in its typed field."""
    dtype = tf.as_dtype(array.dtype).as_datatype_enum
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if dtype in _HALF_BITS:
        proto.half_val.extend(array.view(np.uint16).ravel().tolist())
    else:
        getattr(proto, _FIELD[dtype]).extend(array.ravel().tolist())
    return proto


def to_array(name, proto, expected_dtype):
    """A request's TensorProto as an array, if it has the signature's dtype."""
    if proto.dtype != expected_dtype:
        raise errors.invalid(f"input {name!r} must be {types_pb2.DataType.Name(expected_dtype)}; "
                             f"got {types_pb2.DataType.Name(proto.dtype)}")
    try:
        return tf.make_ndarray(proto)
    except (ValueError, TypeError) as e:
        raise errors.invalid(f"input {name!r}: malformed TensorProto: {e}") from e
