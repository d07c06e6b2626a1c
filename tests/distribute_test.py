"""Data-parallel child training: mirrored replicas train as one device does on
the same global batch; two workers on loopback stay identical; bad strategy
flags get one line. Each strategy runs in a fresh process (logical devices
and the multi-worker runtime must be set up before TensorFlow starts)."""

import json
import math
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import ptb_cli

pytestmark = pytest.mark.slow  # mirrored runs and two-worker clusters in subprocesses

SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distribute_support.py")
TIMEOUT = 300


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_cluster(commands, tmp_path):
    """Runs command i as worker i of a loopback cluster; [(exit code, stdout, stderr)]."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(len(commands))]
    processes, results = [], []
    try:
        for index, command in enumerate(commands):
            env = dict(os.environ, TMPDIR=str(tmp_path), TF_CONFIG=json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
            processes.append(subprocess.Popen(command, env=env, cwd=ptb_cli.ROOT, text=True,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for p in processes:
            out, err = p.communicate(timeout=TIMEOUT)
            results.append((p.returncode, out, err))
        return results
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()


class MirroredTest:

    @pytest.mark.parametrize("space", ["ptb", "macro", "micro"])
    def test_two_replicas_train_as_one_device(self, space, tmp_path):
        out = tmp_path / "report.json"
        subprocess.run([sys.executable, SUPPORT, "mirrored", space, str(out)], check=True,
                       timeout=TIMEOUT, cwd=ptb_cli.ROOT, capture_output=True)
        report = json.loads(out.read_text())
        assert report["replicas"] == 2
        variables = report["variables"]
        assert all(v["replicas_equal"] for v in variables)
        assert sum(v["changed"] for v in variables if v["trainable"]) >= 3
        # Batch-norm moving variances differ by Bessel's correction only (each
        # replica's is over half the batch).
        variances = [v for v in variables if v["name"].endswith("moving_variance")]
        assert all(v["diff"] < 5e-3 for v in variances), variances
        # Everything else moved as on one device up to the order of float
        # additions: ~4e-6 of the update; more when that rounding puts a
        # pre-activation on the other side of a ReLU (~1e-3 in a third of the
        # micro runs on one AMD machine). Micro, in two full CI runs: 1.2e-2
        # and 0.10; alone ~5e-6, beside a CI run up to 5.8e-4 (the switch_case
        # graph stayed at ~5e-6 there): cause not yet known, the message
        # names the variables. A wrong sum over the replicas is off by ~0.5
        # of the update, a mean for a sum by exactly that.
        rest = [v for v in variables if v not in variances]
        diff = math.hypot(*(v["diff_norm"] for v in rest))
        update = math.hypot(*(v["update_norm"] for v in rest))
        worst = sorted(rest, key=lambda v: -v["diff_norm"])[:3]
        assert diff < 0.25 * update, (diff, update, [(v["name"], v["diff_norm"]) for v in worst])


class MultiWorkerTest:

    def test_two_workers_keep_identical_weights(self, tmp_path):
        outs = [tmp_path / f"worker{i}.npz" for i in range(2)]
        results = run_cluster([[sys.executable, SUPPORT, "worker", "5", str(out)]
                               for out in outs], tmp_path)
        assert [code for code, _, _ in results] == [0, 0], results[0][2][-3000:]
        first, second = (np.load(out) for out in outs)
        assert int(first["replicas"]) == 2 and int(first["traces"]) == 1
        afters = [k for k in first.files if k.startswith("after_")]
        for key in afters:
            np.testing.assert_array_equal(first[key], second[key])
        assert any(not np.array_equal(first[k], first[k.replace("after_", "before_")])
                   for k in afters)

    def test_workers_with_different_arcs_stop(self, tmp_path):
        results = run_cluster([[sys.executable, SUPPORT, "worker", seed,
                                str(tmp_path / f"w{seed}.npz")] for seed in ("5", "6")],
                              tmp_path)
        for code, _, err in results:
            assert code != 0 and "the workers sampled different arcs" in err

    def test_search_ptb_on_two_workers_only_the_chief_writes(self, tmp_path):
        output_dir = tmp_path / "run"
        command = [sys.executable, ptb_cli.BINARY] + ptb_cli.TINY + [
            f"--output_dir={output_dir}", "--num_epochs=1",
            "--distribution_strategy=multi_worker_mirrored"]
        results = run_cluster([command, command], tmp_path)
        assert [code for code, _, _ in results] == [0, 0], results[0][2][-3000:]
        summary = ptb_cli.read_summary(output_dir)
        assert summary["child_steps"] == 6 and summary["traces"]["child_train_step"] == 1
        # Both workers derived and evaluated with their own weights: same results.
        assert results[0][1] == results[1][1] and "valid_ppl" in results[0][1]
        # The worker's own directory was temporary and is gone.
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


class BadFlagsTest:

    @pytest.mark.parametrize("args, message", [
        (["--distribution_strategy=multi_worker_mirrored"], "needs TF_CONFIG"),
        (["--num_cpu_devices=2"], "--num_cpu_devices splits the CPU for "
                                  "--distribution_strategy=mirrored only"),
        (["--distribution_strategy=mirrored", "--num_cpu_devices=3"],
         "--batch_size=4 must be a multiple of the 3 replicas"),
    ])
    def test_one_line_error(self, tmp_path, args, message):
        env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        result = subprocess.run([sys.executable, ptb_cli.BINARY] + ptb_cli.TINY + [
            f"--output_dir={tmp_path / 'out'}"] + args, capture_output=True, text=True,
            timeout=TIMEOUT, cwd=ptb_cli.ROOT, env=env)
        assert result.returncode == 2
        assert message in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]
        assert "Traceback" not in result.stderr

    def test_unknown_strategy_lists_the_choices(self, tmp_path):
        result = ptb_cli.run_binary(os.path.join(ptb_cli.ROOT, "bin", "search_cifar"), [
            f"--output_dir={tmp_path}", "--search_for=macro",
            "--distribution_strategy=horovod"], check=False)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert "--distribution_strategy=horovod" in result.stderr
        assert "none|mirrored|multi_worker_mirrored" in result.stderr
