"""Runs bin/search_ptb (and the other launchers) as a user does, at a tiny size, for the end-to-end tests."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "bin", "search_ptb")
TINY = [
    f"--data_path={os.path.join(ROOT, 'testdata', 'ptb')}",
    "--child_rhn_depth=4", "--child_lstm_hidden_size=8", "--batch_size=4",
    "--child_bptt_steps=5", "--child_steps_per_epoch=6", "--eval_batch_size=20",
    "--controller_train_steps=2", "--controller_num_aggregate=3",
    "--controller_lstm_size=8", "--derive_num_samples=4", "--child_lr=1.0",
    "--noverbose", "--log_every=2",
]


def run(args, check=True):
    return run_binary(BINARY, TINY + args, check)


def run_binary(binary, args, check=True):
    """Runs a launcher of bin/ from the repository root; fails on a non-zero exit if ``check``."""
    result = subprocess.run([sys.executable, binary] + args, capture_output=True,
                            text=True, timeout=600, cwd=ROOT)
    if check and result.returncode:
        raise AssertionError(f"exit {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def read_summary(output_dir):
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def read_arcs(output_dir):
    with open(os.path.join(output_dir, "arcs.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]
