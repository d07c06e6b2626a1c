"""TF Serving's REST JSON for :predict, both ways.

Requests come in the row format (``"instances"``: one entry per example,
batched here) or the columnar format (``"inputs"``: whole tensors); the
answer uses the same format (``"predictions"`` / ``"outputs"``). A signature
with one input may be fed without names; one output is answered without
names. Values are checked against the signature's dtype the way TF Serving
checks them: an int64 input takes only JSON integers, a float input any
number that fits without loss, a string input strings or ``{"b64": ...}``.

Decoding goes through numpy in bulk (a CIFAR batch has ~10^5 numbers); only
when that finds a problem is the JSON walked to name the first bad value.
"""

import base64
import binascii
import json

import numpy as np
import tensorflow as tf

from enas_tf.serving import errors

ROW, COLUMNAR = "row", "columnar"
_SHOWN_CHARS = 80  # Of a JSON value quoted in an error message.
_MAX_RANK = 32  # numpy's limit is 64; no model here takes more than 4.


def parse_body(body):
    """The request's JSON object."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise errors.invalid(f"JSON Parse error: {e}") from e
    except RecursionError as e:
        raise errors.invalid("JSON Parse error: nested too deeply") from e
    if not isinstance(doc, dict):
        raise errors.invalid(f"JSON Value: {_shown(doc)} Is not object; a predict request "
                             'is {"instances": [...]} or {"inputs": ...}')
    signature_name = doc.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise errors.invalid("'signature_name' key must be a string value")
    return doc


def decode_inputs(doc, input_infos, may_have_bools=True):
    """(format, {input name: array}) of a parsed request, for a signature's inputs."""
    if "instances" in doc and "inputs" in doc:
        raise errors.invalid("the request has both 'instances' (row format) and 'inputs' "
                             "(columnar format); send exactly one")

    def convert(value, name, where):
        return to_array(value, input_infos[name].dtype, where, may_have_bools)

    if "instances" in doc:
        return ROW, _decode_instances(doc["instances"], input_infos, convert)
    if "inputs" in doc:
        return COLUMNAR, _decode_columns(doc["inputs"], input_infos, convert)
    raise errors.invalid("Missing 'inputs' or 'instances' key")


def encode_outputs(outputs, fmt):
    """The JSON answer (bytes) for {output name: array} in the request's format."""
    values = {name: _json_values(name, array) for name, array in outputs.items()}
    if fmt == COLUMNAR:
        answer = {"outputs": _unnamed_if_single(values)}
    else:
        answer = {"predictions": _rows(outputs, values)}
    return json.dumps(answer, separators=(",", ":")).encode("utf-8")


def _decode_instances(instances, input_infos, convert):
    if not isinstance(instances, list):
        raise errors.invalid("'instances' must be a list, one entry per example")
    if not instances:
        raise errors.invalid("No values in 'instances' array")
    if not _is_named(instances[0]):
        name = _single_input(input_infos, "instances is a plain list")
        if any(_is_named(item) for item in instances):
            raise errors.invalid("'instances' mixes objects and plain values; use one form")
        return {name: convert(instances, name, "instances")}
    columns = {}
    for i, item in enumerate(instances):
        if not _is_named(item) or set(item) != set(input_infos):
            raise errors.invalid(
                f"instances[{i}] must be an object with exactly the keys "
                f"{{{','.join(sorted(input_infos))}}}; got {_shown(item)}")
        for name, value in item.items():
            columns.setdefault(name, []).append(value)
    return {name: convert(values, name, f"instances[*][{name!r}]")
            for name, values in columns.items()}


def _decode_columns(inputs, input_infos, convert):
    if not _is_named(inputs):
        name = _single_input(input_infos, "inputs is a plain value/list")
        return {name: convert(inputs, name, "inputs")}
    missing = sorted(set(input_infos) - set(inputs))
    extra = sorted(set(inputs) - set(input_infos))
    if missing or extra:
        raise errors.invalid(
            f"'inputs' object must have exactly the keys {{{','.join(sorted(input_infos))}}}. "
            f"Missing: {{{','.join(missing)}}}. Unknown: {{{','.join(extra)}}}.")
    return {name: convert(value, name, f"inputs[{name!r}]") for name, value in inputs.items()}


def _single_input(input_infos, what):
    if len(input_infos) != 1:
        raise errors.invalid(f"{what}, but expecting an object as multiple input tensors are "
                             f"required: {{{','.join(sorted(input_infos))}}}")
    return next(iter(input_infos))


def _is_named(value):
    return isinstance(value, dict) and not _is_b64(value)


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


# JSON -> array --------------------------------------------------------------

def may_hold_bools(body):
    """False when the JSON has no true/false, so numbers need no leaf-by-leaf check.

    numpy reads [1, true] as [1, 1]; TF Serving refuses a bool for a number.
    """
    return b"true" in body or b"false" in body


def to_array(value, dtype_enum, where, may_have_bools=True):
    """A JSON value as an array of the signature's dtype, or INVALID_ARGUMENT."""
    dtype = tf.as_dtype(dtype_enum)
    shape = _shape_of(value)
    if len(shape) > _MAX_RANK:
        raise errors.invalid(f"{where}: lists nested {len(shape)} deep; at most {_MAX_RANK}")
    if dtype == tf.string:
        flat = []
        _walk(value, shape, where, lambda leaf, path: flat.append(_string_leaf(leaf, path)))
        return np.array(flat, dtype=object).reshape(shape)
    accepts = _leaf_check(dtype)
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):  # Ragged lists, or ints beyond 64 bits.
        array = None
    bulk_ok = array is not None and array.shape == shape and _bulk_ok(array, dtype)
    if bulk_ok and (dtype.is_bool or not may_have_bools):
        return array.astype(dtype.as_numpy_dtype)

    def check(leaf, path):
        problem = accepts(leaf)
        if problem:
            raise errors.invalid(f"{where}{path}: JSON Value: {_shown(leaf)} {problem}")

    _walk(value, shape, where, check)  # Raises at the first value the dtype refuses.
    if bulk_ok:
        return array.astype(dtype.as_numpy_dtype)
    raise errors.invalid(f"{where}: not a dense tensor of {dtype.name}")


def _shape_of(value):
    """The shape read down the first elements, as TF Serving reads it."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _walk(value, shape, where, visit, path=""):
    """Calls visit(leaf, path) on every leaf; raises where the nesting is ragged."""
    depth = path.count("[")
    if depth == len(shape):
        if isinstance(value, list):
            raise errors.invalid(f"{where}{path}: a list where the first elements had a value "
                                 f"(ragged list; every list at one depth needs the same length)")
        visit(value, path)
        return
    if not isinstance(value, list) or len(value) != shape[depth]:
        size = len(value) if isinstance(value, list) else "no list"
        raise errors.invalid(f"{where}{path}: expected a list of {shape[depth]} at depth {depth}, "
                             f"got {size} (ragged list; a tensor needs equal lengths at each depth)")
    for i, item in enumerate(value):
        _walk(item, shape, where, visit, f"{path}[{i}]")


def _bulk_ok(array, dtype):
    """Whether numpy's reading of the JSON is exactly what the dtype accepts."""
    if array.size == 0:
        return True
    kind = array.dtype.kind
    if dtype.is_bool:
        return kind == "b"
    if dtype.is_integer:
        info = np.iinfo(dtype.as_numpy_dtype)
        return kind in "iu" and info.min <= array.min() and array.max() <= info.max
    if dtype.is_floating:
        if kind in "iu":
            return np.abs(array).max() <= _max_exact_int(dtype)
        finite = array[np.isfinite(array)] if kind == "f" else array
        return kind == "f" and (finite.size == 0 or np.abs(finite).max() <= dtype.max)
    return False


def _max_exact_int(dtype):
    return 2 ** (np.finfo(dtype.as_numpy_dtype).nmant + 1)


def _leaf_check(dtype):
    """A function: JSON leaf -> "" if the dtype accepts it, else what is wrong."""
    wrong_type = f"is not of expected type: {dtype.name}"

    def check(leaf):
        if dtype.is_bool:
            return "" if isinstance(leaf, bool) else wrong_type
        if isinstance(leaf, bool) or not isinstance(leaf, (int, float)):
            return wrong_type
        if dtype.is_integer:
            if not isinstance(leaf, int):
                return wrong_type
            info = np.iinfo(dtype.as_numpy_dtype)
            return "" if info.min <= leaf <= info.max else (
                f"is out of range for {dtype.name} ({info.min}..{info.max})")
        if dtype.is_floating:
            exact = abs(leaf) <= _max_exact_int(dtype) if isinstance(leaf, int) else (
                not np.isfinite(leaf) or abs(leaf) <= dtype.max)
            return "" if exact else f"cannot convert to {dtype.name} without loss of precision"
        return f"cannot be fed to a {dtype.name} input over REST"

    return check


def _string_leaf(leaf, path):
    if isinstance(leaf, str):
        return leaf.encode("utf-8")
    if _is_b64(leaf):
        try:
            return base64.b64decode(leaf["b64"], validate=True)
        except binascii.Error as e:
            raise errors.invalid(f"{path}: Unable to base64 decode: {e}") from e
    raise errors.invalid(f"{path}: JSON Value: {_shown(leaf)} is not of expected type: string "
                         '(a string, or {"b64": "<base64>"} for bytes)')


def _shown(value):
    text = json.dumps(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


# array -> JSON --------------------------------------------------------------

def _json_values(name, array):
    """An output array as nested lists of JSON values (bytes as base64 for *_bytes)."""
    if array.dtype.kind in "OS":
        as_b64 = name.endswith("_bytes")
        flat = [{"b64": base64.b64encode(item).decode("ascii")} if as_b64
                else item.decode("utf-8", errors="replace") for item in array.ravel()]
        return np.array(flat, dtype=object).reshape(array.shape).tolist()
    if array.dtype.kind == "V":  # bfloat16: no Python float of its own.
        array = array.astype(np.float32)
    return array.tolist()


def _unnamed_if_single(values):
    return next(iter(values.values())) if len(values) == 1 else values


def _rows(outputs, values):
    """The row format: one entry per example; needs a common batch size."""
    batch = None
    for name, array in outputs.items():
        if array.ndim == 0:
            raise errors.invalid(f"Tensor name: {name} has no shape information (a scalar "
                                 "output); ask for the columnar format (\"inputs\")")
        if batch is not None and array.shape[0] != batch:
            raise errors.invalid(f"Tensor name: {name} has inconsistent batch size: "
                                 f"{array.shape[0]} expecting: {batch}; ask for the columnar format")
        batch = array.shape[0]
    if len(values) == 1:
        return next(iter(values.values()))
    return [{name: rows[i] for name, rows in values.items()} for i in range(batch)]
