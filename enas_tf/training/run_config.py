"""A run's configuration as one object, saved as ``config.json`` in its output directory.

Everything that rebuilds a run's task, controller and loop: the family
(``ptb``, ``macro`` or ``micro``), the task's config, the ``LoopConfig``,
the controller and REINFORCE settings, the seed, the distribution strategy,
the data location and the fixed arc (None: a search). The binaries write it
beside ``flags.cfg``; ``bin/export_child`` and library users read it back
without absl. The controller defaults of each family live here too, so a
library user (e.g. the benchmarks) gets the official settings without flags.
"""

import dataclasses
import importlib
import json
import os
import re
import typing

import keras

from enas_tf.controller import macro_controller
from enas_tf.controller import micro_controller
from enas_tf.controller import reinforce
from enas_tf.controller import rnn_controller
from enas_tf.data import cifar10
from enas_tf.data import image_sources
from enas_tf.data import ptb
from enas_tf.search_space import rnn
from enas_tf.training import cifar_task
from enas_tf.training import distribute
from enas_tf.training import errors
from enas_tf.training import ptb_task
from enas_tf.training import run_dir
from enas_tf.training import search

VERSION = 3
# Fields each version added (all with defaults): a file of an earlier version
# lacks them and takes the defaults; any other missing field is an error.
_ADDED = {2: {"DataConfig": {"dataset", "test_path", "test_fraction", "image_size",
                             "train_file", "valid_file", "test_file"},
              "CifarConfig": {"ops"}, "PtbConfig": {"activations"},
              "RunConfig": {"op_modules"}},
          3: {"ControllerConfig": {"adam_epsilon", "shared_batch"}}}
_READABLE_VERSIONS = (1, 2, 3)
FAMILIES = ("ptb", "macro", "micro")
PYTHON_DATA = "python"  # DataConfig.dataset of data given to the Python API


class RunConfigError(errors.NamesParameters, ValueError):
    """A config.json (or RunConfig) that cannot describe a run; the message is one
    line and marks the settings a binary has flags for as ``{name}``."""


@dataclasses.dataclass(frozen=True)
class ControllerConfig:
    """The controller and its REINFORCE trainer (Adam with beta1 0).

    ``adam_epsilon``: the official 1e-3 makes Adam plain SGD at lr / 1e-3
    whenever a gradient entry is far below 1e-3, which small rewards give
    (a PTB search at hidden 64: entries near 1e-6, and the policy never moved
    in 100 updates); 1e-8 (PyTorch's default) restores Adam's step of about lr.

    ``shared_batch``: the arcs of one update are all scored on one validation
    batch and each arc's advantage is its reward minus the update's mean
    reward, so which batch was drawn cancels out (measured on the PTB study:
    the batch moved a reward more than the arc did). The EMA baseline is
    still tracked and logged. Off: the official one batch per arc and EMA
    baseline.
    """

    lstm_size: int
    tanh_constant: float  # logits become c * tanh(logits)
    temperature: float  # logits are divided by this first; 0 disables
    lr: float  # Adam learning rate
    entropy_weight: float  # sample entropy added to the reward
    baseline_decay: float  # moving-average baseline of the reward
    op_tanh_reduce: float = 2.5  # micro: op logits use tanh_constant / this
    skip_target: float = 0.4  # macro: prior P(skip), target of the skip KL penalty
    skip_weight: float = 0.8  # macro: weight of the skip KL penalty
    adam_epsilon: float = 1e-3  # the official controller Adam's
    shared_batch: bool = False  # one validation batch per update, centred on its mean

    def __post_init__(self):
        if not self.adam_epsilon > 0:
            raise RunConfigError(f"controller adam_epsilon must be > 0, got {self.adam_epsilon}")


# The official scripts' settings (flags/ptb_search.cfg, the paper's PTB
# values; flags/cifar10_{macro,micro}_search.cfg, scripts/cifar10_*_search.sh
# with src/cifar10/main.py's defaults: LSTM 64, no temperature).
_CONTROLLER_DEFAULTS = {
    "ptb": ControllerConfig(lstm_size=100, tanh_constant=2.5, temperature=5.0, lr=0.00035,
                            entropy_weight=1e-4, baseline_decay=0.99),
    "macro": ControllerConfig(lstm_size=64, tanh_constant=1.5, temperature=0.0, lr=0.001,
                              entropy_weight=1e-4, baseline_decay=0.99,
                              skip_target=0.4, skip_weight=0.8),
    "micro": ControllerConfig(lstm_size=64, tanh_constant=1.10, temperature=0.0, lr=0.0035,
                              entropy_weight=1e-4, baseline_decay=0.99, op_tanh_reduce=2.5),
}


def controller_defaults(family):
    """The official search settings of ``family``'s controller."""
    _check_family(family)
    return _CONTROLLER_DEFAULTS[family]


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the run's data set is (paths as given to the binary), so a resumed
    run or an export reads it again.

    Images: ``dataset`` is one of ``image_sources.DATASETS`` ("cifar10",
    "cifar100", "folder", "tfds:<name>"), or ``PYTHON_DATA``: data handed to
    the Python API as arrays or a tf.data.Dataset, which only the caller can
    hand over again. Text: ``path`` holds the three files named here.
    """

    path: str | None = None  # text directory, CIFAR batches, class folders, or tfds data dir
    source: str = "auto"  # CIFAR-10/100: one of cifar10.DATA_SOURCES
    tfds_data_dir: str | None = None  # CIFAR-10 with source "tfds"
    dataset: str = "cifar10"  # images: see above; ignored by text runs
    test_path: str | None = None  # folder: the test split's class folders (None: split)
    test_fraction: float = 0.1  # folder without test_path: the share held out per class
    image_size: tuple | None = None  # folder: resize every image to (height, width)
    train_file: str = "ptb.train.txt"  # text: the files' names inside path
    valid_file: str = "ptb.valid.txt"
    test_file: str = "ptb.test.txt"


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One run: what to build, from which data, and where it wrote."""

    family: str  # one of FAMILIES
    task: ptb_task.PtbConfig | cifar_task.CifarConfig
    loop: search.LoopConfig
    controller: ControllerConfig  # recorded for every run; built only by ENAS searches
    data: DataConfig = DataConfig()
    seed: int = 0
    strategy: str = "none"  # one of distribute.STRATEGIES
    num_cpu_devices: int = 1
    fixed_arc: str | None = None  # official arc format; None: a search
    output_dir: str = ""  # where the run wrote (exports below it move with it)
    flags: dict | None = None  # the binary's effective flags, kept for export metadata only
    # Modules that register the run's own ops (search_space.ops.register_op),
    # imported before the space is built, so a resume or an export finds them.
    op_modules: tuple = ()

    def __post_init__(self):
        _check_family(self.family)
        import_op_modules(self.op_modules)
        want = ptb_task.PtbConfig if self.family == "ptb" else cifar_task.CifarConfig
        if not isinstance(self.task, want):
            raise RunConfigError(f"a {self.family} run needs a {want.__name__} task. "
                                 f"Received: {type(self.task).__name__}")
        if self.family != "ptb" and self.task.space != self.family:
            raise RunConfigError(f"a {self.family} run needs task.space {self.family!r}. "
                                 f"Received: {self.task.space!r}")
        if self.controller.shared_batch and self.loop.controller_num_aggregate < 2:
            raise RunConfigError("{controller_shared_batch} needs {controller_num_aggregate} "
                                 ">= 2 (one arc centred on its own reward learns nothing). "
                                 f"Received: {self.loop.controller_num_aggregate}")
        if self.strategy not in distribute.STRATEGIES:
            raise RunConfigError(f"strategy must be one of {', '.join(distribute.STRATEGIES)}. "
                                 f"Received: {self.strategy!r}")
        self.arc()  # a malformed fixed arc fails here, with its own ArcError

    def space(self):
        """The search space of the task's arcs."""
        return build_space(self.family, self.task)

    def arc(self):
        """The fixed arc as int32 numpy, or None for a search."""
        return None if self.fixed_arc is None else self.space().from_string(self.fixed_arc)

    def to_json(self):
        return dict(dataclasses.asdict(self), version=VERSION)


def import_op_modules(names):
    """Imports each module (by dotted name) that registers ops; a failure is one line."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # the user's module: any error it raises is theirs
            raise RunConfigError(f"op module {name!r} could not be imported: "
                                 f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                                 ) from None


def _check_family(family):
    if family not in FAMILIES:
        raise RunConfigError(f"family must be one of {', '.join(FAMILIES)}. "
                             f"Received: {family!r}")


def build_space(family, task_config):
    """The search space of ``family``'s arcs under ``task_config``."""
    if family == "ptb":
        return rnn.RnnSpace(task_config.num_nodes, task_config.activations)
    return cifar_task.build_space(task_config)


def default_model_name(family, dataset="cifar10"):
    """The TF Serving model name of a family's exports unless one is given:
    enas_ptb, enas_cifar10_macro, enas_mnist_micro (tfds:mnist), enas_images_macro
    (data from Python), enas_folder_micro ..."""
    if family == "ptb":
        return "enas_ptb"
    name = "images" if dataset == PYTHON_DATA else dataset.split(":")[-1]
    return f"enas_{re.sub(r'[^A-Za-z0-9_]', '_', name)}_{family}"


# Building ---------------------------------------------------------------------
def build_controller(family, task_config, settings=None):
    """``family``'s controller for ``task_config`` and its REINFORCE trainer.

    ``settings`` (a ControllerConfig) defaults to the family's official ones.
    """
    _check_family(family)
    settings = settings or controller_defaults(family)
    shaping = dict(lstm_size=settings.lstm_size, tanh_constant=settings.tanh_constant,
                   temperature=settings.temperature)
    penalty_weight = 0.0
    if family == "ptb":
        controller = rnn_controller.RnnController(
            task_config.num_nodes, activations=task_config.activations, **shaping)
    elif family == "macro":
        controller = macro_controller.MacroController(
            task_config.num_layers, task_config.num_branches,
            skip_target=settings.skip_target, ops=task_config.ops, **shaping)
        penalty_weight = settings.skip_weight
    else:
        controller = micro_controller.MicroController(
            task_config.num_cells, op_tanh_reduce=settings.op_tanh_reduce,
            ops=task_config.ops, **shaping)
    optimizer = keras.optimizers.Adam(settings.lr, beta_1=0.0, epsilon=settings.adam_epsilon)
    return controller, reinforce.Reinforce(
        controller, optimizer, baseline_decay=settings.baseline_decay,
        entropy_weight=settings.entropy_weight, penalty_weight=penalty_weight,
        centered=settings.shared_batch)


def load_data(config):
    """The run's data set, from ``config.data``."""
    data = config.data
    if data.dataset == PYTHON_DATA:
        raise RunConfigError("this run's data was given from Python: pass the same data "
                             "again (enas_tf.Search(..., data=...) or "
                             "enas_tf.Results(output_dir, data=...))")
    if config.family == "ptb":
        return ptb.load_ptb(data.path, train_file=data.train_file, valid_file=data.valid_file,
                            test_file=data.test_file)
    if data.dataset == "cifar10":
        return cifar10.load_cifar10(data.path, data.source, tfds_data_dir=data.tfds_data_dir)
    options = {"cifar100": dict(source=data.source),
               "folder": dict(test_dir=data.test_path, test_fraction=data.test_fraction,
                              image_size=data.image_size, seed=config.seed)}
    return image_sources.load(data.dataset, data.path, **options.get(data.dataset, {}))


def build_task(config, data, rng, strategy=None):
    """The run's child task (its fixed arc, if any) over ``data``."""
    task_class = ptb_task.PtbTask if config.family == "ptb" else cifar_task.CifarTask
    return task_class(config.task, data, rng, fixed_arc=config.arc(), strategy=strategy)


# Saving and loading -------------------------------------------------------------
def save(config, output_dir):
    """Writes ``output_dir``/config.json atomically."""
    run_dir.write_json(os.path.join(output_dir, run_dir.CONFIG), config.to_json())


def load(output_dir):
    """The RunConfig of ``output_dir``/config.json; RunConfigError if it is malformed.

    An export directory that was below the recorded output directory is
    moved below ``output_dir``, so a run directory can be moved or copied.
    """
    path = os.path.join(output_dir, run_dir.CONFIG)
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except OSError as e:
        raise RunConfigError(f"{path}: cannot read it ({e.strerror})") from None
    except ValueError as e:
        raise RunConfigError(f"{path}: not JSON ({e})") from None
    try:
        config = from_json(obj)
    except ValueError as e:
        raise RunConfigError(f"{path}: {e}") from None
    return _moved(config, output_dir)


def from_json(obj):
    """A RunConfig from ``to_json``'s dict; every field checked (RunConfigError)."""
    if not isinstance(obj, dict):
        raise RunConfigError(f"must be a JSON object. Received: {type(obj).__name__}")
    obj = dict(obj)
    version = obj.pop("version", None)
    if version not in _READABLE_VERSIONS:
        raise RunConfigError(f"version must be one of {', '.join(map(str, _READABLE_VERSIONS))}. "
                             f"Received: {version!r}")
    family = obj.get("family")
    _check_family(family)
    task_class = ptb_task.PtbConfig if family == "ptb" else cifar_task.CifarConfig
    optional = {}
    for added_in, fields in _ADDED.items():
        if version < added_in:
            for cls_name, names in fields.items():
                optional.setdefault(cls_name, set()).update(names)
    return _from_dict(RunConfig, obj, "", {"task": task_class}, optional)


def _from_dict(cls, obj, where, classes=None, optional=None):
    """Builds dataclass ``cls`` from ``obj``: every field of its type, no other;
    the fields ``optional`` names (per class) may be absent: the file's
    version predates them."""
    if not isinstance(obj, dict):
        raise RunConfigError(f"{where.rstrip('.') or 'config'} must be an object. "
                             f"Received: {type(obj).__name__}")
    hints = typing.get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(obj) - set(names))
    if unknown:
        raise RunConfigError(f"{where}{unknown[0]} is not a field of {cls.__name__} "
                             f"(allowed: {', '.join(names)})")
    values = {}
    for name in names:
        if name not in obj:
            if name in (optional or {}).get(cls.__name__, ()):
                continue
            raise RunConfigError(f"{where}{name} is missing")
        kind = (classes or {}).get(name, hints[name])
        if dataclasses.is_dataclass(kind):
            values[name] = _from_dict(kind, obj[name], f"{where}{name}.", None, optional)
        else:
            values[name] = _checked(obj[name], kind, f"{where}{name}")
    try:
        return cls(**values)
    except RunConfigError:
        raise
    except ValueError as e:
        raise RunConfigError(f"{where.rstrip('.') or 'config'}: {e}") from None


def _checked(value, kind, where):
    """``value`` as a JSON value of type ``kind`` (None allowed for ``X | None``)."""
    options = typing.get_args(kind) or (kind,)
    if value is None and type(None) in options:
        return None
    kind = next(option for option in options if option is not type(None))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is tuple and isinstance(value, list):  # JSON has lists only
        return tuple(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise RunConfigError(f"{where} must be {' or '.join(_type_name(o) for o in options)}. "
                         f"Received: {value!r}")


def _type_name(kind):
    return "null" if kind is type(None) else kind.__name__


def _moved(config, output_dir):
    """``config`` of a run found in ``output_dir``: an export directory that
    was inside the recorded output directory is inside ``output_dir``."""
    if not config.output_dir or os.path.abspath(config.output_dir) == os.path.abspath(output_dir):
        return config
    loop = config.loop
    if loop.export_dir:
        relative = os.path.relpath(loop.export_dir, config.output_dir)
        if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
            loop = dataclasses.replace(loop, export_dir=os.path.join(output_dir, relative))
    return dataclasses.replace(config, loop=loop, output_dir=output_dir)
