"""Image classification data of any shape, and its tf.data input pipelines.

`ImageData` holds a data set as uint8 NHWC arrays (any height and width of at
least 8, 1 or 3 channels) with int32 labels and class names; it checks itself
when built, so every loader (`image_sources.py`) and every pipeline can rely
on it. The pipelines turn arrays into normalised, augmented batches the way
the official ENAS code does for CIFAR-10: per-channel normalisation, zero-pad
+ random crop back to the image size + random horizontal flip, then optional
cutout. They read H, W and C from the arrays' static shape; at 32x32 they are
exactly the CIFAR-10 pipelines (pad 4).
"""
import dataclasses
import math
import random

import numpy as np
import tensorflow as tf

CHANNELS = (1, 3)  # grayscale or RGB
MIN_SIZE = 8  # smallest height and width: the CIFAR children halve them twice


class ImageDataError(ValueError):
    """Image data is missing or malformed (one-line message)."""


@dataclasses.dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous
class ImageData:
    """Train and test images (uint8 [N, H, W, C], NHWC) and int32 labels [N].

    Integer arrays with values in [0, 255] are converted to uint8 and labels
    to int32; anything else, or data that no child could train on, raises
    ImageDataError. Labels index class_names, one name per class.
    """
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple
    name: str

    def __post_init__(self):
        names = () if isinstance(self.class_names, str) else tuple(self.class_names)
        if not names or not all(isinstance(n, str) for n in names):
            raise ImageDataError(f"{self.name}: class_names must be one or more strings, "
                                 f"got {self.class_names!r}")
        object.__setattr__(self, "class_names", names)
        for split in ("train", "test"):
            images = _checked_images(self.name, split, getattr(self, f"{split}_images"))
            labels = _checked_labels(self.name, split, getattr(self, f"{split}_labels"),
                                     len(images), len(names))
            object.__setattr__(self, f"{split}_images", images)
            object.__setattr__(self, f"{split}_labels", labels)
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise ImageDataError(
                f"{self.name}: train images are {_shape(self.train_images)} but test images "
                f"are {_shape(self.test_images)}; both splits need one image shape")

    @property
    def image_shape(self):
        """(height, width, channels) of every image."""
        return tuple(int(d) for d in self.train_images.shape[1:])

    @property
    def num_classes(self):
        return len(self.class_names)


def _shape(images):
    return "x".join(str(d) for d in images.shape[1:])


def _checked_images(name, split, images):
    images = np.asarray(images)
    if images.ndim != 4:
        raise ImageDataError(f"{name}: {split} images have shape {images.shape}; expected "
                             "4-D [N, height, width, channels]")
    if images.dtype != np.uint8:
        if images.dtype.kind not in "iu":
            raise ImageDataError(f"{name}: {split} images are {images.dtype}; expected uint8 "
                                 "or integers in [0, 255] (convert floats, e.g. "
                                 "np.round(x * 255).astype(np.uint8) for x in [0, 1])")
        if images.size and (images.min() < 0 or images.max() > 255):
            raise ImageDataError(f"{name}: {split} images hold values in [{images.min()}, "
                                 f"{images.max()}]; pixels must be in [0, 255]")
        images = images.astype(np.uint8)
    count, height, width, channels = images.shape
    if channels not in CHANNELS:
        raise ImageDataError(f"{name}: {split} images have {channels} channels; expected 1 "
                             "(grayscale) or 3 (RGB)")
    if min(height, width) < MIN_SIZE:
        raise ImageDataError(f"{name}: {split} images are {height}x{width}; height and width "
                             f"must be at least {MIN_SIZE}")
    if not count:
        raise ImageDataError(f"{name}: the {split} split is empty; both splits need images")
    return images


def _checked_labels(name, split, labels, count, num_classes):
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ImageDataError(f"{name}: {split} labels have shape {labels.shape} and dtype "
                             f"{labels.dtype}; expected 1-D integers")
    if len(labels) != count:
        raise ImageDataError(f"{name}: {len(labels)} {split} labels for {count} {split} "
                             "images; expected one label per image")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise ImageDataError(f"{name}: {split} labels[{bad[0]}] is {labels[bad[0]]}; labels "
                             f"must be in [0, {num_classes}) for {num_classes} class names")
    return labels.astype(np.int32)


def search_split(data, num_valid=5000):
    """Splits training data as the ENAS search does.

    The first len - num_valid images train the shared weights and the last
    num_valid give the controller its reward (45,000 / 5,000 on CIFAR-10).
    """
    count = len(data.train_labels)
    if not 1 <= num_valid <= count - 1:
        raise ValueError(f"num_valid={num_valid} must be in [1, {count - 1}] "
                         f"for {count} training images")
    split = count - num_valid
    return ((data.train_images[:split], data.train_labels[:split]),
            (data.train_images[split:], data.train_labels[split:]))


def channel_stats(images):
    """Per-channel mean and std of images / 255 as float32 [C].

    Sums are exact integers, so no float copy of the whole set is needed.
    """
    count = images.size // images.shape[-1]
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


def crop_padding(height, width):
    """Zero padding of the random crop: 4 px at 32 px as the official code,
    scaled with the smaller side (max(1, round(4 * min(H, W) / 32)))."""
    return max(1, round(4 * min(height, width) / 32))


def _crop_and_flip(images, seed):
    """Random HxW crops of the zero-padded batch, randomly mirrored.

    Padding the normalised images with zeros pads with the mean colour, as
    the official code does. Crop and flip are one gather per axis on the
    whole batch, which is far faster on CPU than per-image ops.
    """
    height, width = images.shape[1:3]
    pad = crop_padding(height, width)
    count = tf.shape(images)[0]
    offset_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 2))
    offsets = tf.random.stateless_uniform(
        [count, 2], offset_seed, 0, 2 * pad + 1, dtype=tf.int32)
    flips = tf.random.stateless_uniform(
        [count, 1], flip_seed, 0, 2, dtype=tf.int32)
    columns = tf.range(width)
    rows = offsets[:, :1] + tf.range(height)
    cols = offsets[:, 1:] + tf.where(flips == 1, width - 1 - columns, columns)
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def _cutout(images, size, seed):
    """Zeroes a size x size square centred on a random pixel of each image.

    The square is clipped at the image border, as in DeVries & Taylor (2017).
    One draw in [0, lcm(H, W)) per axis, taken modulo H and W, is uniform on
    both and, for square images, exactly the draw in [0, H) it always was.
    """
    height, width = images.shape[1:3]
    draws = tf.random.stateless_uniform(
        [tf.shape(images)[0], 2], seed, 0, math.lcm(height, width), dtype=tf.int32)
    starts = draws % [height, width] - size // 2

    def outside(start, length):  # [B, length]: pixels outside the square
        pixels = tf.range(length)
        return (pixels < start[:, None]) | (pixels >= start[:, None] + size)

    keep = (outside(starts[:, 0], height)[:, :, None]
            | outside(starts[:, 1], width)[:, None, :])
    return images * tf.cast(keep, images.dtype)[..., None]  # faster than where


def train_dataset(images, labels, batch_size, mean, std, *, cutout_size=0,
                  seed=None, shuffle_buffer=None):
    """Endless shuffled, augmented, normalised (images, labels) batches.

    Augmentation: zero-pad by crop_padding(H, W) (4 px at 32x32, as the
    official code; scaled with the smaller side otherwise), random HxW crop,
    random horizontal flip, then cutout if cutout_size > 0.
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
