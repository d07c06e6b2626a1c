"""Efficient Neural Architecture Search with Keras 3 and TensorFlow 2.

The Python API (the binaries in bin/ are flags over the same calls):

- ``Search(preset, data, **settings)``: a search or a fixed-arc training,
  from a preset of the paper's runs (``PRESETS``) with your sizes; ``run()``
  it and get ``Results``; ``train_final`` its best arc.
- ``Results(output_dir, data=None)``: a run's summary, best arc, arcs,
  trained ``model()`` (a plain ``keras.Model``) and ``export()``.
- ``preset(name, **settings)``: the ``RunConfig`` a Search runs.
- Data: ``images_from_arrays``, ``images_from_dataset``,
  ``images_from_directory``, ``images_from_tfds``, ``load_images`` (any
  image size and class count, as ``ImageData``), ``load_text`` (a word-level
  corpus, PTB's file names by default).
- Your own ops: ``register_op(family, name, factory)``, then ``ops=(...)``
  (images) or ``activations=(...)`` (PTB) in a Search's settings.
"""

from enas_tf.data.image_sources import from_arrays as images_from_arrays
from enas_tf.data.image_sources import from_dataset as images_from_dataset
from enas_tf.data.image_sources import from_directory as images_from_directory
from enas_tf.data.image_sources import from_tfds as images_from_tfds
from enas_tf.data.image_sources import load as load_images
from enas_tf.data.images import ImageData
from enas_tf.data.ptb import load_ptb as load_text
from enas_tf.experiment import Results
from enas_tf.experiment import Search
from enas_tf.search_space.ops import register_op
from enas_tf.training.presets import NAMES as PRESETS
from enas_tf.training.presets import preset
from enas_tf.training.run_config import DataConfig
from enas_tf.training.run_config import RunConfig

__all__ = ["DataConfig", "ImageData", "PRESETS", "Results", "RunConfig", "Search",
           "images_from_arrays", "images_from_dataset", "images_from_directory",
           "images_from_tfds", "load_images", "load_text", "preset", "register_op"]
