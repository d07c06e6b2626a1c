"""bin/search_ptb end to end on testdata: search, resume, fixed run, export, errors."""

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tensorflow as tf
from absl.testing import flagsaver

from enas_tf.cli import export_child
from enas_tf.data import ptb
from enas_tf.export import saved_model
from enas_tf.models import ptb_child
from enas_tf.search_space import rnn
from ptb_cli import BINARY, ROOT, TINY, read_arcs, read_summary, run
from saved_model_support import session_predict

pytestmark = pytest.mark.slow  # bin/search_ptb end to end, in subprocesses

@pytest.fixture(scope="module")
def search_dir(tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("search"))
    run([f"--output_dir={output_dir}", "--num_epochs=2"])
    return output_dir


class SearchRunTest:

    def test_writes_every_file_of_the_contract(self, search_dir):
        for name in ("flags.cfg", "arcs.jsonl", "best_arc.txt", "best_arc.svg",
                     "summary.json", "vocab.txt"):
            assert os.path.isfile(os.path.join(search_dir, name)), name
        assert tf.train.latest_checkpoint(os.path.join(search_dir, "checkpoints"))
        events = os.listdir(os.path.join(search_dir, "tensorboard"))
        assert any(name.startswith("events.out.tfevents") for name in events)
        ET.parse(os.path.join(search_dir, "best_arc.svg"))

    def test_summary_counts_match_the_flags(self, search_dir):
        summary = read_summary(search_dir)
        assert summary["mode"] == "search"
        assert summary["epochs_done"] == 2
        assert summary["child_steps"] == 2 * 6
        assert summary["controller_steps"] == 2 * 2
        assert summary["child_step_seconds"] > 0
        assert summary["controller_step_seconds"] > 0
        assert summary["num_params"] > 0 and summary["wall_seconds"] > 0

    def test_every_compiled_step_traced_once(self, search_dir):
        traces = read_summary(search_dir)["traces"]
        assert set(traces) >= {"child_train_step", "child_eval_step", "sample_arc",
                               "controller_score", "controller_update"}
        assert all(count == 1 for count in traces.values()), traces

    def test_best_arc_is_the_best_derived_arc(self, search_dir):
        summary = read_summary(search_dir)
        with open(os.path.join(search_dir, "best_arc.txt"), encoding="utf-8") as f:
            best = f.read().strip()
        assert best == summary["best_arc"]
        rnn.RnnSpace(4).from_string(best)
        derived = [r for r in read_arcs(search_dir) if r["phase"] == "derive"]
        assert len(derived) == 4
        top = max(derived, key=lambda r: r["reward"])
        assert top["arc"] == best
        assert summary["best_reward"] == pytest.approx(top["reward"])
        assert summary["valid_ppl"] > 1

    def test_arcs_log_has_one_record_per_controller_arc(self, search_dir):
        records = [r for r in read_arcs(search_dir) if r["phase"] == "controller"]
        assert [r["epoch"] for r in records] == [0] * 6 + [1] * 6
        for r in records:
            assert r["reward"] == pytest.approx(80.0 / r["ppl"], rel=1e-3, abs=1e-3)

    def test_flags_file_reruns_the_same_configuration(self, search_dir):
        with open(os.path.join(search_dir, "flags.cfg"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        assert "--child_rhn_depth=4" in lines
        assert "--num_epochs=2" in lines
        assert "--controller_training" in lines


class RandomSearchTest:

    def test_searches_without_a_controller_and_exports_its_best_arc(self, tmp_path, capsys):
        output_dir, export_dir = str(tmp_path / "random"), str(tmp_path / "export")
        run([f"--output_dir={output_dir}", "--num_epochs=2", "--search_strategy=random"])
        summary = read_summary(output_dir)
        assert summary["search_strategy"] == "random"
        assert summary["controller_steps"] == 0
        # TINY: 2 controller epochs x 2 steps x 3 arcs, on 1 batch each, added to 4.
        assert summary["derive_num_samples_used"] == 4 + 2 * 2 * 3
        assert summary["validation_batches_evaluated"] == 4 + 2 * 2 * 3
        assert set(summary["traces"]) == {"child_train_step", "child_eval_step",
                                          "sample_arc", "derive_reward"}
        arcs = read_arcs(output_dir)
        assert [r["phase"] for r in arcs] == ["derive"] * 16
        assert summary["best_arc"] == max(arcs, key=lambda r: r["reward"])["arc"]
        with open(os.path.join(output_dir, "flags.cfg"), encoding="utf-8") as f:
            assert "--search_strategy=random" in f.read().split()
        with open(os.path.join(output_dir, "config.json"), encoding="utf-8") as f:
            assert json.load(f)["loop"]["search_strategy"] == "random"

        # bin/export_child exports its best arc from the shared weights (in-process).
        with flagsaver.flagsaver(), pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "argv", ["export_child", f"--output_dir={output_dir}",
                                        f"--export_dir={export_dir}", "--model_name=lm"])
            with pytest.raises(SystemExit) as exited:
                export_child.run()
        assert exited.value.code in (0, None), capsys.readouterr().err[-2000:]
        metadata = saved_model.read_metadata(os.path.join(export_dir, "lm", "1"))
        assert metadata["arc"] == summary["best_arc"]


class ResumeTest:

    def test_rerun_continues_from_the_last_checkpoint(self, tmp_path):
        output_dir = str(tmp_path / "run")
        run([f"--output_dir={output_dir}", "--num_epochs=1"])
        first = read_summary(output_dir)
        # A crash during epoch 1 could leave its records and a torn line.
        with open(os.path.join(output_dir, "arcs.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps({"epoch": 1, "phase": "controller", "arc": "x",
                                "reward": 0.0, "ppl": 1.0}) + "\n{\"epoch\": 1, \"ph")
        run([f"--output_dir={output_dir}", "--num_epochs=2"])
        second = read_summary(output_dir)
        assert first["epochs_done"] == 1 and second["epochs_done"] == 2
        assert second["child_steps"] == 12 and second["controller_steps"] == 4
        epochs = [r["epoch"] for r in read_arcs(output_dir) if r["phase"] == "controller"]
        assert epochs == [0] * 6 + [1] * 6

    def test_resumed_run_samples_the_arcs_of_an_uninterrupted_one(self, tmp_path):
        straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
        run([f"--output_dir={straight}", "--num_epochs=2"])
        run([f"--output_dir={resumed}", "--num_epochs=1"])
        run([f"--output_dir={resumed}", "--num_epochs=2"])
        a, b = read_arcs(straight), read_arcs(resumed)
        assert [r["arc"] for r in a] == [r["arc"] for r in b]
        np.testing.assert_allclose([r["reward"] for r in a], [r["reward"] for r in b],
                                   rtol=1e-4)

    def test_reset_output_dir_starts_over(self, tmp_path):
        output_dir = str(tmp_path / "run")
        run([f"--output_dir={output_dir}", "--num_epochs=1"])
        run([f"--output_dir={output_dir}", "--num_epochs=1", "--reset_output_dir"])
        assert read_summary(output_dir)["child_steps"] == 6


class FixedArcTest:

    def test_trains_evaluates_and_exports_what_it_trained(self, tmp_path):
        output_dir, export_dir = str(tmp_path / "fixed"), str(tmp_path / "export")
        arc = "1 0 0 1 3 0 2"
        run([f"--output_dir={output_dir}", "--num_epochs=2", f"--child_fixed_arc={arc}",
             "--nocontroller_training", f"--export_dir={export_dir}", "--model_name=lm"])
        summary = read_summary(output_dir)
        assert summary["mode"] == "fixed" and summary["best_arc"] == arc
        assert summary["test_ppl"] > 1 and summary["valid_ppl"] > 1
        assert summary["controller_steps"] == 0
        assert summary["export_path"] == os.path.join(export_dir, "lm", "1")
        metadata = saved_model.read_metadata(summary["export_path"])
        assert metadata["arc"] == arc and metadata["flags"]["child_rhn_depth"] == 4

        # The in-process model restored from the run's checkpoint...
        vocab = ptb.Vocabulary.load(os.path.join(output_dir, "vocab.txt"))
        model = ptb_child.PtbChild(vocab.size, 8, 4, fixed_arc=arc)
        model(tf.zeros([1, 1], tf.int32), model.initial_state(1))
        tf.train.Checkpoint(model=model).restore(
            tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints"))
        ).expect_partial()
        tokens = np.random.default_rng(0).integers(0, vocab.size, size=(3, 7))
        logits, state, _ = model(tf.constant(tokens, tf.int32), model.initial_state(3))
        # ...gives the same log-probabilities as the export.
        served = tf.saved_model.load(summary["export_path"]).signatures["serving_default"](
            tokens=tf.constant(tokens, tf.int64))
        np.testing.assert_allclose(served["log_probs"].numpy(),
                                   tf.nn.log_softmax(logits).numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(served["final_state"].numpy(), state.numpy(),
                                   rtol=1e-5, atol=1e-6)
        # The way TF Serving's C++ server loads: a graph-mode session that
        # feeds and fetches the signature's tensor names.
        np.testing.assert_allclose(
            session_predict(summary["export_path"], {"tokens": tokens})["log_probs"],
            served["log_probs"].numpy(), rtol=1e-5, atol=1e-5)

    def test_second_export_gets_the_next_version(self, tmp_path):
        export_dir = str(tmp_path / "export")
        for i in range(2):
            run([f"--output_dir={tmp_path / str(i)}", "--num_epochs=1",
                 "--child_fixed_arc=1 0 0 1 3 0 2", "--nocontroller_training",
                 f"--export_dir={export_dir}", "--model_name=lm"])
        assert saved_model.existing_versions(os.path.join(export_dir, "lm")) == [1, 2]
        assert [n for n in os.listdir(os.path.join(export_dir, "lm"))
                if n.startswith(".tmp")] == []


class BadInputTest:

    # One case as a shell sees it; tests/cli_flags_test.py runs the rest in-process.
    @pytest.mark.parametrize("args, message", [
        (["--child_fixed_arc=1 0 0 1 9 0 2", "--nocontroller_training"],
         "ptb arc position 4 (node 2 activation) must be in [0, 3]. Received: 9"),
    ])
    def test_one_line_error_and_nothing_written(self, tmp_path, args, message):
        output_dir = tmp_path / "out"
        result = run([f"--output_dir={output_dir}"] + args, check=False)
        assert result.returncode == 2
        last = result.stderr.strip().splitlines()[-1]
        assert message in last, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
        assert not output_dir.exists()

    def test_a_second_run_on_a_live_output_dir_is_refused(self, tmp_path):
        output_dir = tmp_path / "run"
        first = subprocess.Popen([sys.executable, BINARY] + TINY + [
            f"--output_dir={output_dir}", "--num_epochs=1000"], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while not (output_dir / "flags.cfg").exists() and time.time() < deadline:
                time.sleep(0.5)
            result = run([f"--output_dir={output_dir}", "--reset_output_dir"], check=False)
            assert result.returncode == 2
            assert f"in use by another run (pid {first.pid})" in result.stderr.splitlines()[-1]
            assert first.poll() is None and (output_dir / "flags.cfg").exists()
        finally:
            first.kill()
            first.wait()

    def test_checkpoint_of_another_model_is_refused_and_left_alone(self, tmp_path):
        output_dir = tmp_path / "run"
        run([f"--output_dir={output_dir}", "--num_epochs=1"])
        def files():  # every file below it; the lock records whichever process last took it
            return {str(p.relative_to(output_dir)): p.read_bytes()
                    for p in output_dir.rglob("*") if p.is_file() and p.name != ".lock"}
        before = files()
        result = run([f"--output_dir={output_dir}", "--num_epochs=2",
                      "--child_lstm_hidden_size=16"], check=False)
        assert result.returncode == 2
        last = result.stderr.strip().splitlines()[-1]
        assert "holds a checkpoint of a different model" in last and "Traceback" not in result.stderr
        assert files() == before

    def test_out_of_range_flag_names_the_bound(self, tmp_path):
        result = run([f"--output_dir={tmp_path}", "--child_lstm_x_keep=1.5"], check=False)
        assert result.returncode != 0
        assert "child_lstm_x_keep" in result.stderr and "1.5" in result.stderr
