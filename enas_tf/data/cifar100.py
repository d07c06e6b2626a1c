"""CIFAR-100 loading with the fine (100-class) labels.

Reads the official cifar-100-binary (train.bin, test.bin: records of a
coarse label byte, a fine label byte and 3072 pixel bytes;
fine_label_names.txt) or cifar-100-python (train, test pickles with
b"fine_labels"; meta with b"fine_label_names") layouts with cifar10.py's
readers, into an ImageData "cifar100" (uint8 [N, 32, 32, 3]).
"""
import os

from enas_tf.data import cifar10
from enas_tf.data import images as image_data

NUM_CLASSES = 100
CIFAR100 = cifar10.CifarFormat(
    title="CIFAR-100",
    layouts={"binary": ("cifar-100-binary", ".bin"),
             "pickle": ("cifar-100-python", "")},
    train_files=("train",), test_file="test", label_bytes=2,
    labels_key=b"fine_labels", num_classes=NUM_CLASSES)


def load_cifar100(data_path, data_source="auto"):
    """Loads all of CIFAR-100 in file order, fine labels and their names.

    data_path is a cifar-100-binary or cifar-100-python directory, or one
    holding it ("auto" prefers binary); data_source "binary" or "pickle"
    restricts the layout. Errors are one-line cifar10.CifarDataErrors.
    """
    arrays, layout, directory = cifar10.read_batches(data_path, data_source, CIFAR100)
    if layout == "binary":
        names = _binary_names(os.path.join(directory, "fine_label_names.txt"))
    else:
        names = _pickle_names(os.path.join(directory, "meta"))
    return image_data.ImageData(*arrays, class_names=names, name="cifar100")


def _checked_names(path, names):
    if len(names) != NUM_CLASSES:
        raise cifar10.CifarDataError(f"{path} holds {len(names)} class names; CIFAR-100 has "
                                     f"{NUM_CLASSES} fine labels")
    return tuple(names)


def _check_exists(path):
    if not os.path.isfile(path):
        raise cifar10.CifarDataError(
            f"CIFAR-100 label names file {path} is missing; the official layouts hold "
            "fine_label_names.txt (binary) or meta (pickle) beside the train file")


def _binary_names(path):
    _check_exists(path)
    with open(path, encoding="utf-8") as f:
        return _checked_names(path, [line.strip() for line in f if line.strip()])


def _pickle_names(path):
    _check_exists(path)
    meta = cifar10.unpickle(path, CIFAR100, what="meta file")
    names = meta.get(b"fine_label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, bytes) for n in names):
        raise cifar10.CifarDataError(f"{path} is not a CIFAR-100 meta file; expected a dict "
                                     "with b'fine_label_names' a list of bytes")
    return _checked_names(path, [n.decode("utf-8") for n in names])
