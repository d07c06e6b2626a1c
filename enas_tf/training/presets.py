"""The paper's runs as named presets: what ``flags/*.cfg`` give the binaries, for Python.

``preset("micro_search", num_epochs=3, out_filters=8)`` is the RunConfig
that ``bin/search_cifar --flagfile=flags/cifar10_micro_search.cfg
--num_epochs=3 --child_out_filters=8`` runs (a test compares every preset
with its flag file). Overrides are named like the config fields they set:
the task's (``PtbConfig``/``CifarConfig``: ``hidden_size``, ``out_filters``,
``batch_size`` ...), the loop's (``LoopConfig``: ``num_epochs``,
``controller_train_steps``, ``search_strategy`` ...), the controller's with
``controller_`` in front (``controller_lr``, ``controller_tanh_constant``
...) and the run's own (``seed``, ``output_dir``, ``fixed_arc``, ``data``,
``strategy``, ``num_cpu_devices``). ``num_epochs`` sets both the loop and a
CIFAR task (its drop-path schedule), ``seed`` both the run and a CIFAR
task's data order, as the binaries do.
"""

import dataclasses
import os

from enas_tf.models import ptb_child
from enas_tf.training import cifar_task
from enas_tf.training import errors
from enas_tf.training import ptb_task
from enas_tf.training import run_config
from enas_tf.training import search


class PresetError(errors.NamesParameters, ValueError):
    """An unknown preset or override; the message is one line."""


# Each preset: family, then the fields that differ from the dataclass defaults,
# as flags/<file>.cfg sets them (the file named in the comment).
_PRESETS = {
    # flags/ptb_search.cfg
    "ptb_search": ("ptb", dict(
        keep_probs=ptb_child.KeepProbs(embedding=0.75, inputs=0.25, state=0.75, outputs=0.25),
        num_epochs=150, controller_train_steps=200)),
    # flags/ptb_final.cfg
    "ptb_final": ("ptb", dict(
        hidden_size=748,
        keep_probs=ptb_child.KeepProbs(embedding=0.79, inputs=0.25, state=0.75, outputs=0.24),
        lr_dec_min=0.001, l2_reg=5e-7, slowness_reg=0.001, num_epochs=150)),
    # flags/cifar10_macro_search.cfg
    "macro_search": ("macro", dict(
        num_epochs=310, controller_train_steps=50, controller_num_aggregate=20)),
    # flags/cifar10_macro_final.cfg
    "macro_final": ("macro", dict(
        num_layers=24, out_filters=96, num_branches=4, keep_prob=0.5, batch_size=100,
        num_valid=0, lr_min=0.001, l2_reg=2e-4, num_epochs=310)),
    # flags/cifar10_micro_search.cfg
    "micro_search": ("micro", dict(
        num_layers=6, out_filters=20, num_branches=5, drop_path_keep_prob=0.6,
        use_aux_heads=True, batch_size=160, l2_reg=1e-4, num_epochs=150,
        controller_train_steps=30)),
    # flags/cifar10_micro_final.cfg
    "micro_final": ("micro", dict(
        num_layers=15, num_branches=5, keep_prob=0.8, drop_path_keep_prob=0.6,
        use_aux_heads=True, cutout_size=16, batch_size=144, num_valid=0, lr_min=1e-4,
        l2_reg=2e-4, num_epochs=630)),
}
NAMES = tuple(_PRESETS)
# The official programs' loop defaults, under every preset (a final run records them unused).
_OFFICIAL_LOOP = dict(controller_train_steps=100, controller_num_aggregate=10,
                      derive_num_samples=100)
_RUN_FIELDS = ("seed", "strategy", "num_cpu_devices", "fixed_arc", "output_dir", "data",
               "op_modules")
_CONTROLLER_PREFIX = "controller_"


def preset(name, **overrides):
    """The RunConfig of preset ``name`` (one of NAMES) with ``overrides``.

    A ``*_final`` preset trains one architecture: give ``fixed_arc`` (the
    official string, e.g. a search's best arc). ``output_dir`` defaults to
    ``outputs/<name>``, exports go below it (``export_dir``).
    """
    if name not in _PRESETS:
        raise PresetError(f"{{preset}} must be one of {', '.join(NAMES)}. Received: {name!r}")
    family, settings = _PRESETS[name]
    final = name.endswith("_final")
    if final and overrides.get("fixed_arc") is None:
        raise PresetError(f"preset {name!r} trains a fixed architecture: pass {{fixed_arc}}, "
                          "e.g. a search's best arc")
    if not final and overrides.get("fixed_arc") is not None:
        raise PresetError(f"preset {name!r} searches: drop {{fixed_arc}}, or use "
                          f"{family}_final to train one architecture")
    values = {**_OFFICIAL_LOOP, **settings, **overrides}
    if overrides.get("ops") is not None and "num_branches" not in overrides:
        values["num_branches"] = len(overrides["ops"])  # the preset's count is the official ops'
    for key in ("ops", "activations", "op_modules"):  # tuples, as config.json reads them
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    task_class = ptb_task.PtbConfig if family == "ptb" else cifar_task.CifarConfig
    task_fields = _field_names(task_class)
    loop_fields = _field_names(search.LoopConfig)
    controller_fields = _field_names(run_config.ControllerConfig)
    task, loop, controller, run = {}, {}, {}, {}
    if family != "ptb":
        task["space"] = family
        if "seed" in values:
            task["data_seed"] = values["seed"]
    for key, value in values.items():
        known = False
        if key in task_fields and key != "space":
            task[key], known = value, True
        if key in loop_fields:
            loop[key], known = value, True
        if key.startswith(_CONTROLLER_PREFIX) and key[len(_CONTROLLER_PREFIX):] in controller_fields:
            controller[key[len(_CONTROLLER_PREFIX):]], known = value, True
        if key in _RUN_FIELDS:
            run[key], known = value, True
        if not known:
            allowed = sorted(task_fields - {"space"} | loop_fields | set(_RUN_FIELDS)
                             | {_CONTROLLER_PREFIX + f for f in controller_fields})
            raise PresetError(f"{key!r} is not a setting of preset {name!r} "
                              f"(allowed: {', '.join(allowed)})")
    output_dir = run.setdefault("output_dir", os.path.join("outputs", name))
    loop.setdefault("controller_training", not final)
    loop.setdefault("export_dir", os.path.join(output_dir, "export"))
    loop.setdefault("model_name", run_config.default_model_name(family))
    try:
        return run_config.RunConfig(
            family=family, task=task_class(**task), loop=search.LoopConfig(**loop),
            controller=dataclasses.replace(run_config.controller_defaults(family), **controller),
            **run)
    except TypeError as e:  # a value of the wrong kind reaches a dataclass
        raise PresetError(f"preset {name!r}: {e}") from None


def _field_names(cls):
    return {field.name for field in dataclasses.fields(cls)}
