"""Runs bin/search_cifar as a user does, at a tiny size, for the end-to-end tests."""

import os

from enas_tf.search_space import macro
from enas_tf.search_space import micro
from ptb_cli import ROOT, run_binary

BINARY = os.path.join(ROOT, "bin", "search_cifar")
DATA_DIR = os.path.join(ROOT, "testdata", "cifar10")
TINY = [f"--data_path={DATA_DIR}", "--batch_size=8", "--eval_batch_size=50",
        "--child_steps_per_epoch=4", "--controller_train_steps=2",
        "--controller_num_aggregate=3", "--controller_lstm_size=8",
        "--derive_num_samples=4", "--noverbose", "--log_every=2"]
SPACES = {
    "macro": ["--search_for=macro", "--child_num_layers=3", "--child_out_filters=4",
              "--controller_tanh_constant=1.5"],
    "micro": ["--search_for=micro", "--child_num_layers=1", "--child_num_cells=2",
              "--child_out_filters=4", "--child_use_aux_heads",
              "--controller_tanh_constant=1.1"],
}
SPACE_OF = {"macro": macro.MacroSpace(3), "micro": micro.MicroSpace(2)}
MICRO_ARC = "0 4 1 2 1 0 0 3 1 1 1 0 2 4 0 2"  # 2-node cells
FIXED = ["--nocontroller_training", "--num_epochs=1", "--child_steps_per_epoch=2",
         "--eval_batch_size=100"]


def run(args, check=True):
    return run_binary(BINARY, TINY + args, check)
