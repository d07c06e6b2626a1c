"""Every way to get an ImageData, and `load`, which picks one by name.

    from_arrays(train, test)          NumPy (images, labels) pairs
    from_dataset(train_ds, test_ds)   tf.data datasets of (image, label)
    from_directory(train_dir)         one sub-folder of image files per class
    from_tfds(name)                   a prepared tensorflow-datasets set
    cifar10(path), cifar100(path)     the official CIFAR files

    load("cifar10" | "cifar100" | "folder" | "tfds:<name>", path, **options)

Pixels must be integers in [0, 255]: float images are refused with a hint
rather than guessed at ([0, 1] and [0, 255] floats look alike). The ENAS
search validates on the LAST training images (images.search_split), so a
class-sorted training order would make a useless validation split:
from_directory shuffles with its seed; the other loaders keep their source's
order. Errors are one-line ImageDataErrors (CifarDataError for CIFAR files).
"""
import inspect
import os

import numpy as np
import tensorflow as tf

from enas_tf.data import cifar10 as cifar10_files
from enas_tf.data import cifar100 as cifar100_files
from enas_tf.data.images import ImageData, ImageDataError
from enas_tf.data.tfds_images import from_tfds  # its own module: cifar10.py uses it too

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
DATASETS = ("cifar10", "cifar100", "folder", "tfds:<name>")

__all__ = ["from_arrays", "from_dataset", "from_directory", "from_tfds", "cifar10",
           "cifar100", "load", "DATASETS", "IMAGE_EXTENSIONS"]


def from_arrays(train, test, class_names=None, name="arrays"):
    """ImageData from (images, labels) NumPy pairs for train and test.

    images are uint8 (or integers in [0, 255]) [N, H, W, C], or [N, H, W]
    for grayscale (a channel axis is added); labels are integers [N].
    Without class_names the classes are named "0" .. "K-1", K the largest
    label + 1.
    """
    (train_x, train_y), (test_x, test_y) = (_pair(name, split, pair) for split, pair in
                                            (("train", train), ("test", test)))
    if class_names is None:
        top = max((int(y.max()) for y in (train_y, test_y) if y.size and y.dtype.kind in "iu"),
                  default=0)
        class_names = tuple(str(k) for k in range(max(1, top + 1)))
    return ImageData(train_x, train_y, test_x, test_y, class_names=class_names, name=name)


def _pair(name, split, pair):
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ImageDataError(f"{name}: {split} must be an (images, labels) pair, got "
                             f"{type(pair).__name__}")
    images, labels = (np.asarray(a) for a in pair)
    return (images[..., None] if images.ndim == 3 else images), labels


def from_dataset(train_ds, test_ds, class_names=None, name="dataset"):
    """ImageData from tf.data datasets of (image, label) elements.

    Elements may be single examples (image [H, W, C] or [H, W], scalar
    label) or batches (leading batch axis, label vector), as tuples or
    {"image", "label"} dicts as tensorflow-datasets gives them. The
    datasets are read once, to the end, into memory; class_names as in
    from_arrays.
    """
    return from_arrays(_materialized(name, "train", train_ds),
                       _materialized(name, "test", test_ds), class_names, name)


def _materialized(name, split, dataset):
    spec = getattr(dataset, "element_spec", None)
    if isinstance(spec, dict) and {"image", "label"} <= spec.keys():
        dataset = dataset.map(lambda e: (e["image"], e["label"]))
        spec = dataset.element_spec
    if (not isinstance(spec, tuple) or len(spec) != 2
            or not all(isinstance(s, tf.TensorSpec) for s in spec)
            or spec[1].shape.rank not in (0, 1)):
        raise ImageDataError(f"{name}: the {split} dataset's elements are {spec}; expected "
                             "(image, label) tensors, label a scalar (or a vector when batched)")
    if spec[1].shape.rank == 0:  # single examples: read them in batches
        dataset = dataset.batch(1024)
    try:
        parts = list(dataset.as_numpy_iterator())
        arrays = tuple(np.concatenate([p[i] for p in parts]) for i in (0, 1)) if parts else None
    except (tf.errors.InvalidArgumentError, ValueError) as e:
        raise ImageDataError(f"{name}: the {split} images differ in shape; resize them to one "
                             "shape first (e.g. dataset.map with tf.image.resize and a cast "
                             "to uint8)") from e
    if arrays is None:
        raise ImageDataError(f"{name}: the {split} dataset is empty; both splits need images")
    return arrays


def from_directory(train_dir, test_dir=None, *, test_fraction=0.1, image_size=None, seed=0):
    """ImageData from folders of image files, one sub-folder per class.

    The layout of keras.utils.image_dataset_from_directory: class names
    are the sub-folder names, sorted; files ending in .png, .jpg, .jpeg,
    .bmp or .gif (first frame), at any depth below them, are decoded by TF.
    Images become grayscale if all of them are, RGB otherwise (alpha is
    dropped). image_size=(height, width) resizes every image (bilinear);
    without it all images must share one size. Without test_dir, each class
    gives round(test_fraction * its count) images (at least 1, leaving at
    least 1) to the test split, drawn with seed; both splits are then
    shuffled with seed, so the result depends on the files and seed only.
    """
    size = _checked_size(image_size)
    class_names, train_files = _list_classes(train_dir)
    if test_dir is None:
        if not 0 < test_fraction < 1:
            raise ImageDataError(f"test_fraction={test_fraction} must be in (0, 1)")
        train_files, test_files = _stratified_split(train_files, test_fraction, seed)
    else:
        test_names, test_files = _list_classes(test_dir)
        if test_names != class_names:
            raise ImageDataError(f"{test_dir} has class folders {list(test_names)} but "
                                 f"{train_dir} has {list(class_names)}; they must match")
    rng = np.random.default_rng(seed)
    train_files, test_files = ([files[i] for i in rng.permutation(len(files))]
                               for files in (train_files, test_files))
    paths = [path for path, _ in train_files + test_files]
    pixels = _same_size(_same_channels([_decode(path) for path in paths]), paths, size)
    count = len(train_files)
    labels = np.array([label for _, label in train_files + test_files], np.int32)
    name = os.path.basename(os.path.normpath(train_dir))
    return ImageData(pixels[:count], labels[:count], pixels[count:], labels[count:],
                     class_names=class_names, name=name)


def _checked_size(image_size):
    if image_size is None:
        return None
    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else ()
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ImageDataError(f"image_size={image_size!r} must be (height, width), two "
                             "positive ints")
    return size


def _list_classes(directory):
    """(class names, [(path, label)]) of a directory of class folders."""
    if directory is None or not os.path.isdir(directory):
        raise ImageDataError(f"image directory {directory} does not exist; expected a "
                             "directory with one sub-folder of images per class")
    names = tuple(sorted(entry for entry in os.listdir(directory)
                         if os.path.isdir(os.path.join(directory, entry))))
    if not names:
        raise ImageDataError(f"{directory} has no class folders; expected one sub-folder of "
                             "images per class")
    files = []
    for label, class_name in enumerate(names):
        found = sorted(os.path.join(root, f)
                       for root, _, fs in os.walk(os.path.join(directory, class_name))
                       for f in fs if f.lower().endswith(IMAGE_EXTENSIONS))
        if not found:
            raise ImageDataError(f"class folder {os.path.join(directory, class_name)} has no "
                                 f"images; expected files ending in {', '.join(IMAGE_EXTENSIONS)}")
        files += [(path, label) for path in found]
    return names, files


def _stratified_split(files, test_fraction, seed):
    """(train, test) with about test_fraction of each class in test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in sorted({label for _, label in files}):
        members = [f for f in files if f[1] == label]
        members = [members[i] for i in rng.permutation(len(members))]
        count = min(len(members) - 1, max(1, round(test_fraction * len(members))))
        test += members[:count]
        train += members[count:]
    return train, test


def _decode(path):
    try:
        return tf.io.decode_image(tf.io.read_file(path), expand_animations=False).numpy()
    except tf.errors.OpError as e:
        raise ImageDataError(f"{path} is not a readable image: "
                             f"{e.message.splitlines()[0] if e.message else type(e).__name__}"
                             ) from e


def _same_channels(pixels):
    """Grayscale (1 channel) if every image is, else RGB; alpha dropped."""
    channels = 1 if all(p.shape[-1] <= 2 for p in pixels) else 3
    return [np.repeat(p[..., :1], channels, axis=-1) if p.shape[-1] <= 2 else p[..., :3]
            for p in pixels]


def _same_size(pixels, paths, size):
    """One uint8 [N, H, W, C] array: resized to size, or checked to share one."""
    if size is None:
        for path, p in zip(paths, pixels):
            if p.shape[:2] != pixels[0].shape[:2]:
                raise ImageDataError(
                    f"{paths[0]} is {'x'.join(map(str, pixels[0].shape[:2]))} but {path} is "
                    f"{'x'.join(map(str, p.shape[:2]))}; pass image_size=(height, width) to "
                    "resize all images")
        return np.stack(pixels)
    return np.stack([p if p.shape[:2] == size else
                     tf.cast(tf.round(tf.clip_by_value(
                         tf.image.resize(p, size, antialias=True), 0, 255)), tf.uint8).numpy()
                     for p in pixels])


def cifar10(path, source="auto", tfds_data_dir=None):
    """CIFAR-10 from its official files or tfds (cifar10.load_cifar10)."""
    return cifar10_files.load_cifar10(path, source, tfds_data_dir=tfds_data_dir)


def cifar100(path, source="auto"):
    """CIFAR-100, fine labels, from its official files (cifar100.load_cifar100)."""
    return cifar100_files.load_cifar100(path, source)


_LOADERS = {"cifar10": cifar10, "cifar100": cifar100, "folder": from_directory}


def load(dataset, path=None, **options):
    """Loads a data set by name: the one entry the binaries need.

    "cifar10" (options source, tfds_data_dir) and "cifar100" (source) read
    the official files at path; "folder" is from_directory(path, ...) with
    its options; "tfds:<name>" is from_tfds(<name>, data_dir=path).
    """
    if isinstance(dataset, str) and dataset.startswith("tfds:") and dataset[5:]:
        loader, args = from_tfds, (dataset[5:], path)
    elif dataset in _LOADERS:
        loader, args = _LOADERS[dataset], (path,)
    else:
        raise ImageDataError(f"unknown data set {dataset!r}; expected one of "
                             f"{', '.join(DATASETS)}")
    allowed = list(inspect.signature(loader).parameters)[len(args):]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ImageDataError(f"{dataset} takes no option {', '.join(unknown)}; its options "
                             f"are {', '.join(allowed) or 'none'}")
    return loader(*args, **options)
