"""bin/search_cifar end to end on testdata: searches, resume, official final arcs, export, errors."""

import os
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tensorflow as tf

from enas_tf.data import cifar10
from enas_tf.data import images as image_data
from enas_tf.export import saved_model
from enas_tf.models import cifar_child
from enas_tf.search_space import known_arcs
from cifar_cli import DATA_DIR, FIXED, SPACE_OF, SPACES, run
from ptb_cli import read_arcs, read_summary

pytestmark = pytest.mark.slow  # bin/search_cifar end to end, in subprocesses

@pytest.fixture(scope="module", params=sorted(SPACES))
def search(request, tmp_path_factory):
    """A 2-epoch search; the macro one is stopped after epoch 1 and resumed."""
    space = request.param
    output_dir = str(tmp_path_factory.mktemp(space))
    args = SPACES[space] + [f"--output_dir={output_dir}", "--num_valid_images=24"]
    first = None
    if space == "macro":
        run(args + ["--num_epochs=1"])
        first = read_summary(output_dir)
    run(args + ["--num_epochs=2"])
    return space, output_dir, first


class SearchRunTest:

    def test_writes_every_file_of_the_contract(self, search):
        _, output_dir, _ = search
        for name in ("flags.cfg", "arcs.jsonl", "best_arc.txt", "best_arc.svg",
                     "summary.json"):
            assert os.path.isfile(os.path.join(output_dir, name)), name
        assert tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints"))
        events = os.listdir(os.path.join(output_dir, "tensorboard"))
        assert any(name.startswith("events.out.tfevents") for name in events)
        ET.parse(os.path.join(output_dir, "best_arc.svg"))

    def test_summary_counts_accuracies_and_single_traces(self, search):
        _, output_dir, _ = search
        summary = read_summary(output_dir)
        assert summary["mode"] == "search" and summary["epochs_done"] == 2
        assert summary["child_steps"] == 2 * 4 and summary["controller_steps"] == 2 * 2
        assert summary["valid_images"] == 24 and 0.0 <= summary["valid_acc"] <= 1.0
        assert "test_acc" not in summary
        assert summary["num_params"] > 0 and summary["child_step_seconds"] > 0
        traces = summary["traces"]
        assert set(traces) >= {"child_train_step", "child_eval_step", "sample_arc",
                               "controller_score", "controller_update", "derive_reward"}
        assert all(count == 1 for count in traces.values()), traces

    def test_best_arc_is_the_best_derived_arc(self, search):
        space, output_dir, _ = search
        summary = read_summary(output_dir)
        with open(os.path.join(output_dir, "best_arc.txt"), encoding="utf-8") as f:
            best = f.read().strip()
        assert best == summary["best_arc"]
        derived = [r for r in read_arcs(output_dir) if r["phase"] == "derive"]
        assert len(derived) == 4
        top = max(derived, key=lambda r: r["reward"])
        assert top["arc"] == best and summary["best_reward"] == pytest.approx(top["reward"])
        assert SPACE_OF[space].from_string(best) is not None

    def test_arcs_log_records_each_arcs_minibatch_accuracy(self, search):
        space, output_dir, _ = search
        records = [r for r in read_arcs(output_dir) if r["phase"] == "controller"]
        assert [r["epoch"] for r in records] == [0] * 6 + [1] * 6
        bounds = SPACE_OF[space].bounds
        max_bonus = 1e-4 * float(np.sum(np.log(bounds)))  # entropy weight x max entropy
        for r in records:
            assert r["acc"] * 8 == pytest.approx(round(r["acc"] * 8))  # of 8 images
            assert -1e-6 <= r["reward"] - r["acc"] <= max_bonus + 1e-6

    def test_flags_file_holds_the_cifar_defaults_and_the_given_flags(self, search):
        space, output_dir, _ = search
        with open(os.path.join(output_dir, "flags.cfg"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        assert f"--search_for={space}" in lines and "--child_out_filters=4" in lines
        assert "--child_optim_algo=momentum" in lines and "--child_grad_bound=5.0" in lines

    @pytest.mark.parametrize("search", ["macro"], indirect=True)  # a run costs seconds
    def test_a_rerun_resumes_where_the_last_one_stopped(self, search):
        _, output_dir, first = search
        assert first["epochs_done"] == 1 and first["child_steps"] == 4
        epochs = [r["epoch"] for r in read_arcs(output_dir) if r["phase"] == "controller"]
        assert epochs == [0] * 6 + [1] * 6


def assert_export_matches_the_checkpoint(output_dir, model):
    """The served probabilities equal the run's checkpointed model on the same images."""
    summary = read_summary(output_dir)
    metadata = saved_model.read_metadata(summary["export_path"])
    model.build((None, 32, 32, 3))
    tf.train.Checkpoint(model=model).restore(
        tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints"))).expect_partial()
    images = cifar10.load_cifar10(DATA_DIR).test_images[:6]
    logits = model(image_data.normalize(images, metadata["mean"], metadata["std"]))
    served = tf.saved_model.load(summary["export_path"]).signatures["serving_default"](
        images=tf.constant(images))
    np.testing.assert_allclose(served["probabilities"].numpy(),
                               tf.nn.softmax(logits).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(served["classes"].numpy(), np.argmax(logits, axis=-1))
    return summary, metadata


class FixedArcTest:

    def test_a_macro_net_from_a_multi_line_file_trains_tests_and_exports(self, tmp_path):
        arc_file = tmp_path / "arc.txt"
        arc_file.write_text("0\n1 1\n2 0 1\n")  # one line per layer, as published
        output_dir = str(tmp_path / "run")
        run(SPACES["macro"] + [f"--child_fixed_arc_file={arc_file}",
                               f"--output_dir={output_dir}", "--model_name=macro"] + FIXED)
        model = cifar_child.MacroChild(3, 4, fixed_arc="0 1 1 2 0 1")
        summary, metadata = assert_export_matches_the_checkpoint(output_dir, model)
        assert summary["mode"] == "fixed" and summary["controller_steps"] == 0
        assert summary["export_path"] == os.path.join(output_dir, "export", "macro", "1")
        # By default all 300 training images train: no validation split.
        assert summary["valid_acc"] is None and summary["valid_images"] == 0
        assert summary["test_images"] == 100 and 0.0 <= summary["test_acc"] <= 1.0
        assert summary["traces"] == {"child_train_step": 1, "child_eval_step": 1}
        assert metadata["arc"] == summary["best_arc"] == "0 1 1 2 0 1"
        assert metadata["flags"]["child_num_layers"] == 3
        assert metadata["metrics"]["test_acc"] == summary["test_acc"]

    def test_the_official_micro_cells_train_with_aux_head_and_drop_path(self, tmp_path):
        output_dir = str(tmp_path / "run")
        run(["--search_for=micro", "--child_num_layers=1", "--child_num_cells=5",
             "--child_out_filters=4", "--child_use_aux_heads",
             "--child_drop_path_keep_prob=0.6", "--child_cutout_size=8",
             f"--child_fixed_arc={known_arcs.CIFAR_MICRO_FINAL}",
             f"--output_dir={output_dir}"] + FIXED)
        model = cifar_child.MicroChild(1, 4, 5, use_aux_heads=True, drop_path_keep_prob=0.6,
                                       fixed_arc=known_arcs.CIFAR_MICRO_FINAL)
        summary, _ = assert_export_matches_the_checkpoint(output_dir, model)
        assert summary["best_arc"] == known_arcs.CIFAR_MICRO_FINAL
        assert summary["export_path"].endswith(os.path.join("enas_cifar10_micro", "1"))
        # Drop-path reached full strength with the last of its 1 x 2 steps.
        assert float(model.drop_path_progress) == 1.0


@pytest.fixture
def corrupt_data(tmp_path):
    directory = tmp_path / "cifar-10-batches-bin"
    shutil.copytree(os.path.join(DATA_DIR, "cifar-10-batches-bin"), directory)
    with open(directory / "data_batch_3.bin", "ab") as f:
        f.write(b"\0" * 10)
    return str(directory)


class BadInputTest:

    # One case as a shell sees it; tests/cli_flags_test.py runs the rest in-process.
    @pytest.mark.parametrize("args, message", [
        (SPACES["macro"] + ["--child_fixed_arc=7 1 1 2 0 1", "--nocontroller_training"],
         "macro arc position 0 (layer 0 op) must be in [0, 5]. Received: 7"),
    ])
    def test_one_line_error_and_nothing_written(self, tmp_path, args, message):
        output_dir = tmp_path / "out"
        result = run([f"--output_dir={output_dir}"] + args, check=False)
        assert result.returncode == 2
        last = result.stderr.strip().splitlines()[-1]
        assert message in last, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
        assert not output_dir.exists()

    def test_corrupt_data_is_a_one_line_error(self, tmp_path, corrupt_data):
        result = run(SPACES["macro"] + [f"--output_dir={tmp_path / 'out'}",
                                        f"--data_path={corrupt_data}"], check=False)
        assert result.returncode == 2
        assert "data_batch_3.bin is 184390 bytes, not a positive multiple" in (
            result.stderr.strip().splitlines()[-1])
