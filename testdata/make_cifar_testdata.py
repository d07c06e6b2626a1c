"""Writes a tiny synthetic CIFAR-10 sample in both official on-disk layouts.

The images are made here (never copied from CIFAR-10) so they can live in the
repository: each class has its own colour and stripe direction plus noise, so
a small convnet beats chance within a few steps. Output is deterministic, so
re-running the script reproduces the committed files byte for byte.

Usage: python testdata/make_cifar_testdata.py [OUT_DIR]
(default OUT_DIR: testdata/cifar10 next to this script)
"""
import os
import pickle
import sys

import numpy as np

from enas_tf.data.cifar10 import CLASS_NAMES

SEED = 20180209  # the ENAS paper's arXiv date: any fixed value would do
NUM_TRAIN_BATCHES = 5
PER_CLASS_PER_TRAIN_BATCH = 6
PER_CLASS_TEST = 10
PICKLE_PROTOCOL = 2  # what the official python files use

# One clearly different RGB colour per class.
_PALETTE = np.array(
    [[230, 60, 60], [60, 200, 60], [60, 90, 230], [230, 210, 50],
     [200, 60, 210], [50, 210, 210], [250, 140, 30], [130, 130, 130],
     [140, 80, 30], [240, 240, 240]], np.float64)


def _image(rng, label):
    """One 32x32x3 image: class colour modulated by class-oriented stripes."""
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    angle = np.pi * label / len(CLASS_NAMES)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    stripes = np.sin(2.0 * np.pi * 3.0 *
                     (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
    image = _PALETTE[label] * (0.7 + 0.3 * stripes[..., None])
    image += rng.normal(0.0, 20.0, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _batch(rng, per_class):
    """Images [N, 32, 32, 3] and labels [N], class-balanced, shuffled."""
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)), per_class))
    images = np.stack([_image(rng, label) for label in labels])
    return images, labels.astype(np.int32)


def make_batches():
    """Returns [(name, images, labels)] for data_batch_1..5 and test_batch."""
    rng = np.random.default_rng(SEED)
    batches = [(f"data_batch_{i}",) + _batch(rng, PER_CLASS_PER_TRAIN_BATCH)
               for i in range(1, NUM_TRAIN_BATCHES + 1)]
    batches.append(("test_batch",) + _batch(rng, PER_CLASS_TEST))
    return batches


def _planar(images):
    """NHWC -> [N, 3072] rows of R plane, G plane, B plane (official order)."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _write_binary(out_dir, batches):
    os.makedirs(out_dir, exist_ok=True)
    for name, images, labels in batches:
        records = np.concatenate(
            [labels.astype(np.uint8)[:, None], _planar(images)], axis=1)
        with open(os.path.join(out_dir, name + ".bin"), "wb") as f:
            f.write(records.tobytes())
    with open(os.path.join(out_dir, "batches.meta.txt"), "w",
              encoding="ascii", newline="\n") as f:
        f.write("\n".join(CLASS_NAMES) + "\n\n")  # the official trailing blank


def _pickle_bytes(obj):
    """Protocol-2 pickle that is the same under numpy 1 and numpy 2.

    numpy 2 names its array reconstructor numpy._core.multiarray; rewrite it
    to numpy.core.multiarray, the name numpy 1 and the official files use and
    that both numpy versions load.
    """
    blob = pickle.dumps(obj, protocol=PICKLE_PROTOCOL)
    return blob.replace(b"cnumpy._core.multiarray\n",
                        b"cnumpy.core.multiarray\n")


def _batch_label(name):
    if name == "test_batch":
        return b"testing batch 1 of 1"
    return f"training batch {name[-1]} of {NUM_TRAIN_BATCHES}".encode()


def _write_pickle(out_dir, batches):
    os.makedirs(out_dir, exist_ok=True)
    for name, images, labels in batches:
        filenames = [f"synthetic_{CLASS_NAMES[label]}_{name}_{i:03d}.png"
                     .encode() for i, label in enumerate(labels)]
        batch = {b"batch_label": _batch_label(name),
                 b"labels": [int(label) for label in labels],
                 b"data": _planar(images),
                 b"filenames": filenames}
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(_pickle_bytes(batch))
    per_batch = len(CLASS_NAMES) * PER_CLASS_PER_TRAIN_BATCH
    meta = {b"num_cases_per_batch": per_batch,
            b"label_names": [name.encode() for name in CLASS_NAMES],
            b"num_vis": 32 * 32 * 3}
    with open(os.path.join(out_dir, "batches.meta"), "wb") as f:
        f.write(_pickle_bytes(meta))


def write_sample(out_dir):
    """Writes cifar-10-batches-bin/ and cifar-10-batches-py/ under out_dir."""
    batches = make_batches()
    _write_binary(os.path.join(out_dir, "cifar-10-batches-bin"), batches)
    _write_pickle(os.path.join(out_dir, "cifar-10-batches-py"), batches)


if __name__ == "__main__":
    write_sample(sys.argv[1] if len(sys.argv) > 1 else
                 os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "cifar10"))
