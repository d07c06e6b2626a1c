"""Tests for enas_tf.data.images, image_sources, tfds_images and cifar100."""
import dataclasses
import os
import pickle

import numpy as np
import pytest
import tensorflow as tf

from enas_tf.data import cifar10
from enas_tf.data import cifar100
from enas_tf.data import image_sources
from enas_tf.data import images as image_data

HERE = os.path.dirname(os.path.abspath(__file__))
CIFAR10_SAMPLE = os.path.join(HERE, "..", "testdata", "cifar10")
H, W = 20, 12  # a non-square grayscale shape; crop padding round(4 * 12 / 32) = 2
PAD = 2


def _images(count, shape, seed=0, dtype=np.uint8):
    return np.random.default_rng(seed).integers(0, 256, (count,) + shape).astype(dtype)


def _data(**changes):
    """A valid grayscale 20x12 ImageData's fields, with changes."""
    fields = dict(train_images=_images(6, (H, W, 1)), train_labels=np.array([0, 1, 2] * 2),
                  test_images=_images(3, (H, W, 1), 1), test_labels=np.array([2, 1, 0]),
                  class_names=("a", "b", "c"), name="tiny")
    fields.update(changes)
    return fields


def _error(call, *args, error=image_data.ImageDataError, **kwargs):
    """The one-line message of the error call(*args, **kwargs) raises."""
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


class ImageDataTest:

    def test_valid_data_is_converted_and_described(self):
        data = image_data.ImageData(**_data(train_images=_images(6, (H, W, 1), dtype=np.int64),
                                            class_names=["a", "b", "c"]))
        assert data.train_images.dtype == np.uint8 and data.train_labels.dtype == np.int32
        np.testing.assert_array_equal(data.train_images, _images(6, (H, W, 1)))
        assert data.image_shape == (H, W, 1) and data.num_classes == 3
        assert data.class_names == ("a", "b", "c")
        with pytest.raises(dataclasses.FrozenInstanceError):
            data.name = "other"

    @pytest.mark.parametrize("changes, expected", [
        (dict(train_images=np.zeros((6, H, W), np.uint8)),
         "tiny: train images have shape (6, 20, 12); expected 4-D"),
        (dict(test_images=np.zeros((3, H, W, 1), np.float32)),
         "test images are float32; expected uint8 or integers in [0, 255] (convert floats"),
        (dict(train_images=np.full((6, H, W, 1), 300, np.int16)),
         "train images hold values in [300, 300]; pixels must be in [0, 255]"),
        (dict(train_images=np.zeros((6, H, W, 2), np.uint8)),
         "train images have 2 channels; expected 1 (grayscale) or 3 (RGB)"),
        (dict(train_images=np.zeros((6, 7, W, 1), np.uint8)),
         "train images are 7x12; height and width must be at least 8"),
        (dict(test_images=np.zeros((3, H, 8, 1), np.uint8)),
         "train images are 20x12x1 but test images are 20x8x1; both splits need one image shape"),
        (dict(train_labels=np.array([0, 1, 2])), "3 train labels for 6 train images"),
        (dict(test_labels=np.array([0, 3, 1])),
         "test labels[1] is 3; labels must be in [0, 3) for 3 class names"),
        (dict(train_labels=np.array([0, 1, 2, -1, 0, 0])), "train labels[3] is -1"),
        (dict(train_labels=np.zeros(6, np.float32)), "expected 1-D integers"),
        (dict(train_images=np.zeros((0, H, W, 1), np.uint8), train_labels=np.zeros(0, int)),
         "the train split is empty"),
        (dict(class_names=("a", "b")), "train labels[2] is 2; labels must be in [0, 2) for 2 class"),
        (dict(class_names=()), "class_names must be one or more strings"),
        (dict(class_names=("a", 1, "c")), "class_names must be one or more strings"),
        (dict(class_names="abc"), "class_names must be one or more strings"),
    ])
    def test_bad_data_is_one_line_error(self, changes, expected):
        message = _error(image_data.ImageData, **_data(**changes))
        assert expected in message and message.startswith("tiny: ")


class PipelineTest:

    @pytest.fixture(scope="class")
    def gray(self):
        images = _images(8, (H, W, 1), seed=3)
        return images, np.arange(8) % 3, image_data.channel_stats(images)

    def test_crop_padding_scales_with_the_smaller_side(self):
        assert image_data.crop_padding(32, 32) == 4
        assert image_data.crop_padding(H, W) == PAD
        assert image_data.crop_padding(64, 96) == 8
        assert image_data.crop_padding(8, 8) == 1

    def test_channel_stats_per_channel(self):
        rgb = _images(5, (9, 11, 3), seed=4) // np.array([1, 2, 4], np.uint8)
        mean, std = image_data.channel_stats(rgb)
        assert mean.shape == std.shape == (3,) and mean.dtype == np.float32
        np.testing.assert_allclose(mean, (rgb / 255).mean(axis=(0, 1, 2)), rtol=1e-6)
        np.testing.assert_allclose(std, (rgb / 255).std(axis=(0, 1, 2)), rtol=1e-5)
        assert mean[0] > 1.5 * mean[1] > 3 * mean[2] / 1.5
        gray_mean, _ = image_data.channel_stats(rgb[..., :1])
        assert gray_mean.shape == (1,) and gray_mean[0] == mean[0]

    def test_crops_keep_the_shape_and_flips_mirror(self, gray):
        images, labels, stats = gray
        dataset = image_data.train_dataset(images, labels, 8, *stats, seed=5)
        assert dataset.element_spec[0].shape == (8, H, W, 1)
        originals = np.asarray(image_data.normalize(images, *stats))
        seen = set()
        for batch, batch_labels in dataset.take(12).as_numpy_iterator():
            for image, label in zip(batch, batch_labels):
                matches = []
                for i, original in enumerate(originals):
                    padded = np.pad(original, [(PAD, PAD), (PAD, PAD), (0, 0)])
                    for dy in range(2 * PAD + 1):
                        for dx in range(2 * PAD + 1):
                            crop = padded[dy:dy + H, dx:dx + W]
                            for flipped, candidate in ((False, crop), (True, crop[:, ::-1])):
                                if np.allclose(image, candidate, atol=1e-5):
                                    matches.append((i, dy, dx, flipped))
                assert matches, "output is no crop/flip of any input"
                assert labels[matches[0][0]] == label
                seen.add(matches[0][1:])
        assert {key[0] for key in seen} == set(range(2 * PAD + 1))
        assert {key[1] for key in seen} == set(range(2 * PAD + 1))
        assert {key[2] for key in seen} == {False, True}

    def test_cutout_zeroes_one_clipped_square_anywhere(self, gray):
        images, labels, stats = gray
        size = 4

        def batches(cutout_size):
            dataset = image_data.train_dataset(images, labels, 8, *stats,
                                               cutout_size=cutout_size, seed=6)
            return np.concatenate([b for b, _ in dataset.take(10).as_numpy_iterator()])
        plain, cut = batches(0), batches(size)
        rows, cols = np.arange(H), np.arange(W)
        changed_rows = set()
        for before, after in zip(plain, cut):
            square_found = False
            for r in range(H):
                for c in range(W):
                    inside = ((rows[:, None] >= r - size // 2) & (rows[:, None] < r + size // 2)
                              & (cols >= c - size // 2) & (cols < c + size // 2))
                    if np.array_equal(np.where(inside[..., None], 0.0, before), after):
                        square_found = True
            assert square_found, "cutout is not one clipped square of zeros"
            changed_rows.update(np.flatnonzero(np.any(before != after, axis=(1, 2))))
        # A square reaching row 13 or below is centred at row >= 12: centres
        # cover all 20 rows, not only as many as there are columns.
        assert max(changed_rows) >= 13 and min(changed_rows) <= 3

    def test_eval_dataset_in_order_normalised(self, gray):
        images, labels, stats = gray
        batches = list(image_data.eval_dataset(images, labels, 3, *stats).as_numpy_iterator())
        assert [len(y) for _, y in batches] == [3, 3, 2]
        np.testing.assert_allclose(np.concatenate([x for x, _ in batches]),
                                   (images / np.float32(255) - stats[0]) / stats[1], atol=1e-6)
        np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), labels)

    def test_search_split_takes_the_last_images(self):
        data = image_data.ImageData(**_data())
        (train_x, train_y), (valid_x, valid_y) = image_data.search_split(data, 2)
        np.testing.assert_array_equal(valid_x, data.train_images[4:])
        np.testing.assert_array_equal(train_y, data.train_labels[:4])


class FromArraysTest:

    def test_grayscale_gets_a_channel_and_default_names(self):
        train = (_images(4, (H, W)), [0, 4, 1, 1])
        test = (_images(2, (H, W), 1).astype(np.int32), np.array([5, 0]))
        data = image_sources.from_arrays(train, test)
        assert data.image_shape == (H, W, 1) and data.name == "arrays"
        assert data.class_names == ("0", "1", "2", "3", "4", "5")
        np.testing.assert_array_equal(data.train_images[..., 0], train[0])
        assert data.test_images.dtype == np.uint8

    def test_class_names_and_name(self):
        data = image_sources.from_arrays((_images(2, (8, 8, 3)), [0, 0]),
                                         (_images(1, (8, 8, 3)), [0]), ("x", "y"), "mine")
        assert data.class_names == ("x", "y") and data.num_classes == 2 and data.name == "mine"

    def test_floats_are_refused_with_a_hint(self):
        message = _error(image_sources.from_arrays, (np.zeros((2, 8, 8)), [0, 1]),
                         (np.zeros((1, 8, 8), np.uint8), [0]))
        assert "float64" in message and "np.round(x * 255).astype(np.uint8)" in message

    def test_not_a_pair(self):
        assert "test must be an (images, labels) pair" in _error(
            image_sources.from_arrays, (_images(2, (8, 8)), [0, 1]), _images(1, (8, 8)))


class FromDatasetTest:

    @pytest.fixture(scope="class")
    def arrays(self):
        return ((_images(7, (H, W, 3)), np.array([0, 1, 2, 0, 1, 2, 0])),
                (_images(3, (H, W, 3), 1), np.array([2, 2, 1])))

    @pytest.mark.parametrize("form", ["single", "batched", "dict"])
    def test_reads_every_element_in_order(self, arrays, form):
        def dataset(pair):
            ds = tf.data.Dataset.from_tensor_slices(pair)
            if form == "batched":
                return ds.batch(3)
            if form == "dict":
                return ds.map(lambda x, y: {"image": x, "label": y, "id": "unused"})
            return ds
        data = image_sources.from_dataset(*(dataset(pair) for pair in arrays),
                                          class_names=("r", "g", "b"))
        for split, (images, labels) in zip(("train", "test"), arrays):
            np.testing.assert_array_equal(getattr(data, f"{split}_images"), images)
            np.testing.assert_array_equal(getattr(data, f"{split}_labels"), labels)
        assert data.class_names == ("r", "g", "b") and data.name == "dataset"

    def test_grayscale_without_channel_axis(self):
        images = _images(4, (9, 8))
        ds = tf.data.Dataset.from_tensor_slices((images, [0, 1, 0, 1]))
        data = image_sources.from_dataset(ds, ds.take(1))
        assert data.image_shape == (9, 8, 1) and data.class_names == ("0", "1")

    def test_mixed_shapes(self):
        mixed = tf.data.Dataset.from_generator(
            lambda: iter([(np.zeros((8, 8, 1), np.uint8), 0), (np.zeros((9, 8, 1), np.uint8), 1)]),
            output_signature=(tf.TensorSpec((None, None, 1), tf.uint8),
                              tf.TensorSpec((), tf.int32)))
        assert "the train images differ in shape" in _error(
            image_sources.from_dataset, mixed, mixed)

    def test_empty_and_malformed(self):
        ds = tf.data.Dataset.from_tensor_slices((_images(2, (8, 8, 1)), [0, 1]))
        assert "the test dataset is empty" in _error(
            image_sources.from_dataset, ds, ds.take(0))
        images_only = tf.data.Dataset.from_tensor_slices(_images(2, (8, 8, 1)))
        assert "expected (image, label) tensors" in _error(
            image_sources.from_dataset, images_only, ds)


def _write_png(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(pixels))


def _folder(root, counts, shape=(10, 14, 1)):
    """root/<class>/<i>.png, each image filled with a value unique to it."""
    values = {}
    value = 1
    for class_name, count in counts.items():
        for i in range(count):
            path = os.path.join(root, class_name, f"{i:02d}.png")
            _write_png(path, np.full(shape, value, np.uint8))
            values[value] = class_name
            value += 1
    return values


def _contents(images, labels, class_names):
    """{fill value: class name} of constant images."""
    return {int(image.flat[0]): class_names[label] for image, label in zip(images, labels)}


class FromDirectoryTest:

    def test_train_and_test_folders(self, tmp_path):
        train = _folder(str(tmp_path / "train"), {"emu": 2, "cat": 3, "dog": 1})
        (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
        test = {v + 100: k for v, k in _folder(str(tmp_path / "test"),
                                               {"cat": 1, "dog": 1, "emu": 1}).items()}
        for path in (tmp_path / "test").rglob("*.png"):  # distinct from train values
            pixels = tf.io.decode_png(tf.io.read_file(str(path))).numpy() + 100
            _write_png(str(path), pixels)
        data = image_sources.from_directory(str(tmp_path / "train"), str(tmp_path / "test"))
        assert data.class_names == ("cat", "dog", "emu") and data.name == "train"
        assert data.image_shape == (10, 14, 1)
        assert _contents(data.train_images, data.train_labels, data.class_names) == train
        assert _contents(data.test_images, data.test_labels, data.class_names) == test

    def test_rgb_wins_and_alpha_is_dropped(self, tmp_path):
        _write_png(str(tmp_path / "a" / "gray.png"), np.full((8, 8, 1), 7, np.uint8))
        _write_png(str(tmp_path / "b" / "rgba.png"), np.full((8, 8, 4), [1, 2, 3, 9], np.uint8))
        data = image_sources.from_directory(str(tmp_path), str(tmp_path))
        pixels = {tuple(image[0, 0]) for image in data.train_images}
        assert data.image_shape == (8, 8, 3) and pixels == {(7, 7, 7), (1, 2, 3)}

    def test_mixed_sizes_name_two_files(self, tmp_path):
        _write_png(str(tmp_path / "a" / "small.png"), np.zeros((10, 14, 1), np.uint8))
        _write_png(str(tmp_path / "b" / "big.png"), np.zeros((16, 14, 1), np.uint8))
        message = _error(image_sources.from_directory, str(tmp_path), str(tmp_path))
        assert "is 10x14 but" in message and "is 16x14" in message
        assert "small.png" in message and "big.png" in message
        assert "image_size=(height, width)" in message

    def test_image_size_resizes(self, tmp_path):
        _write_png(str(tmp_path / "a" / "small.png"), np.full((10, 14, 3), 40, np.uint8))
        _write_png(str(tmp_path / "b" / "big.png"), np.full((16, 9, 3), 200, np.uint8))
        data = image_sources.from_directory(str(tmp_path), str(tmp_path), image_size=(12, 12))
        assert data.image_shape == (12, 12, 3)
        assert {int(v) for v in np.unique(data.train_images)} == {40, 200}

    def test_folder_errors(self, tmp_path):
        _folder(str(tmp_path / "train"), {"cat": 2})
        os.makedirs(tmp_path / "train" / "dog")
        assert f"class folder {tmp_path / 'train' / 'dog'} has no images" in _error(
            image_sources.from_directory, str(tmp_path / "train"))
        os.makedirs(tmp_path / "flat")
        (tmp_path / "flat" / "x.png").write_bytes(b"")
        assert "has no class folders" in _error(image_sources.from_directory,
                                                str(tmp_path / "flat"))
        assert "does not exist" in _error(image_sources.from_directory, str(tmp_path / "none"))
        (tmp_path / "flat" / "x").mkdir()
        (tmp_path / "flat" / "x" / "broken.png").write_bytes(b"not a png")
        assert "broken.png is not a readable image" in _error(
            image_sources.from_directory, str(tmp_path / "flat"), str(tmp_path / "flat"))
        assert "test_fraction=1.5 must be in (0, 1)" in _error(
            image_sources.from_directory, str(tmp_path / "flat"), test_fraction=1.5)
        assert "image_size=(12,) must be (height, width)" in _error(
            image_sources.from_directory, str(tmp_path / "flat"), image_size=(12,))

    def test_test_folders_must_match(self, tmp_path):
        _folder(str(tmp_path / "train"), {"cat": 1, "dog": 1})
        _folder(str(tmp_path / "test"), {"cat": 1, "cow": 1})
        assert "has class folders ['cat', 'cow'] but" in _error(
            image_sources.from_directory, str(tmp_path / "train"), str(tmp_path / "test"))

    def test_split_is_stratified_seeded_and_deterministic(self, tmp_path):
        values = _folder(str(tmp_path), {"a": 10, "b": 5, "c": 1})

        def split(seed):
            data = image_sources.from_directory(str(tmp_path), test_fraction=0.3, seed=seed)
            return (_contents(data.train_images, data.train_labels, data.class_names),
                    _contents(data.test_images, data.test_labels, data.class_names),
                    data.train_images)
        train, test, order = split(0)
        assert sorted(test.values()) == ["a"] * 3 + ["b"] * 2  # round(0.3 n), >= 1, leaves 1
        assert {**train, **test} == values and not set(train) & set(test)
        again = split(0)
        assert again[1] == test
        np.testing.assert_array_equal(again[2], order)
        other = [split(seed) for seed in (1, 2, 3)]
        assert any(o[1] != test for o in other)
        # Training order is shuffled, not class-sorted (search_split takes the tail).
        labels = [train[int(image.flat[0])] for image in order]
        assert labels != sorted(labels)


def _store_tfds(data_dir, name, features, splits):
    import tensorflow_datasets as tfds
    tfds.dataset_builders.store_as_tfds_dataset(
        name, "1.0.0", tfds.features.FeaturesDict(features),
        {split: list(enumerate(examples)) for split, examples in splits.items()},
        data_dir=data_dir)


class FromTfdsTest:

    @pytest.fixture(scope="class")
    def tfds_dir(self, tmp_path_factory):
        import tensorflow_datasets as tfds
        data_dir = str(tmp_path_factory.mktemp("tfds"))

        def examples(split, count):
            return [{"id": f"{split}_{i:03d}", "label": i % 3,
                     "image": np.full((10, 12, 1), 10 * i + i % 3, np.uint8)}
                    for i in range(count)]
        _store_tfds(data_dir, "tiny_shapes",
                    {"id": tfds.features.Text(), "image": tfds.features.Image(shape=(10, 12, 1)),
                     "label": tfds.features.ClassLabel(names=["circle", "square", "star"])},
                    {"train": examples("train", 9), "test": examples("test", 4)})
        _store_tfds(data_dir, "no_labels",
                    {"image": tfds.features.Image(shape=(10, 12, 1)),
                     "target": tfds.features.ClassLabel(names=["x"])},
                    {"train": [{"image": np.zeros((10, 12, 1), np.uint8), "target": 0}]})
        return data_dir

    def test_reads_prepared_set_in_id_order(self, tfds_dir):
        data = image_sources.from_tfds("tiny_shapes", tfds_dir)
        assert data.name == "tiny_shapes" and data.class_names == ("circle", "square", "star")
        assert data.image_shape == (10, 12, 1)
        np.testing.assert_array_equal(data.train_images[:, 0, 0, 0], 10 * np.arange(9)
                                      + np.arange(9) % 3)
        np.testing.assert_array_equal(data.train_labels, np.arange(9) % 3)
        np.testing.assert_array_equal(data.test_labels, np.arange(4) % 3)

    def test_not_prepared_never_downloads(self, tmp_path):
        message = _error(image_sources.from_tfds, "mnist", str(tmp_path))
        assert f"tensorflow-datasets mnist is not prepared in {tmp_path}" in message
        assert f"`tfds build mnist --data_dir={tmp_path}`" in message
        assert "train-images-idx3-ubyte.gz" in message  # the archives to put in manual/
        assert not list(tmp_path.rglob("*.tfrecord*"))

    def test_unknown_and_unsuitable_sets(self, tfds_dir):
        assert "has no data set 'no_such_set_xyz'" in _error(
            image_sources.from_tfds, "no_such_set_xyz", tfds_dir)
        assert "needs an 'image' Image and a 'label' ClassLabel feature" in _error(
            image_sources.from_tfds, "no_labels", tfds_dir)


def _cifar100_records(seed, count):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (count, 3072)).astype(np.uint8)
    fine = rng.integers(0, 100, count).astype(np.uint8)
    return pixels, fine, (fine // 5).astype(np.uint8)


FINE_NAMES = [f"class_{i:02d}" for i in range(100)]


def _write_cifar100(root, layout):
    """A tiny official-layout CIFAR-100 (7 train, 3 test records) in root."""
    splits = {"train": _cifar100_records(1, 7), "test": _cifar100_records(2, 3)}
    if layout == "binary":
        directory = os.path.join(root, "cifar-100-binary")
        os.makedirs(directory)
        for split, (pixels, fine, coarse) in splits.items():
            records = np.concatenate([coarse[:, None], fine[:, None], pixels], axis=1)
            records.tofile(os.path.join(directory, f"{split}.bin"))
        with open(os.path.join(directory, "fine_label_names.txt"), "w") as f:
            f.write("\n".join(FINE_NAMES) + "\n\n")
    else:
        directory = os.path.join(root, "cifar-100-python")
        os.makedirs(directory)
        for split, (pixels, fine, coarse) in splits.items():
            with open(os.path.join(directory, split), "wb") as f:
                pickle.dump({b"filenames": [b"x.png"] * len(fine), b"batch_label": b"b",
                             b"fine_labels": fine.tolist(), b"coarse_labels": coarse.tolist(),
                             b"data": pixels}, f, 2)
        with open(os.path.join(directory, "meta"), "wb") as f:
            pickle.dump({b"fine_label_names": [n.encode() for n in FINE_NAMES],
                         b"coarse_label_names": [b"c"] * 20}, f, 2)
    return directory, splits


class Cifar100Test:

    @pytest.mark.parametrize("layout", ["binary", "pickle"])
    def test_reads_fine_labels_and_names(self, tmp_path, layout):
        directory, splits = _write_cifar100(str(tmp_path), layout)
        for path in (str(tmp_path), directory):
            data = cifar100.load_cifar100(path)
            assert data.name == "cifar100" and data.class_names == tuple(FINE_NAMES)
            for split, (pixels, fine, _) in splits.items():
                np.testing.assert_array_equal(getattr(data, f"{split}_labels"), fine)
                np.testing.assert_array_equal(  # R, G, B planes to NHWC
                    getattr(data, f"{split}_images"),
                    pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))

    def test_auto_prefers_binary_and_source_restricts(self, tmp_path):
        _write_cifar100(str(tmp_path), "binary")
        _write_cifar100(str(tmp_path), "pickle")
        os.remove(tmp_path / "cifar-100-python" / "meta")
        assert cifar100.load_cifar100(str(tmp_path)).num_classes == 100
        meta = tmp_path / "cifar-100-python" / "meta"
        assert f"label names file {meta} is missing" in _error(
            cifar100.load_cifar100, str(tmp_path), "pickle", error=cifar10.CifarDataError)

    def test_binary_errors(self, tmp_path):
        directory, _ = _write_cifar100(str(tmp_path), "binary")
        train = os.path.join(directory, "train.bin")
        data = bytearray(open(train, "rb").read())
        data[3074 + 1] = 100  # the fine label of record 1
        open(train, "wb").write(bytes(data))
        assert f"{train}: record 1 has label 100; labels must be 0..99" in _error(
            cifar100.load_cifar100, directory)
        open(train, "wb").write(bytes(data[:-1]))
        assert "3074-byte CIFAR-100 record (2 labels + 3072 pixels)" in _error(
            cifar100.load_cifar100, directory)
        os.remove(train)
        assert "every layout needs train and test" in _error(cifar100.load_cifar100, directory)

    def test_names_and_layout_errors(self, tmp_path):
        directory, _ = _write_cifar100(str(tmp_path / "p"), "pickle")
        with open(os.path.join(directory, "meta"), "wb") as f:
            pickle.dump({b"fine_label_names": [b"a", b"b"]}, f, 2)
        assert "holds 2 class names; CIFAR-100 has 100" in _error(
            cifar100.load_cifar100, directory, error=cifar10.CifarDataError)
        with open(os.path.join(directory, "meta"), "wb") as f:
            pickle.dump({b"label_names": []}, f, 2)
        assert "is not a CIFAR-100 meta file" in _error(cifar100.load_cifar100, directory)
        message = _error(cifar100.load_cifar100, str(tmp_path))
        assert ("holds no CIFAR-100 data; expected cifar-100-binary/ files train.bin, test.bin "
                "or cifar-100-python/ files train, test") in message


class LoadTest:

    def test_cifar10_is_image_data(self):
        data = image_sources.load("cifar10", CIFAR10_SAMPLE)
        expected = cifar10.load_cifar10(CIFAR10_SAMPLE, "pickle")
        assert isinstance(data, image_data.ImageData) and data.name == "cifar10"
        assert data.class_names == cifar10.CLASS_NAMES and data.image_shape == (32, 32, 3)
        np.testing.assert_array_equal(data.train_images, expected.train_images)
        np.testing.assert_array_equal(data.test_labels, expected.test_labels)
        assert image_sources.load("cifar10", CIFAR10_SAMPLE, source="binary").num_classes == 10

    def test_names_dispatch_with_options(self, tmp_path):
        _write_cifar100(str(tmp_path / "c100"), "pickle")
        assert image_sources.load("cifar100", str(tmp_path / "c100")).num_classes == 100
        _folder(str(tmp_path / "folder"), {"a": 4, "b": 4})
        data = image_sources.load("folder", str(tmp_path / "folder"), test_fraction=0.5, seed=1)
        assert len(data.test_labels) == 4 and data.class_names == ("a", "b")
        assert "not prepared in" in _error(image_sources.load, "tfds:mnist", str(tmp_path))

    def test_unknown_name_and_option(self):
        message = _error(image_sources.load, "imagenet")
        assert "unknown data set 'imagenet'" in message
        assert "cifar10, cifar100, folder, tfds:<name>" in message
        assert "cifar100 takes no option seed; its options are source" in _error(
            image_sources.load, "cifar100", "x", seed=1)
        assert "its options are none" in _error(image_sources.load, "tfds:mnist", "x", source=1)
