"""The Python API (enas_tf.Search / Results) on data that is not CIFAR-10:
NumPy images of another shape and class count, a tf.data.Dataset, a
prepared tfds set, a user's own op; searched, retrained, used as a plain
keras.Model and exported."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import enas_tf
from enas_tf.data import image_sources
from enas_tf.search_space import ops
from enas_tf.training import run_config

TINY_SEARCH = dict(out_filters=4, batch_size=8, eval_batch_size=20, steps_per_epoch=4,
                   controller_train_steps=2, controller_num_aggregate=2,
                   controller_lstm_size=8, derive_num_samples=3, verbose=False,
                   log_every=2, num_epochs=1, num_valid=16)
TINY_FINAL = dict(out_filters=4, batch_size=8, eval_batch_size=20, steps_per_epoch=4,
                  verbose=False, log_every=2, num_epochs=1)


def stripes(count, shape, num_classes, seed):
    """uint8 images whose class is the column band that is bright."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, count)
    images = rng.integers(0, 60, (count,) + shape).astype(np.uint8)
    band = shape[1] // num_classes
    for i, label in enumerate(labels):
        images[i, :, label * band:(label + 1) * band] += 150
    return images, labels


@pytest.fixture(scope="module", name="gray")
def _gray():
    """The README's made-up set: 3 classes of 20x20 grayscale images."""
    return image_sources.from_arrays(stripes(96, (20, 20), 3, 0), stripes(40, (20, 20), 3, 1),
                                     class_names=["left", "middle", "right"])


@pytest.fixture(scope="module", name="micro_run")
def _micro_run(gray, tmp_path_factory):
    root = tmp_path_factory.mktemp("micro")
    search = enas_tf.Search("micro_search", gray, output_dir=str(root / "search"),
                            num_layers=1, num_cells=2, use_aux_heads=True, **TINY_SEARCH)
    results = search.run()
    final = search.train_final(str(root / "final"), num_layers=1, use_aux_heads=True,
                               **TINY_FINAL)
    return search, results, final


class SearchTest:

    def test_searches_images_of_another_shape_and_class_count(self, micro_run, gray):
        search, results, _ = micro_run
        space = search.config.space()
        assert space.to_string(space.from_string(results.best_arc)) == results.best_arc
        assert 0.0 <= results.summary["valid_acc"] <= 1.0
        assert results.summary["epochs_done"] == 1
        assert {record["phase"] for record in results.arcs} >= {"controller", "derive"}
        assert results.config.data.dataset == run_config.PYTHON_DATA

    def test_a_finished_run_returns_at_once_with_the_same_results(self, micro_run):
        search, results, _ = micro_run
        mtime = os.path.getmtime(os.path.join(search.output_dir, "summary.json"))
        again = search.run()
        assert again.summary == results.summary
        assert os.path.getmtime(os.path.join(search.output_dir, "summary.json")) == mtime

    def test_final_training_reports_test_accuracy_of_the_searched_arc(self, micro_run):
        _, results, final = micro_run
        assert final.config.fixed_arc == results.best_arc
        assert final.best_arc == results.best_arc
        assert 0.0 <= final.summary["test_acc"] <= 1.0
        assert final.summary["test_images"] == 40

    def test_the_model_is_a_plain_keras_classifier(self, micro_run, gray):
        _, _, final = micro_run
        model = final.model()
        images = gray.test_images[:8]
        logits = model(images).numpy()
        assert logits.shape == (8, 3)
        # It is the trained child: its accuracy on the test split is the run's.
        predicted = np.argmax(model.predict(gray.test_images, verbose=0), axis=-1)
        assert np.mean(predicted == gray.test_labels) == pytest.approx(final.summary["test_acc"])
        model.compile(optimizer=keras.optimizers.SGD(0.05),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = [v.numpy().copy() for v in model.trainable_variables]
        history = model.fit(gray.train_images, gray.train_labels, batch_size=16, epochs=1,
                            verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert any(not np.array_equal(b, v.numpy())
                   for b, v in zip(before, model.trainable_variables))

    def test_the_export_takes_the_data_shape_and_names_the_classes(self, micro_run, gray):
        _, _, final = micro_run
        path = final.export(export_dir=os.path.join(final.output_dir, "api_export"))
        with open(os.path.join(path, "assets", "enas_metadata.json"), encoding="utf-8") as f:
            metadata = json.load(f)
        assert metadata["class_names"] == ["left", "middle", "right"]
        assert metadata["image_shape"] == [20, 20, 1]
        serve = tf.saved_model.load(path).signatures["serving_default"]
        assert serve.structured_input_signature[1]["images"].shape.as_list() == [None, 20, 20, 1]
        out = serve(images=tf.constant(gray.test_images[:8]))
        expected = np.argmax(final.model()(gray.test_images[:8]).numpy(), axis=-1)
        np.testing.assert_array_equal(out["classes"].numpy(), expected)

    def test_data_of_the_wrong_kind_is_a_one_line_error(self, gray):
        with pytest.raises(ValueError, match="a ptb run needs PtbData data, from "
                                             "enas_tf.load_text, or a DataConfig. "
                                             "Received: ImageData"):
            enas_tf.Search("ptb_search", gray)
        with pytest.raises(ValueError, match="a micro run needs ImageData data"):
            enas_tf.Search("micro_search", (gray.train_images, gray.train_labels))

    def test_results_of_python_data_need_the_data_again(self, micro_run):
        _, _, final = micro_run
        with pytest.raises(run_config.RunConfigError, match="given from Python: pass the same"):
            enas_tf.Results(final.output_dir).model()


@pytest.mark.slow
class OtherSourcesTest:

    def test_macro_search_on_a_dataset_of_odd_non_square_rgb_images(self, tmp_path):
        train = tf.data.Dataset.from_tensor_slices(stripes(48, (15, 11, 3), 4, 2))
        test = tf.data.Dataset.from_tensor_slices(stripes(12, (15, 11, 3), 4, 3))
        data = image_sources.from_dataset(train, test)
        results = enas_tf.Search("macro_search", data, output_dir=str(tmp_path),
                                 num_layers=3, **TINY_SEARCH).run()
        model = results.model()  # the search model: arc as an input
        logits = model(tf.zeros([2, 15, 11, 3]), tf.constant(
            results.config.space().from_string(results.best_arc)))
        assert logits.shape == (2, 4)

    def test_micro_search_on_a_prepared_tfds_set(self, tmp_path):
        import tensorflow_datasets as tfds
        images, labels = stripes(40, (12, 12, 1), 2, 4)
        splits = {"train": images[:32], "test": images[32:]}
        label_splits = {"train": labels[:32], "test": labels[32:]}
        tfds.dataset_builders.store_as_tfds_dataset(
            "two_stripes", "1.0.0", tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(12, 12, 1)),
                "label": tfds.features.ClassLabel(names=["a", "b"])}),
            {split: tf.data.Dataset.from_tensor_slices(
                {"image": splits[split], "label": label_splits[split]}) for split in splits},
            data_dir=str(tmp_path / "tfds"))
        config = enas_tf.preset("micro_search", output_dir=str(tmp_path / "run"),
                                num_layers=1, num_cells=2, use_aux_heads=True,
                                data=run_config.DataConfig(path=str(tmp_path / "tfds"),
                                                           dataset="tfds:two_stripes"),
                                **TINY_SEARCH)
        results = enas_tf.Search(config).run()  # the data comes from config.data
        assert results.summary["valid_images"] == 16
        # Reloadable: Results finds the data by itself.
        assert enas_tf.Results(str(tmp_path / "run")).model() is not None


@pytest.mark.slow
class CustomOpTest:
    """A user's own op, registered here, searched, drawn and exported."""

    @staticmethod
    def conv1x1(filters, strides):
        return keras.Sequential([keras.layers.Conv2D(filters, 1, strides, use_bias=False),
                                 keras.layers.BatchNormalization()])

    def test_searched_drawn_and_exported(self, gray, tmp_path):
        if "test_conv1x1" not in ops.op_names("macro"):
            ops.register_op("macro", "test_conv1x1", self.conv1x1)
        search = enas_tf.Search("macro_search", gray, output_dir=str(tmp_path / "search"),
                                num_layers=2, ops=("max_pool_3x3", "test_conv1x1"),
                                **TINY_SEARCH)
        results = search.run()
        assert search.config.task.num_branches == 2
        assert search.config.space().op_names == ("max_pool_3x3", "test_conv1x1")
        # Both ops were sampled; the chosen ones are drawn by name.
        chosen = {int(arc.split()[0]) for arc in (r["arc"] for r in results.arcs)}
        assert chosen == {0, 1}
        final = search.train_final(str(tmp_path / "final"), arc="1 1 1", **TINY_FINAL)
        with open(os.path.join(final.output_dir, "best_arc.svg"), encoding="utf-8") as f:
            assert "test_conv1x1" in f.read()
        assert os.path.isdir(final.export())
