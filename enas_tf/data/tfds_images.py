"""Prepared tensorflow-datasets image classification sets, read offline.

Its own module so that cifar10.py (its "tfds" source) and image_sources.py
share one reader without importing each other.
"""
import numpy as np

from enas_tf.data import images as image_data


def from_tfds(name, data_dir=None):
    """Reads the train and test splits of a prepared tfds image data set.

    name is a tfds name (optionally "name/config:version"), data_dir tfds'
    data directory (its default when None). The set needs an "image" and a
    "label" (ClassLabel) feature, images of one fixed shape, and "train" and
    "test" splits; class names come from the label feature. Nothing is ever
    downloaded: a set that is not prepared is prepared from its download
    archives if the user put all of them in <data_dir>/downloads/manual
    (tfds checks their checksums), otherwise this fails naming the
    `tfds build` command to run where there is internet access. Records are
    in tfds' stored order, or sorted by their "id" feature when there is one
    (CIFAR-10's official order).
    """
    import tensorflow_datasets as tfds  # only this source needs it

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise image_data.ImageDataError(
            f"tensorflow-datasets has no data set {name!r} (neither registered nor "
            f"prepared in {data_dir or 'its default data dir'}); see "
            "https://www.tensorflow.org/datasets/catalog") from e
    if not builder.is_prepared():
        _prepare_offline(tfds, builder, name)
    features = builder.info.features
    keys = set(features.keys()) if isinstance(features, tfds.features.FeaturesDict) else set()
    image, label = (features[key] if key in keys else None for key in ("image", "label"))
    if (not isinstance(image, tfds.features.Image)
            or not isinstance(label, tfds.features.ClassLabel)):
        raise image_data.ImageDataError(
            f"tensorflow-datasets {name} has features {sorted(keys)}; an image "
            "classification set needs an 'image' Image and a 'label' ClassLabel feature")
    if None in image.shape:
        raise image_data.ImageDataError(
            f"tensorflow-datasets {name} images have varying shape {image.shape}; load it "
            "with tfds, resize, and pass the datasets to image_sources.from_dataset")
    missing = {"train", "test"} - set(builder.info.splits.keys())
    if missing:
        raise image_data.ImageDataError(
            f"tensorflow-datasets {name} has splits {sorted(builder.info.splits.keys())}; "
            "it needs 'train' and 'test'")
    arrays = []
    for split in ("train", "test"):
        data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
        # tfds shuffles records on write; ids ("train_00042") give the order.
        order = np.argsort(data["id"], kind="stable") if "id" in data else slice(None)
        arrays += [data["image"][order], data["label"][order]]
    return image_data.ImageData(*arrays, class_names=tuple(label.names), name=name)


def _prepare_offline(tfds, builder, name):
    """Prepares builder from archives in its manual dir, or fails saying how."""
    root = builder.data_dir_root
    manual = root / "downloads" / "manual"
    archives = sorted(info.filename for info in (builder.url_infos or {}).values()
                      if info.filename)
    if not archives or not all((manual / archive).exists() for archive in archives):
        offline = (f"put {', '.join(archives)} in {manual} to prepare it offline, or "
                   if archives else "")
        raise image_data.ImageDataError(
            f"tensorflow-datasets {name} is not prepared in {root}; {offline}run "
            f"`tfds build {name} --data_dir={root}` where there is internet access")
    try:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    except Exception as e:  # tfds' errors (bad checksum...) are private
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise image_data.ImageDataError(
            f"could not prepare tensorflow-datasets {name} from "
            f"{', '.join(str(manual / a) for a in archives)}: "
            f"{type(e).__name__}: {first_line}") from e
