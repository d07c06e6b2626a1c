"""Tests for enas_tf.data.cifar10, on the synthetic sample in testdata/."""
import importlib.util
import os
import pickle
import shutil
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from enas_tf.data import cifar10
from enas_tf.data import images as image_data

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "testdata", "cifar10")
BINARY = os.path.join(SAMPLE, "cifar-10-batches-bin")
PICKLE = os.path.join(SAMPLE, "cifar-10-batches-py")
REAL = os.path.join(HERE, "..", "..", "shared", "data", "cifar10")
ARRAY_FIELDS = ("train_images", "train_labels", "test_images", "test_labels")


def _generator():
    """testdata/make_cifar_testdata.py as a module (testdata is no package)."""
    path = os.path.join(HERE, "..", "testdata", "make_cifar_testdata.py")
    spec = importlib.util.spec_from_file_location("make_cifar_testdata", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_same_arrays(a, b):
    for field in ARRAY_FIELDS:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def _np_normalize(images, mean, std):
    return (images.astype(np.float32) / np.float32(255) - mean) / std


@pytest.fixture(scope="module")
def sample():
    return cifar10.load_cifar10(SAMPLE)


@pytest.fixture(scope="module")
def stats(sample):
    return image_data.channel_stats(sample.train_images)


def _error(*args, **kwargs):
    """The one-line CifarDataError load_cifar10(*args, **kwargs) raises."""
    with pytest.raises(cifar10.CifarDataError) as info:
        cifar10.load_cifar10(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


class SampleTest:

    def test_both_layouts_hold_the_generated_images(self):
        batches = _generator().make_batches()
        train = batches[:-1]
        for layout in ("binary", "pickle"):
            arrays = cifar10.load_cifar10(SAMPLE, layout)
            np.testing.assert_array_equal(
                arrays.train_images, np.concatenate([b[1] for b in train]))
            np.testing.assert_array_equal(
                arrays.train_labels, np.concatenate([b[2] for b in train]))
            np.testing.assert_array_equal(arrays.test_images, batches[-1][1])
            np.testing.assert_array_equal(arrays.test_labels, batches[-1][2])
            assert arrays.train_images.dtype == np.uint8
            assert arrays.train_labels.dtype == np.int32

    def test_script_reproduces_committed_files(self, tmp_path):
        _generator().write_sample(str(tmp_path))
        for layout in ("cifar-10-batches-bin", "cifar-10-batches-py"):
            names = sorted(os.listdir(os.path.join(SAMPLE, layout)))
            assert sorted(os.listdir(tmp_path / layout)) == names
            for name in names:
                with open(os.path.join(SAMPLE, layout, name), "rb") as f:
                    assert (tmp_path / layout / name).read_bytes() == f.read()

    def test_classes_are_balanced(self, sample):
        for start in range(0, 300, 60):  # 6 per class in each train batch
            counts = np.bincount(sample.train_labels[start:start + 60])
            np.testing.assert_array_equal(counts, [6] * 10)
        np.testing.assert_array_equal(np.bincount(sample.test_labels),
                                      [10] * 10)

    def test_pickles_have_the_official_keys(self):
        with open(os.path.join(PICKLE, "data_batch_2"), "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        assert set(batch) == {b"batch_label", b"labels", b"data",
                              b"filenames"}
        assert batch[b"batch_label"] == b"training batch 2 of 5"
        assert batch[b"data"].shape == (60, 3072)
        assert len(batch[b"filenames"]) == 60
        with open(os.path.join(PICKLE, "batches.meta"), "rb") as f:
            meta = pickle.load(f, encoding="bytes")
        assert [n.decode() for n in meta[b"label_names"]] == list(
            cifar10.CLASS_NAMES)
        with open(os.path.join(BINARY, "batches.meta.txt")) as f:
            assert f.read().split() == list(cifar10.CLASS_NAMES)

    def test_a_small_model_beats_chance(self, sample, stats):
        # The sample must be learnable: a linear model on class colours will do.
        model = tf.keras.Sequential([
            tf.keras.Input((32, 32, 3)),
            tf.keras.layers.GlobalAveragePooling2D(),
            tf.keras.layers.Dense(10)])
        model.compile(tf.keras.optimizers.Adam(0.1), metrics=["accuracy"],
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
        model.fit(image_data.train_dataset(sample.train_images,
                                        sample.train_labels, 50, *stats,
                                        seed=0),
                  steps_per_epoch=60, verbose=0)
        _, accuracy = model.evaluate(image_data.eval_dataset(
            sample.test_images, sample.test_labels, 100, *stats), verbose=0)
        assert accuracy > 0.5


class LoadTest:

    @pytest.mark.parametrize("path", [SAMPLE, BINARY, PICKLE])
    def test_auto_finds_layout_in_or_at_path(self, sample, path):
        _assert_same_arrays(cifar10.load_cifar10(path), sample)

    def test_auto_prefers_binary(self, tmp_path, sample):
        shutil.copytree(BINARY, tmp_path / "cifar-10-batches-bin")
        shutil.copytree(PICKLE, tmp_path / "cifar-10-batches-py")
        (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"x")
        _assert_same_arrays(cifar10.load_cifar10(str(tmp_path)), sample)

    def test_source_restricts_layout(self):
        message = _error(BINARY, "pickle")
        assert "data_batch_1 ... data_batch_5, test_batch" in message
        assert ".bin" not in message

    def test_rejects_unknown_source(self):
        assert "'zip'" in _error(SAMPLE, "zip")


class LoadErrorTest:

    @pytest.fixture
    def binary_copy(self, tmp_path):
        return shutil.copytree(BINARY, tmp_path / "cifar-10-batches-bin")

    @pytest.fixture
    def pickle_copy(self, tmp_path):
        return shutil.copytree(PICKLE, tmp_path / "cifar-10-batches-py")

    def test_missing_directory(self, tmp_path):
        missing = str(tmp_path / "nowhere")
        assert f"{missing} does not exist" in _error(missing)

    def test_directory_without_data(self, tmp_path):
        (tmp_path / "notes.txt").write_text("no data here")
        message = _error(str(tmp_path))
        assert str(tmp_path) in message
        assert ("data_batch_1.bin ... data_batch_5.bin, test_batch.bin"
                in message)

    @pytest.mark.parametrize("copy", ["binary_copy", "pickle_copy"])
    def test_missing_batch(self, request, copy):
        directory = request.getfixturevalue(copy)
        name = "data_batch_3" + (".bin" if copy == "binary_copy" else "")
        os.remove(directory / name)
        message = _error(str(directory))
        assert str(directory / name) in message and "missing" in message

    @pytest.mark.parametrize("change", [-5, 1, -184380])
    def test_binary_size_not_a_multiple_of_records(self, binary_copy, change):
        path = binary_copy / "data_batch_4.bin"
        data = path.read_bytes()
        path.write_bytes(data[:change] if change < 0 else data + b"\0")
        size = len(data) + change
        message = _error(str(binary_copy))
        assert f"{path} is {size} bytes" in message and "3073" in message

    def test_binary_label_out_of_range(self, binary_copy):
        path = binary_copy / "test_batch.bin"
        data = bytearray(path.read_bytes())
        data[2 * 3073] = 10
        path.write_bytes(bytes(data))
        message = _error(str(binary_copy))
        assert f"{path}: record 2 has label 10" in message

    @pytest.mark.parametrize("content", [
        b"not a pickle",
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}, 2)[:-40],
        pickle.dumps(os.getcwd, 2),  # a global no CIFAR batch holds
    ])
    def test_corrupt_pickle(self, pickle_copy, content):
        path = pickle_copy / "data_batch_5"
        path.write_bytes(content)
        assert f"{path} is not a readable CIFAR-10 pickle" in _error(
            str(pickle_copy))

    @pytest.mark.parametrize("batch", [
        {b"labels": [0, 1]},
        {b"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]},
        {b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]},
        {b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]},
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": ["a", "b"]},
        [1, 2],
    ])
    def test_pickle_with_wrong_keys_or_shape(self, pickle_copy, batch):
        path = pickle_copy / "test_batch"
        path.write_bytes(pickle.dumps(batch, 2))
        message = _error(str(pickle_copy))
        assert f"{path} is not a CIFAR-10 pickle batch" in message

    def test_pickle_label_out_of_range(self, pickle_copy):
        path = pickle_copy / "test_batch"
        batch = {b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, -1, 2]}
        path.write_bytes(pickle.dumps(batch, 2))
        assert f"{path}: record 1 has label -1" in _error(str(pickle_copy))


class TfdsTest:

    def test_unprepared_data_dir_fails_without_downloading(self, tmp_path):
        message = _error("unused", "tfds", tfds_data_dir=str(tmp_path))
        assert f"not prepared in {tmp_path}" in message
        assert "tfds build cifar10" in message
        assert not (tmp_path / "cifar10" / "3.0.2").exists()

    def test_reads_prepared_copy_in_official_order(self, tmp_path, sample):
        import tensorflow_datasets as tfds

        def examples(prefix, images, labels):
            return [(i, {"id": f"{prefix}_{i:05d}", "image": image,
                         "label": int(label)})
                    for i, (image, label) in enumerate(zip(images, labels))]

        tfds.dataset_builders.store_as_tfds_dataset(
            "cifar10", "3.0.2",
            tfds.builder("cifar10", data_dir=str(tmp_path)).info.features,
            {"train": examples("train", sample.train_images,
                               sample.train_labels),
             "test": examples("test", sample.test_images, sample.test_labels)},
            data_dir=str(tmp_path))
        arrays = cifar10.load_cifar10("unused", "tfds",
                                      tfds_data_dir=str(tmp_path))
        _assert_same_arrays(arrays, sample)

    def test_wrong_archive_in_manual_dir(self, tmp_path):
        manual = tmp_path / "downloads" / "manual"
        manual.mkdir(parents=True)
        with tarfile.open(manual / "cifar-10-binary.tar.gz", "w:gz") as tar:
            tar.add(BINARY, "cifar-10-batches-bin")
        message = _error("unused", "tfds", tfds_data_dir=str(tmp_path))
        assert f"from {manual / 'cifar-10-binary.tar.gz'}" in message
        assert "checksum" in message

    def test_prepares_from_official_archive(self, tmp_path):
        archive = os.path.join(REAL, "cifar-10-binary.tar.gz")
        if not os.path.exists(archive):
            pytest.skip(f"needs the official archive at {archive}: tfds "
                        "checks its checksum, so no sample can stand in")
        manual = tmp_path / "downloads" / "manual"
        manual.mkdir(parents=True)
        os.symlink(os.path.abspath(archive), manual / "cifar-10-binary.tar.gz")
        arrays = cifar10.load_cifar10("unused", "tfds",
                                      tfds_data_dir=str(tmp_path))
        _assert_same_arrays(arrays, cifar10.load_cifar10(REAL, "binary"))


class SearchSplitTest:

    def test_last_images_are_for_validation(self, sample):
        (train_x, train_y), (valid_x, valid_y) = image_data.search_split(
            sample, num_valid=50)
        assert len(train_x) == len(train_y) == 250
        assert len(valid_x) == len(valid_y) == 50
        np.testing.assert_array_equal(train_x, sample.train_images[:250])
        np.testing.assert_array_equal(valid_x, sample.train_images[250:])
        np.testing.assert_array_equal(valid_y, sample.train_labels[250:])

    @pytest.mark.parametrize("num_valid", [0, -1, 300, 5000])
    def test_rejects_impossible_sizes(self, sample, num_valid):
        with pytest.raises(ValueError, match=r"in \[1, 299\]"):
            image_data.search_split(sample, num_valid)


class NormalizationTest:

    def test_channel_stats_match_numpy(self, sample, stats):
        scaled = sample.train_images / 255.0
        mean, std = stats
        assert mean.dtype == std.dtype == np.float32 and mean.shape == (3,)
        np.testing.assert_allclose(mean, scaled.mean(axis=(0, 1, 2)),
                                   rtol=1e-6)
        np.testing.assert_allclose(std, scaled.std(axis=(0, 1, 2)), rtol=1e-5)

    def test_normalize(self, sample, stats):
        images = sample.test_images[:4]
        np.testing.assert_allclose(image_data.normalize(images, *stats).numpy(),
                                   _np_normalize(images, *stats), atol=1e-6)


def _batches(dataset, count):
    """count batches as numpy (images, labels)."""
    pairs = list(dataset.take(count).as_numpy_iterator())
    return (np.concatenate([p[0] for p in pairs]),
            np.concatenate([p[1] for p in pairs]))


def _crops(image):
    """{(dy, dx, flipped): crop} for every pad-4 crop and flip of image."""
    padded = np.pad(image, [(4, 4), (4, 4), (0, 0)])
    crops = {}
    for dy in range(9):
        for dx in range(9):
            crop = padded[dy:dy + 32, dx:dx + 32]
            crops[dy, dx, False] = crop
            crops[dy, dx, True] = crop[:, ::-1]
    return crops


class TrainDatasetTest:

    def test_batches_are_endless_and_typed(self, sample, stats):
        dataset = image_data.train_dataset(sample.train_images,
                                        sample.train_labels, 64, *stats, seed=1)
        assert dataset.element_spec[0].shape == (64, 32, 32, 3)
        images, labels = _batches(dataset, 12)  # over 2.5 epochs
        assert images.shape == (768, 32, 32, 3) and images.dtype == np.float32
        assert labels.shape == (768,) and labels.dtype == np.int32

    def test_each_epoch_is_a_permutation(self, sample, stats):
        dataset = image_data.train_dataset(sample.train_images,
                                        sample.train_labels, 60, *stats, seed=2)
        _, labels = _batches(dataset, 10)
        for epoch in (labels[:300], labels[300:]):
            np.testing.assert_array_equal(np.bincount(epoch), [30] * 10)
        assert not np.array_equal(labels[:300], sample.train_labels)
        assert not np.array_equal(labels[:300], labels[300:])

    def test_augmentation_crops_and_flips_the_padded_image(self, sample, stats):
        # One image of each of four classes, so a match also checks its label.
        picks = [int(np.argmax(sample.train_labels == c)) for c in range(4)]
        originals = _np_normalize(sample.train_images[picks], *stats)
        images, labels = _batches(image_data.train_dataset(
            sample.train_images[picks], sample.train_labels[picks], 32,
            *stats, seed=3), 3)
        seen = set()
        for image, label in zip(images, labels):
            matches = [(i, key) for i, original in enumerate(originals)
                       for key, crop in _crops(original).items()
                       if np.allclose(image, crop, atol=1e-5)]
            assert matches, "output is no crop/flip of any input"
            source, key = matches[0]
            assert sample.train_labels[picks[source]] == label
            seen.add(key)
        assert {dy for dy, _, _ in seen} == set(range(9))
        assert {dx for _, dx, _ in seen} == set(range(9))
        assert {flipped for _, _, flipped in seen} == {False, True}

    def test_same_seed_same_stream(self, sample, stats):
        def stream(seed):
            return _batches(image_data.train_dataset(
                sample.train_images, sample.train_labels, 32, *stats,
                cutout_size=8, seed=seed), 3)
        first, again, other = stream(7), stream(7), stream(8)
        np.testing.assert_array_equal(first[0], again[0])
        np.testing.assert_array_equal(first[1], again[1])
        assert not np.array_equal(first[1], other[1])

    def test_seed_drives_augmentation(self, sample, stats):
        def augmented(seed):  # one image, so shuffling cannot differ
            return _batches(image_data.train_dataset(
                sample.train_images[:1], sample.train_labels[:1], 16, *stats,
                seed=seed), 1)[0]
        np.testing.assert_array_equal(augmented(7), augmented(7))
        assert not np.allclose(augmented(7), augmented(8))

    @pytest.mark.parametrize("size", [5, 16])
    def test_cutout_zeroes_one_clipped_square(self, sample, stats, size):
        def stream(cutout_size):
            return _batches(image_data.train_dataset(
                sample.train_images, sample.train_labels, 64, *stats,
                cutout_size=cutout_size, seed=4), 1)[0]
        plain, cut = stream(0), stream(size)
        # Every square the size can leave: centred on any pixel, clipped.
        starts = np.arange(32) - size // 2
        pixels = np.arange(32)
        inside = (pixels >= starts[:, None]) & (pixels < starts[:, None] + size)
        squares = (inside[:, None, :, None] & inside[None, :, None, :]
                   ).reshape(-1, 32, 32, 1)
        changed = 0
        for before, after in zip(plain, cut):
            candidates = np.where(squares, 0.0, before)
            assert np.any(np.all(candidates == after, axis=(1, 2, 3))), (
                "cutout is not one clipped square of zeros")
            changed += not np.array_equal(before, after)
        assert changed > 32


class EvalDatasetTest:

    def test_every_image_once_in_order_unaugmented(self, sample, stats):
        dataset = image_data.eval_dataset(sample.test_images, sample.test_labels,
                                       32, *stats)
        sizes = [len(labels) for _, labels in dataset.as_numpy_iterator()]
        assert sizes == [32, 32, 32, 4]
        images, labels = _batches(dataset, 4)
        np.testing.assert_allclose(
            images, _np_normalize(sample.test_images, *stats), atol=1e-6)
        np.testing.assert_array_equal(labels, sample.test_labels)
        assert labels.dtype == np.int32

    def test_repeat_and_drop_remainder(self, sample, stats):
        dataset = image_data.eval_dataset(sample.test_images, sample.test_labels,
                                       32, *stats, repeat=True,
                                       drop_remainder=True)
        _, labels = _batches(dataset, 6)
        np.testing.assert_array_equal(labels[:96], sample.test_labels[:96])
        np.testing.assert_array_equal(labels[96:], sample.test_labels[:96])


@pytest.mark.skipif(not os.path.isdir(REAL),
                    reason=f"real CIFAR-10 not found at {REAL}")
class RealDataTest:

    def test_real_cifar10(self):
        arrays = cifar10.load_cifar10(REAL)
        assert arrays.train_images.shape == (50000, 32, 32, 3)
        assert arrays.test_images.shape == (10000, 32, 32, 3)
        np.testing.assert_array_equal(np.bincount(arrays.train_labels),
                                      [5000] * 10)
        (train_x, _), (valid_x, _) = image_data.search_split(arrays)
        assert len(train_x) == 45000 and len(valid_x) == 5000
