"""The Python API: define a run from a preset, data and sizes; run it; read it; use it.

    search = enas_tf.Search("micro_search", data, output_dir="runs/mine",
                            num_epochs=2, out_filters=8)
    results = search.run()              # resumes if runs/mine holds this run
    results.best_arc, results.summary, results.arcs
    final = search.train_final("runs/mine_final", num_epochs=4)
    final.summary["test_acc"]
    model = final.model()               # a plain keras.Model (images -> logits)
    final.export()                      # SavedModel in TF Serving's layout

The binaries build the same RunConfig from flags and call the same
``runner.run``: a run started here is resumed by the binary and the other
way round, and ``bin/export_child`` exports it (given its data).
"""

import dataclasses
import os

import tensorflow as tf

from enas_tf.data import images
from enas_tf.data import ptb
from enas_tf.export import run_export
from enas_tf.models import image_classifier
from enas_tf.training import presets
from enas_tf.training import run_config
from enas_tf.training import run_dir
from enas_tf.training import runner

# What an arc's meaning depends on: a final training keeps the search's values.
_SPACE_FIELDS = {"ptb": ("num_nodes", "activations"),
                 "macro": ("num_layers", "num_branches", "ops"),
                 "micro": ("num_cells", "num_branches", "ops")}


class Search:
    """A search (or fixed-arc training) over ``data``: a preset with overrides,
    or a whole ``RunConfig``.

    ``preset`` is one of ``presets.NAMES`` ("ptb_search", "micro_final" ...)
    and ``overrides`` its settings (see ``presets.preset``). ``data`` is a
    loaded data set (``ImageData``, ``PtbData``: the run records that it came
    from Python, and a resume or export needs it again), or a ``DataConfig``
    naming files the run reads itself (recorded: the binaries can resume
    and export it), or None (the config's own ``data``).
    """

    def __init__(self, preset, data=None, **overrides):
        if isinstance(preset, run_config.RunConfig):
            if overrides:
                raise presets.PresetError("a RunConfig is complete: give overrides with a "
                                          "preset name, or change the config with "
                                          "dataclasses.replace")
            self.config = preset
        else:
            self.config = presets.preset(preset, **overrides)
        if isinstance(data, run_config.DataConfig):
            self.config, data = dataclasses.replace(self.config, data=data), None
        elif data is not None:
            _check_data(self.config.family, data)
            # Data handed over in memory: a resume or export needs it handed over again.
            self.config = dataclasses.replace(
                self.config, data=run_config.DataConfig(dataset=run_config.PYTHON_DATA))
        self.data = data
        family, loop = self.config.family, self.config.loop
        if loop.model_name == run_config.default_model_name(family):  # not chosen: name the data
            self.config = dataclasses.replace(self.config, loop=dataclasses.replace(
                loop, model_name=run_config.default_model_name(family, self.config.data.dataset)))

    @property
    def output_dir(self):
        return self.config.output_dir

    def run(self, reset_output_dir=False):
        """Runs to the end (or resumes; a finished run returns at once): Results."""
        runner.run(self.config, self.data, reset_output_dir=reset_output_dir)
        return self.results()

    def results(self):
        """The Results of this run's directory, as far as it has got."""
        return Results(self.output_dir, self.data)

    def train_final(self, output_dir, arc=None, preset=None, **overrides):
        """Trains ``arc`` (default: this search's best arc) from scratch with
        ``preset`` (default: the family's ``*_final``) and ``overrides``, on the
        same data; returns its Results. The space (PTB nodes and activations,
        macro layers and ops, micro cells and ops) is this search's unless
        overridden."""
        family = self.config.family
        arc = arc if arc is not None else self.results().best_arc
        if arc is None:
            raise run_export.RunExportError(f"{{output_dir}}={self.output_dir} has no best "
                                            "arc yet: run the search first, or give {arc}")
        space = {name: getattr(self.config.task, name) for name in _SPACE_FIELDS[family]}
        settings = {**space, "seed": self.config.seed,
                    "op_modules": self.config.op_modules, **overrides}
        config = presets.preset(preset or f"{family}_final", fixed_arc=arc,
                                output_dir=output_dir, **settings)
        return Search(dataclasses.replace(config, data=self.config.data), self.data).run()


def _check_data(family, data):
    expected = ptb.PtbData if family == "ptb" else images.ImageData
    if not isinstance(data, expected):
        source = ("enas_tf.load_text" if family == "ptb"
                  else "enas_tf.images_from_arrays (or another images_from_*)")
        raise presets.PresetError(f"a {family} run needs {expected.__name__} data, from "
                                  f"{source}, or a DataConfig. Received: {type(data).__name__}")


class Results:
    """What a run directory holds: its config, summary, arcs, and trained child."""

    def __init__(self, output_dir, data=None):
        self.output_dir, self._data = output_dir, data
        self.config = run_config.load(output_dir)

    @property
    def summary(self):
        """summary.json: the run's metrics, arcs and timings ({} before its first epoch)."""
        path = os.path.join(self.output_dir, run_dir.SUMMARY)
        return run_dir.read_json(path) if os.path.exists(path) else {}

    @property
    def best_arc(self):
        """The derived (search) or trained (fixed) arc, official format, or None."""
        return self.summary.get("best_arc")

    @property
    def arcs(self):
        """Every arc the run scored, in order (arcs.jsonl): epoch, phase, arc,
        reward or metric (and the controller's entropy)."""
        return run_dir.ArcLog(self.output_dir).read()

    def model(self):
        """The trained child with its latest checkpoint's weights.

        Image runs: an ``ImageClassifier`` (raw pixels -> logits) around a fixed
        child; a search's shared-weight model needs the arc at each call, so
        it is returned as is (``model(images, arc)``, normalised images). PTB
        runs: the language model (``PtbChild``; tokens and state in).
        """
        task = self._restored_task()
        if self.config.family == "ptb" or self.config.fixed_arc is None:
            return task.model
        return image_classifier.ImageClassifier(task.model, task.mean, task.std)

    def export(self, arc=None, supernet=False, export_dir=None, model_name=None):
        """Exports the trained child (see ``run_export``); returns the version's path."""
        loop = dataclasses.replace(
            self.config.loop, export_dir=export_dir or self.config.loop.export_dir,
            model_name=model_name or self.config.loop.model_name)
        return run_export.export_run(dataclasses.replace(self.config, loop=loop),
                                     self.output_dir, data=self._data, arc_text=arc,
                                     supernet=supernet)

    def _restored_task(self):
        checkpoint = run_export.latest_checkpoint(self.output_dir)
        task = run_config.build_task(
            self.config, run_export.run_data(self.config, self.output_dir, self._data),
            tf.random.Generator.from_seed(self.config.seed))
        run_export.restore(task, checkpoint, run_dir.CONFIG)
        return task
