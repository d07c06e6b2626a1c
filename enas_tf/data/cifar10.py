"""CIFAR-10 loading, the ENAS search split and tf.data input pipelines.

Reads the official binary or python-pickle layouts (or a prepared
tensorflow-datasets copy) into uint8 NHWC arrays, and turns arrays into
normalised, augmented batches the way the official ENAS code does: per-channel
normalisation, zero-pad 4 + random 32x32 crop + random horizontal flip, then
optional cutout.
"""
import dataclasses
import os
import pickle
import random

import numpy as np
import tensorflow as tf

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
               "horse", "ship", "truck")
DATA_SOURCES = ("auto", "binary", "pickle", "tfds")

_SIZE = 32
IMAGE_SHAPE = (_SIZE, _SIZE, 3)  # height, width, RGB
_PIXELS = _SIZE * _SIZE * 3
_RECORD_BYTES = 1 + _PIXELS  # label byte, then R, G and B planes
_PAD = 4
_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_LAYOUTS = {"binary": ("cifar-10-batches-bin", ".bin"),
            "pickle": ("cifar-10-batches-py", "")}
_TFDS_ARCHIVE = "cifar-10-binary.tar.gz"


@dataclasses.dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous
class CifarArrays:
    """CIFAR-10 images (uint8 [N, 32, 32, 3], NHWC) and int32 labels [N]."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


class CifarDataError(ValueError):
    """The CIFAR-10 data is missing or malformed (one-line message)."""


def load_cifar10(data_path, data_source="auto", *, tfds_data_dir=None):
    """Loads all of CIFAR-10 in the official order.

    data_path is a cifar-10-batches-bin or cifar-10-batches-py directory, or
    a directory holding one of them ("auto" prefers binary). "tfds" ignores
    data_path and reads the prepared tensorflow-datasets copy in
    tfds_data_dir (tfds' default when None), never downloading anything.
    """
    if data_source not in DATA_SOURCES:
        raise CifarDataError(f"data_source {data_source!r} is not one of "
                             f"{', '.join(DATA_SOURCES)}")
    if data_source == "tfds":
        return _load_tfds(tfds_data_dir)
    layout, directory = _find_layout(data_path, data_source)
    read = _read_binary if layout == "binary" else _read_pickle
    suffix = _LAYOUTS[layout][1]
    batches = [read(os.path.join(directory, name + suffix))
               for name in _BATCHES]
    train_images, train_labels = (np.concatenate(parts)
                                  for parts in zip(*batches[:-1]))
    test_images, test_labels = batches[-1]
    return CifarArrays(train_images, train_labels, test_images, test_labels)


def _find_layout(data_path, data_source):
    """Returns (layout, directory) for the first layout found in or at path."""
    if not os.path.isdir(data_path):
        raise CifarDataError(f"CIFAR-10 directory {data_path} does not exist; "
                             "expected a cifar-10-batches-bin or "
                             "cifar-10-batches-py directory or one holding it")
    layouts = ("binary", "pickle") if data_source == "auto" else (data_source,)
    for layout in layouts:
        subdir, suffix = _LAYOUTS[layout]
        for directory in (data_path, os.path.join(data_path, subdir)):
            if any(os.path.exists(os.path.join(directory, name + suffix))
                   for name in _BATCHES):
                return layout, directory
    expected = " or ".join(
        f"{_LAYOUTS[layout][0]}/ files data_batch_1{_LAYOUTS[layout][1]} ... "
        f"data_batch_5{_LAYOUTS[layout][1]}, test_batch{_LAYOUTS[layout][1]}"
        for layout in layouts)
    raise CifarDataError(f"{data_path} holds no CIFAR-10 data; expected "
                         f"{expected}, in it or in that subdirectory")


def _check_exists(path):
    if not os.path.isfile(path):
        raise CifarDataError(f"CIFAR-10 batch file {path} is missing; every "
                             "layout needs data_batch_1 ... data_batch_5 and "
                             "test_batch")


def _planes_to_nhwc(rows):
    """[N, 3072] rows of R, G, B planes -> contiguous uint8 [N, 32, 32, 3]."""
    planes = rows.reshape(-1, 3, _SIZE, _SIZE)
    return np.ascontiguousarray(planes.transpose(0, 2, 3, 1))


def _checked_labels(path, labels):
    labels = np.asarray(labels)
    bad = np.flatnonzero((labels < 0) | (labels >= len(CLASS_NAMES)))
    if bad.size:
        raise CifarDataError(f"{path}: record {bad[0]} has label "
                             f"{labels[bad[0]]}; labels must be 0..9")
    return labels.astype(np.int32)


def _read_binary(path):
    _check_exists(path)
    size = os.path.getsize(path)
    if size == 0 or size % _RECORD_BYTES:
        raise CifarDataError(
            f"{path} is {size} bytes, not a positive multiple of the "
            f"{_RECORD_BYTES}-byte CIFAR-10 record "
            f"(1 label + {_PIXELS} pixels)")
    records = np.fromfile(path, np.uint8).reshape(-1, _RECORD_BYTES)
    return _planes_to_nhwc(records[:, 1:]), _checked_labels(path, records[:, 0])


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR-10 batches hold: dicts, lists, bytes, arrays.

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


def _read_pickle(path):
    _check_exists(path)
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except Exception as e:  # a corrupt pickle can fail in many ways
        raise CifarDataError(f"{path} is not a readable CIFAR-10 pickle batch: "
                             f"{type(e).__name__}: {e}") from e
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8
            or data.ndim != 2 or data.shape[1] != _PIXELS
            or not isinstance(labels, list) or len(labels) != len(data)
            or np.asarray(labels).dtype.kind not in "iu"):
        raise CifarDataError(
            f"{path} is not a CIFAR-10 pickle batch; expected a dict with "
            f"b'data' uint8 [N, {_PIXELS}] and b'labels' a list of N ints")
    return _planes_to_nhwc(data), _checked_labels(path, labels)


def _load_tfds(data_dir):
    """Reads tfds' cifar10 without network access, in the official order.

    A copy that is not prepared is prepared from the official archive if the
    user put it in tfds' manual dir; otherwise this fails rather than download.
    """
    import tensorflow_datasets as tfds  # only this source needs it

    builder = tfds.builder("cifar10", data_dir=data_dir)
    archive = builder.data_dir_root / "downloads" / "manual" / _TFDS_ARCHIVE
    if not builder.is_prepared():
        if not archive.exists():
            raise CifarDataError(
                f"tensorflow-datasets cifar10 is not prepared in "
                f"{builder.data_dir_root}; put {_TFDS_ARCHIVE} in "
                f"{archive.parent} to prepare it offline, or run "
                f"`tfds build cifar10 --data_dir={builder.data_dir_root}` "
                "where there is internet access")
        try:
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(
                    manual_dir=str(archive.parent)))
        except Exception as e:  # tfds' errors (bad checksum...) are private
            first_line = str(e).splitlines()[0] if str(e) else ""
            raise CifarDataError(
                f"could not prepare tensorflow-datasets cifar10 from "
                f"{archive}: {type(e).__name__}: {first_line}") from e
    splits = []
    for split in ("train", "test"):
        data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
        # tfds shuffles records on write; ids ("train_00042") give the order.
        order = np.argsort(data["id"])
        splits += [data["image"][order], data["label"][order].astype(np.int32)]
    return CifarArrays(*splits)


def search_split(arrays, num_valid=5000):
    """Splits training data as the ENAS search does.

    The first len - num_valid images train the shared weights and the last
    num_valid give the controller its reward (45,000 / 5,000 on CIFAR-10).
    """
    count = len(arrays.train_labels)
    if not 1 <= num_valid <= count - 1:
        raise ValueError(f"num_valid={num_valid} must be in [1, {count - 1}] "
                         f"for {count} training images")
    split = count - num_valid
    return ((arrays.train_images[:split], arrays.train_labels[:split]),
            (arrays.train_images[split:], arrays.train_labels[split:]))


def channel_stats(images):
    """Per-channel mean and std of images / 255 as float32 [3].

    Sums are exact integers, so no float copy of the whole set is needed.
    """
    count = images.size // 3
    total = images.sum(axis=(0, 1, 2), dtype=np.int64)
    squares = np.einsum("nhwc,nhwc->c", images, images, dtype=np.int64)
    mean = total / count
    std = np.sqrt(squares / count - mean ** 2)
    return (mean / 255).astype(np.float32), (std / 255).astype(np.float32)


def normalize(images, mean, std):
    """(images / 255 - mean) / std as float32.

    The pipelines and the exported model both call this, so training and
    serving see the same inputs.
    """
    images = tf.cast(images, tf.float32) / 255.0
    return (images - tf.cast(mean, tf.float32)) / tf.cast(std, tf.float32)


def _crop_and_flip(images, seed):
    """Random 32x32 crops of the zero-padded batch, randomly mirrored.

    Padding the normalised images with zeros pads with the mean colour, as
    the official code does. Crop and flip are one gather per axis on the
    whole batch, which is far faster on CPU than per-image ops.
    """
    count = tf.shape(images)[0]
    offset_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 2))
    offsets = tf.random.stateless_uniform(
        [count, 2], offset_seed, 0, 2 * _PAD + 1, dtype=tf.int32)
    flips = tf.random.stateless_uniform(
        [count, 1], flip_seed, 0, 2, dtype=tf.int32)
    pixels = tf.range(_SIZE)
    rows = offsets[:, :1] + pixels
    cols = offsets[:, 1:] + tf.where(flips == 1, _SIZE - 1 - pixels, pixels)
    padded = tf.pad(images, [[0, 0], [_PAD, _PAD], [_PAD, _PAD], [0, 0]])
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def _cutout(images, size, seed):
    """Zeroes a size x size square centred on a random pixel of each image.

    The square is clipped at the image border, as in DeVries & Taylor (2017).
    """
    centres = tf.random.stateless_uniform(
        [tf.shape(images)[0], 2], seed, 0, _SIZE, dtype=tf.int32)
    starts = centres - size // 2
    pixels = tf.range(_SIZE)
    outside = (pixels < starts[:, :, None]) | (
        pixels >= starts[:, :, None] + size)  # [B, 2 (row/col), 32]
    keep = outside[:, 0, :, None] | outside[:, 1, None, :]
    return images * tf.cast(keep, images.dtype)[..., None]  # faster than where


def train_dataset(images, labels, batch_size, mean, std, *, cutout_size=0,
                  seed=None, shuffle_buffer=None):
    """Endless shuffled, augmented, normalised (images, labels) batches.

    Only indices are shuffled (shuffle_buffer defaults to the whole set),
    so the buffer is cheap to checkpoint. Batch k is augmented with stateless
    ops seeded from (seed, k): the same seed (and TF global seed, which
    tf.data mixes into the shuffle) replays the same stream, so a resumed run
    can restore the iterator or skip to its step; crops and flips do not
    depend on cutout_size.
    """
    if seed is None:
        seed = random.SystemRandom().randrange(2 ** 31)
    images = tf.convert_to_tensor(images)  # captured once, not per batch
    labels = tf.cast(labels, tf.int32)
    count = int(images.shape[0])
    base_seed = tf.constant([seed, 0], tf.int64)

    def make_batch(step, indices):
        batch_seed = tf.random.experimental.stateless_fold_in(base_seed, step)
        crop_seed, cutout_seed = tf.unstack(
            tf.random.experimental.stateless_split(batch_seed, 2))
        batch = normalize(tf.gather(images, indices), mean, std)
        batch = _crop_and_flip(batch, crop_seed)
        if cutout_size > 0:
            batch = _cutout(batch, cutout_size, cutout_seed)
        return batch, tf.gather(labels, indices)

    return (tf.data.Dataset.range(count)
            .shuffle(shuffle_buffer or count, seed=seed,
                     reshuffle_each_iteration=True)
            .repeat()
            .batch(batch_size, drop_remainder=True)
            .enumerate()
            .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def eval_dataset(images, labels, batch_size, mean, std, *, repeat=False,
                 drop_remainder=False):
    """Normalised, unaugmented (images, labels) batches in order."""
    dataset = (tf.data.Dataset.from_tensor_slices(
        (images, tf.cast(labels, tf.int32)))
               .batch(batch_size, drop_remainder=drop_remainder)
               .map(lambda x, y: (normalize(x, mean, std), y),
                    num_parallel_calls=tf.data.AUTOTUNE))
    if repeat:
        dataset = dataset.repeat()
    return dataset.prefetch(tf.data.AUTOTUNE)
