"""Kill -9 a real search at several points; rerunning the command completes it."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from enas_tf.export import saved_model
from enas_tf.search_space import rnn
from ptb_cli import BINARY, ROOT, TINY, read_summary

pytestmark = pytest.mark.slow  # runs killed with SIGKILL and resumed, in subprocesses

EPOCHS = 4


def start(output_dir):
    return subprocess.Popen([sys.executable, BINARY] + TINY + [
        f"--output_dir={output_dir}", f"--num_epochs={EPOCHS}"], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(path, process, timeout=180):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert process.poll() is None, process.stderr.read()[-2000:]
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


class CrashResumeTest:

    def test_killed_runs_resume_to_a_consistent_result(self, tmp_path):
        output_dir = str(tmp_path / "run")
        ckpt = os.path.join(output_dir, "checkpoints", "ckpt-{}.index")
        kill_points = [(os.path.join(output_dir, "flags.cfg"), 1.0),  # while tracing
                       (ckpt.format(1), 0.3),  # in epoch 1
                       (ckpt.format(2), 0.05)]  # right after a checkpoint
        for path, delay in kill_points:
            process = start(output_dir)
            wait_for(path, process)
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
            process.wait()
        final = start(output_dir)
        _, stderr = final.communicate(timeout=600)
        assert final.returncode == 0, stderr[-3000:]

        summary = read_summary(output_dir)
        assert summary["epochs_done"] == EPOCHS
        assert summary["child_steps"] == EPOCHS * 6
        assert summary["controller_steps"] == EPOCHS * 2
        with open(os.path.join(output_dir, "arcs.jsonl"), encoding="utf-8") as f:
            records = [json.loads(line) for line in f]  # no torn line
        controller = [r["epoch"] for r in records if r["phase"] == "controller"]
        assert controller == sorted(controller)
        assert controller == [e for e in range(EPOCHS) for _ in range(6)]
        assert sum(r["phase"] == "derive" for r in records) == 4
        with open(os.path.join(output_dir, "best_arc.txt"), encoding="utf-8") as f:
            best = f.read().strip()
        rnn.RnnSpace(4).from_string(best)
        assert best == summary["best_arc"]
        leftovers = [n for n in os.listdir(output_dir) if n.startswith(".tmp")]
        assert not leftovers


class KilledExportTest:

    def test_a_kill_during_export_leaves_no_version_and_the_rerun_exports_one(self, tmp_path):
        output_dir, export_dir = tmp_path / "run", tmp_path / "export"
        command = [sys.executable, BINARY] + TINY + [
            f"--output_dir={output_dir}", "--num_epochs=1", "--nocontroller_training",
            "--child_fixed_arc=1 0 0 1 3 0 2", f"--export_dir={export_dir}",
            "--model_name=lm"]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        model_dir = export_dir / "lm"
        deadline = time.time() + 180
        while not (model_dir.is_dir() and any(p.name.startswith(".tmp")
                                              for p in model_dir.iterdir())):
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert saved_model.existing_versions(str(model_dir)) == []

        rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert saved_model.existing_versions(str(model_dir)) == [1]
        served = tf.saved_model.load(str(model_dir / "1")).signatures["serving_default"]
        out = served(tokens=tf.constant([[1, 2, 3]], tf.int64))
        assert out["log_probs"].shape == (1, 3, 288)  # the sample's vocabulary
        assert read_summary(output_dir)["export_path"] == str(model_dir / "1")
