"""presets.preset gives what the binaries build from the official flag files."""

import dataclasses

import pytest
from absl import flags
from absl.testing import flagsaver

from enas_tf.cli import search_cifar
from enas_tf.cli import search_ptb
from enas_tf.search_space import known_arcs
from enas_tf.training import presets
from enas_tf.training import run_config
from ptb_cli import ROOT

FLAGS = flags.FLAGS
_FLAG_FILES = {"ptb_search": "ptb_search", "ptb_final": "ptb_final",
               "macro_search": "cifar10_macro_search", "macro_final": "cifar10_macro_final",
               "micro_search": "cifar10_micro_search", "micro_final": "cifar10_micro_final"}
_ARCS = {"ptb": known_arcs.PTB_PAPER, "macro": known_arcs.CIFAR_MACRO_FINAL,
         "micro": known_arcs.CIFAR_MICRO_FINAL}


def _from_flag_file(name, arc, monkeypatch):
    """The RunConfig the binary builds from flags/<file>.cfg (parsed in-process)."""
    family = name.split("_")[0]
    module = search_ptb if family == "ptb" else search_cifar
    monkeypatch.chdir(ROOT)
    with flagsaver.flagsaver():
        if module is search_cifar:
            for flag, value in search_cifar._CIFAR_DEFAULTS.items():  # as its run() does
                FLAGS.set_default(flag, value)
        FLAGS(["test", f"--flagfile=flags/{_FLAG_FILES[name]}.cfg", "--output_dir=out",
               "--data_path=data"])
        return module.run_config_from_flags(arc, "out")


@pytest.mark.parametrize("name", presets.NAMES)
def test_preset_equals_its_flag_file(name, monkeypatch):
    family = name.split("_")[0]
    arc = " ".join(_ARCS[family].split()) if name.endswith("_final") else None
    from_flags = _from_flag_file(name, arc, monkeypatch)
    preset = presets.preset(name, output_dir="out", fixed_arc=from_flags.fixed_arc,
                            data=from_flags.data)
    assert preset.family == from_flags.family
    assert preset.task == from_flags.task
    assert preset.loop == from_flags.loop
    assert (preset.seed, preset.strategy, preset.num_cpu_devices, preset.fixed_arc) == (
        from_flags.seed, from_flags.strategy, from_flags.num_cpu_devices, from_flags.fixed_arc)
    if arc is None:  # a fixed-arc run builds no controller; its settings are unused
        assert preset.controller == from_flags.controller


def test_overrides_reach_task_loop_controller_and_run():
    config = presets.preset("micro_search", num_epochs=3, out_filters=8, seed=4,
                            controller_lr=0.01, search_strategy="random",
                            output_dir="runs/x")
    assert (config.task.num_epochs, config.loop.num_epochs) == (3, 3)
    assert config.task.out_filters == 8
    assert (config.seed, config.task.data_seed) == (4, 4)
    assert config.controller.lr == 0.01
    assert config.controller == dataclasses.replace(
        run_config.controller_defaults("micro"), lr=0.01)
    assert config.loop.search_strategy == "random"
    assert config.loop.export_dir == "runs/x/export"
    assert config.fixed_arc is None and config.loop.controller_training


@pytest.mark.parametrize("name, overrides, message", [
    ("nas_search", {}, "preset must be one of ptb_search, ptb_final"),
    ("micro_search", {"out_filter": 8}, "'out_filter' is not a setting of preset "
                                        "'micro_search' (allowed: "),
    ("micro_final", {}, "pass fixed_arc"),
    ("ptb_search", {"fixed_arc": known_arcs.PTB_PAPER}, "drop fixed_arc"),
    ("ptb_search", {"search_strategy": "evolution"}, "search_strategy must be one of"),
])
def test_bad_presets_and_overrides_are_one_line_errors(name, overrides, message):
    with pytest.raises(ValueError) as raised:
        presets.preset(name, **overrides)
    text = raised.value.worded({}) if hasattr(raised.value, "worded") else str(raised.value)
    assert message in text
    assert "\n" not in text
