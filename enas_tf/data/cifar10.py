"""CIFAR-10 loading, and the CIFAR file readers cifar100.py shares.

Reads the official binary or python-pickle layouts (or a prepared
tensorflow-datasets copy) into an ImageData (uint8 NHWC [N, 32, 32, 3]).
The search split and the input pipelines are in images.py, for any shape.
"""
import dataclasses
import os
import pickle

import numpy as np

from enas_tf.data import images as image_data
from enas_tf.data import tfds_images

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
               "horse", "ship", "truck")
DATA_SOURCES = ("auto", "binary", "pickle", "tfds")

_SIZE = 32
IMAGE_SHAPE = (_SIZE, _SIZE, 3)  # height, width, RGB
_PIXELS = _SIZE * _SIZE * 3


@dataclasses.dataclass(frozen=True)
class CifarFormat:
    """What tells the files of CIFAR-10 and CIFAR-100 apart.

    layouts maps "binary" and "pickle" to (directory name, file suffix). A
    binary record is label_bytes label bytes, the last one the label, then
    the R, G and B planes; a pickle batch holds b"data" and labels_key.
    """
    title: str
    layouts: dict
    train_files: tuple
    test_file: str
    label_bytes: int
    labels_key: bytes
    num_classes: int

    @property
    def record_bytes(self):
        return self.label_bytes + _PIXELS

    def files(self, suffix="", joiner=", "):
        """The batch files, as error messages list them."""
        first, *rest = (name + suffix for name in self.train_files)
        train = f"{first} ... {rest[-1]}" if rest else first
        return f"{train}{joiner}{self.test_file}{suffix}"


CIFAR10 = CifarFormat(
    title="CIFAR-10",
    layouts={"binary": ("cifar-10-batches-bin", ".bin"),
             "pickle": ("cifar-10-batches-py", "")},
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_file="test_batch", label_bytes=1, labels_key=b"labels",
    num_classes=len(CLASS_NAMES))


class CifarDataError(image_data.ImageDataError):
    """The CIFAR-10 or CIFAR-100 data is missing or malformed (one line)."""


def load_cifar10(data_path, data_source="auto", *, tfds_data_dir=None):
    """Loads all of CIFAR-10 in the official order, as ImageData "cifar10".

    data_path is a cifar-10-batches-bin or cifar-10-batches-py directory, or
    a directory holding one of them ("auto" prefers binary). "tfds" ignores
    data_path and reads the prepared tensorflow-datasets copy in
    tfds_data_dir (tfds' default when None), never downloading anything; an
    unprepared copy is prepared from cifar-10-binary.tar.gz if the user put
    it in <tfds_data_dir>/downloads/manual.
    """
    if data_source not in DATA_SOURCES:
        raise CifarDataError(f"data_source {data_source!r} is not one of "
                             f"{', '.join(DATA_SOURCES)}")
    if data_source == "tfds":
        try:
            return tfds_images.from_tfds("cifar10", tfds_data_dir)
        except image_data.ImageDataError as e:  # the CLIs catch CifarDataError
            raise CifarDataError(str(e)) from e
    arrays, _, _ = read_batches(data_path, data_source, CIFAR10)
    return image_data.ImageData(*arrays, class_names=CLASS_NAMES, name="cifar10")


def read_batches(data_path, data_source, fmt):
    """Reads the train and test files of fmt in or at data_path.

    Returns ((train_images, train_labels, test_images, test_labels),
    layout, directory): the layout found and the directory holding its
    files (where the label names are).
    """
    if data_source not in ("auto", "binary", "pickle"):
        raise CifarDataError(f"data_source {data_source!r} is not one of auto, binary, "
                             "pickle")
    layout, directory = _find_layout(data_path, data_source, fmt)
    read = _read_binary if layout == "binary" else _read_pickle_batch
    suffix = fmt.layouts[layout][1]
    batches = [read(os.path.join(directory, name + suffix), fmt)
               for name in fmt.train_files + (fmt.test_file,)]
    train_images, train_labels = (np.concatenate(parts)
                                  for parts in zip(*batches[:-1]))
    return (train_images, train_labels) + batches[-1], layout, directory


def _find_layout(data_path, data_source, fmt):
    """Returns (layout, directory) for the first layout found in or at path."""
    if data_path is None or not os.path.isdir(data_path):
        raise CifarDataError(
            f"{fmt.title} directory {data_path} does not exist; expected a "
            f"{' or '.join(subdir for subdir, _ in fmt.layouts.values())} "
            "directory or one holding it")
    layouts = ("binary", "pickle") if data_source == "auto" else (data_source,)
    names = fmt.train_files + (fmt.test_file,)
    for layout in layouts:
        subdir, suffix = fmt.layouts[layout]
        for directory in (data_path, os.path.join(data_path, subdir)):
            if any(os.path.exists(os.path.join(directory, name + suffix))
                   for name in names):
                return layout, directory
    expected = " or ".join(
        f"{fmt.layouts[layout][0]}/ files {fmt.files(fmt.layouts[layout][1])}"
        for layout in layouts)
    raise CifarDataError(f"{data_path} holds no {fmt.title} data; expected "
                         f"{expected}, in it or in that subdirectory")


def _check_exists(path, fmt):
    if not os.path.isfile(path):
        raise CifarDataError(f"{fmt.title} batch file {path} is missing; every "
                             f"layout needs {fmt.files(joiner=' and ')}")


def _planes_to_nhwc(rows):
    """[N, 3072] rows of R, G, B planes -> contiguous uint8 [N, 32, 32, 3]."""
    planes = rows.reshape(-1, 3, _SIZE, _SIZE)
    return np.ascontiguousarray(planes.transpose(0, 2, 3, 1))


def _checked_labels(path, labels, fmt):
    labels = np.asarray(labels)
    bad = np.flatnonzero((labels < 0) | (labels >= fmt.num_classes))
    if bad.size:
        raise CifarDataError(f"{path}: record {bad[0]} has label "
                             f"{labels[bad[0]]}; labels must be 0..{fmt.num_classes - 1}")
    return labels.astype(np.int32)


def _read_binary(path, fmt):
    _check_exists(path, fmt)
    size = os.path.getsize(path)
    if size == 0 or size % fmt.record_bytes:
        labels = "1 label" if fmt.label_bytes == 1 else f"{fmt.label_bytes} labels"
        raise CifarDataError(
            f"{path} is {size} bytes, not a positive multiple of the "
            f"{fmt.record_bytes}-byte {fmt.title} record "
            f"({labels} + {_PIXELS} pixels)")
    records = np.fromfile(path, np.uint8).reshape(-1, fmt.record_bytes)
    return (_planes_to_nhwc(records[:, fmt.label_bytes:]),
            _checked_labels(path, records[:, fmt.label_bytes - 1], fmt))


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR batches hold: dicts, lists, bytes, arrays.

    Refusing other globals keeps a corrupt or hostile file from running code.
    """
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"),
                ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")
        return super().find_class(module, name)


def unpickle(path, fmt, what="pickle batch"):
    """The object in a CIFAR pickle file (a batch, or what, e.g. "meta")."""
    try:
        with open(path, "rb") as f:
            return _BatchUnpickler(f, encoding="bytes").load()
    except Exception as e:  # a corrupt pickle can fail in many ways
        raise CifarDataError(f"{path} is not a readable {fmt.title} {what}: "
                             f"{type(e).__name__}: {e}") from e


def _read_pickle_batch(path, fmt):
    _check_exists(path, fmt)
    batch = unpickle(path, fmt)
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(fmt.labels_key) if isinstance(batch, dict) else None
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8
            or data.ndim != 2 or data.shape[1] != _PIXELS
            or not isinstance(labels, list) or len(labels) != len(data)
            or np.asarray(labels).dtype.kind not in "iu"):
        raise CifarDataError(
            f"{path} is not a {fmt.title} pickle batch; expected a dict with "
            f"b'data' uint8 [N, {_PIXELS}] and {fmt.labels_key!r} a list of N ints")
    return _planes_to_nhwc(data), _checked_labels(path, labels, fmt)
