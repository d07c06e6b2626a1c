"""The run configuration: saved as config.json, loaded back without absl, checked."""

import dataclasses
import json
import os
import sys

import pytest
import tensorflow as tf

from enas_tf.data import cifar10
from enas_tf.models import ptb_child
from enas_tf.search_space import known_arcs
from enas_tf.training import cifar_task
from enas_tf.training import distribute
from enas_tf.training import ptb_task
from enas_tf.training import run_config
from enas_tf.training import run_dir
from enas_tf.training import search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")


def ptb_run(output_dir, **changes):
    return run_config.RunConfig(
        family="ptb",
        task=ptb_task.PtbConfig(num_nodes=4, hidden_size=8, batch_size=4, bptt=5,
                                keep_probs=ptb_child.KeepProbs(0.75, 0.25, 0.75, 0.25)),
        loop=search.LoopConfig(num_epochs=2, controller_num_aggregate=4,
                               controller_batch_arcs=2,
                               export_dir=os.path.join(output_dir, "export"), model_name="lm"),
        controller=run_config.controller_defaults("ptb"),
        data=run_config.DataConfig(path=os.path.join(ROOT, "testdata", "ptb")),
        seed=3, output_dir=output_dir, flags={"child_rhn_depth": 4}, **changes)


def cifar_run(space, output_dir, fixed_arc=None):
    return run_config.RunConfig(
        family=space,
        task=cifar_task.CifarConfig(space=space, num_layers=2 if space == "micro" else 24,
                                    out_filters=4, num_branches=5 if space == "micro" else 4,
                                    batch_size=8, num_valid=0 if fixed_arc else 24),
        loop=search.LoopConfig(export_dir="/elsewhere/export"),
        controller=dataclasses.replace(run_config.controller_defaults(space), lr=0.01),
        data=run_config.DataConfig(path=os.path.join(ROOT, "testdata", "cifar10"),
                                   source="binary"),
        strategy="mirrored", num_cpu_devices=2, fixed_arc=fixed_arc, output_dir=output_dir)


class RoundTripTest:

    @pytest.mark.parametrize("make", [
        lambda d: ptb_run(d),
        lambda d: ptb_run(d, fixed_arc="1 0 0 1 3 0 2"),
        lambda d: cifar_run("macro", d, " ".join(known_arcs.CIFAR_MACRO_FINAL.split())),
        lambda d: cifar_run("micro", d),
        lambda d: dataclasses.replace(ptb_run(d), loop=dataclasses.replace(
            ptb_run(d).loop, search_strategy="random")),
        lambda d: dataclasses.replace(  # tuples (ops, image_size) come back as tuples
            cifar_run("macro", d), data=run_config.DataConfig(
                path="images", dataset="folder", image_size=(20, 12), test_fraction=0.2),
            task=dataclasses.replace(cifar_run("macro", d).task, num_branches=2,
                                     ops=("max_pool_3x3", "conv_3x3"))),
        lambda d: dataclasses.replace(ptb_run(d), task=dataclasses.replace(
            ptb_run(d).task, activations=("relu", "tanh"))),
    ])
    def test_save_then_load_gives_the_same_config(self, tmp_path, make):
        config = make(str(tmp_path))
        run_config.save(config, str(tmp_path))
        assert run_config.load(str(tmp_path)) == config
        assert json.loads((tmp_path / "config.json").read_text())["version"] == 3

    def test_a_version_1_file_loads_with_the_later_fields_defaults(self, tmp_path):
        config = cifar_run("micro", str(tmp_path))
        obj = config.to_json()
        obj["version"] = 1
        for name in ("dataset", "test_path", "test_fraction", "image_size", "train_file",
                     "valid_file", "test_file"):
            del obj["data"][name]
        del obj["task"]["ops"]
        del obj["controller"]["adam_epsilon"], obj["controller"]["shared_batch"]
        (tmp_path / "config.json").write_text(json.dumps(obj))
        assert run_config.load(str(tmp_path)) == config

    def test_a_version_2_file_loads_with_the_official_controller_settings(self, tmp_path):
        config = ptb_run(str(tmp_path))
        obj = config.to_json()
        obj["version"] = 2
        del obj["controller"]["adam_epsilon"], obj["controller"]["shared_batch"]
        (tmp_path / "config.json").write_text(json.dumps(obj))
        controller = run_config.load(str(tmp_path)).controller
        assert controller.adam_epsilon == 1e-3 and controller.shared_batch is False
        obj["version"] = 3
        (tmp_path / "config.json").write_text(json.dumps(obj))
        with pytest.raises(run_config.RunConfigError, match="controller.adam_epsilon is missing"):
            run_config.load(str(tmp_path))

    def test_the_reloaded_ptb_config_rebuilds_the_same_task(self, tmp_path):
        config = ptb_run(str(tmp_path), fixed_arc="1 0 0 1 3 0 2")
        run_config.save(config, str(tmp_path))
        loaded = run_config.load(str(tmp_path))
        task = run_config.build_task(loaded, run_config.load_data(loaded),
                                     tf.random.Generator.from_seed(loaded.seed))
        assert task.space.arc_length == 7 == config.space().arc_length
        assert task.space.to_string(task.fixed_arc) == "1 0 0 1 3 0 2"

    def test_the_reloaded_macro_config_rebuilds_the_same_task(self, tmp_path):
        config = cifar_run("macro", str(tmp_path),
                           " ".join(known_arcs.CIFAR_MACRO_FINAL.split()))
        run_config.save(config, str(tmp_path))
        loaded = run_config.load(str(tmp_path))
        task = run_config.build_task(loaded, cifar10.load_cifar10(loaded.data.path),
                                     tf.random.Generator.from_seed(0))
        assert task.space.arc_length == config.space().arc_length == 24 * 25 // 2
        assert task.space.to_string(task.fixed_arc) == config.fixed_arc

    def test_an_export_inside_a_moved_run_moves_with_it(self, tmp_path):
        config = ptb_run(str(tmp_path / "old"))
        os.makedirs(tmp_path / "new")
        run_config.save(config, str(tmp_path / "new"))
        loaded = run_config.load(str(tmp_path / "new"))
        assert loaded.loop.export_dir == os.path.join(str(tmp_path / "new"), "export")
        # One outside the run directory stays where it was.
        run_config.save(cifar_run("micro", str(tmp_path / "old")), str(tmp_path / "new"))
        assert run_config.load(str(tmp_path / "new")).loop.export_dir == "/elsewhere/export"


class MalformedTest:

    def _write(self, tmp_path, change):
        obj = ptb_run(str(tmp_path)).to_json()
        change(obj)
        (tmp_path / "config.json").write_text(json.dumps(obj))

    @pytest.mark.parametrize("change, message", [
        (lambda o: o.update(version=4), "version must be one of 1, 2, 3. Received: 4"),
        (lambda o: o.pop("version"), "version must be one of 1, 2, 3. Received: None"),
        (lambda o: o["data"].pop("dataset"), "data.dataset is missing"),
        (lambda o: o["task"].pop("activations"), "task.activations is missing"),
        (lambda o: o.update(family="rnn"),
         "family must be one of ptb, macro, micro. Received: 'rnn'"),
        (lambda o: o["task"].update(hidden_size="8"),
         "task.hidden_size must be int. Received: '8'"),
        (lambda o: o["task"].update(hidden_size=True),
         "task.hidden_size must be int. Received: True"),
        (lambda o: o["task"]["keep_probs"].pop("state"), "task.keep_probs.state is missing"),
        (lambda o: o["loop"].update(epochs=3), "loop.epochs is not a field of LoopConfig"),
        (lambda o: o["loop"].update(controller_batch_arcs=3), "loop: "),
        (lambda o: o["loop"].update(search_strategy="evolution"),
         "loop: search_strategy must be one of enas, random. Received: 'evolution'"),
        (lambda o: o.update(controller=[]), "controller must be an object. Received: list"),
        (lambda o: o.update(fixed_arc="1 0 0"), "ptb arc must have 7 integers"),
        (lambda o: o.update(strategy="horovod"),
         "strategy must be one of none, mirrored, multi_worker_mirrored"),
        (lambda o: o.update(task=dict(cifar_task.CifarConfig().__dict__)),
         "is not a field of PtbConfig (allowed: num_nodes"),
    ])
    def test_one_line_error_naming_the_file_and_the_field(self, tmp_path, change, message):
        self._write(tmp_path, change)
        with pytest.raises(run_config.RunConfigError) as raised:
            run_config.load(str(tmp_path))
        text = str(raised.value)
        assert text.startswith(os.path.join(str(tmp_path), "config.json") + ": ")
        assert message in text and "\n" not in text

    def test_a_file_that_is_not_json(self, tmp_path):
        (tmp_path / "config.json").write_text('{"version": 1, "family": ')
        with pytest.raises(run_config.RunConfigError, match=r"config.json: not JSON \("):
            run_config.load(str(tmp_path))

    def test_a_cifar_task_of_the_other_space(self, tmp_path):
        obj = cifar_run("macro", str(tmp_path)).to_json()
        obj["family"] = "micro"
        (tmp_path / "config.json").write_text(json.dumps(obj))
        with pytest.raises(run_config.RunConfigError,
                           match="a micro run needs task.space 'micro'. Received: 'macro'"):
            run_config.load(str(tmp_path))


class ControllerTest:

    @pytest.mark.parametrize("family, lr, tanh, temperature, lstm, penalty", [
        ("ptb", 0.00035, 2.5, 5.0, 100, 0.0),
        ("macro", 0.001, 1.5, 0.0, 64, 0.8),
        ("micro", 0.0035, 1.10, 0.0, 64, 0.0),
    ])
    def test_each_family_gets_the_official_settings(self, family, lr, tanh, temperature,
                                                    lstm, penalty):
        task = (ptb_task.PtbConfig(num_nodes=4) if family == "ptb"
                else cifar_task.CifarConfig(space=family, num_layers=3))
        controller, trainer = run_config.build_controller(family, task)
        assert trainer.optimizer.learning_rate.numpy() == pytest.approx(lr)
        assert (controller.tanh_constant, controller.temperature) == (tanh, temperature)
        assert controller.lstm_size == lstm and trainer.penalty_weight == penalty
        assert trainer.entropy_weight == 1e-4 and trainer.baseline_decay == 0.99

    def test_given_settings_replace_the_defaults(self):
        settings = dataclasses.replace(run_config.controller_defaults("macro"), lr=0.5,
                                       skip_target=0.25, skip_weight=0.1)
        controller, trainer = run_config.build_controller(
            "macro", cifar_task.CifarConfig(num_layers=3), settings)
        assert trainer.optimizer.learning_rate.numpy() == pytest.approx(0.5)
        assert controller.skip_target == 0.25 and trainer.penalty_weight == 0.1

    @pytest.mark.skipif(not os.path.isdir(BENCH), reason="bench/ is not beside the tests")
    def test_the_benchmarks_cifar_controllers_use_the_official_learning_rates(self):
        sys.path.insert(0, BENCH)
        try:
            import setups  # pylint: disable=import-outside-toplevel
        finally:
            sys.path.remove(BENCH)
        for space, lr in (("macro", 0.001), ("micro", 0.0035)):
            config = setups.cifar_config(space, 3, 4, 8, num_images=300)
            _, trainer = setups.cifar_controller(config)
            assert trainer.optimizer.learning_rate.numpy() == pytest.approx(lr)
        _, trainer = setups.ptb_controller(4)
        assert trainer.optimizer.learning_rate.numpy() == pytest.approx(0.00035)


class ErrorWordingTest:
    """Library errors name parameters; a binary words them with its flags."""

    def test_a_strategy_error_names_parameters_and_is_worded_with_flags(self):
        with pytest.raises(distribute.DistributionError) as raised:
            distribute.build_strategy("none", num_cpu_devices=2)
        assert str(raised.value) == ("num_cpu_devices splits the CPU for strategy=mirrored "
                                     "only. Received: strategy=none")
        assert raised.value.worded({"num_cpu_devices": "--num_cpu_devices",
                                    "strategy": "--distribution_strategy"}) == (
            "--num_cpu_devices splits the CPU for --distribution_strategy=mirrored only. "
            "Received: --distribution_strategy=none")

    def test_a_busy_output_dir_names_no_flag(self, tmp_path):
        run_dir.prepare(str(tmp_path), reset=False)
        with pytest.raises(run_dir.OutputDirBusyError) as raised:
            run_dir.prepare(str(tmp_path), reset=False)
        assert "--" not in str(raised.value)
        assert str(raised.value).startswith(f"output_dir={tmp_path} is in use")
