"""bin/export_child rebuilds a run from its config.json, and an older run from its flags.cfg."""

import os
import shutil

import numpy as np
import pytest

from enas_tf.export import saved_model
from ptb_cli import run
from saved_model_support import assert_same_outputs, export_child, tokens
from serving_support import reference

pytestmark = pytest.mark.slow  # a run and export_child in subprocesses

PTB_ARC = "1 0 0 1 3 0 2"


@pytest.fixture(scope="module", name="ptb_run")
def fixture_ptb_run(tmp_path_factory):
    """A fixed PTB run that exported version 1 of model "lm" itself."""
    output_dir = str(tmp_path_factory.mktemp("ptb") / "run")
    run([f"--output_dir={output_dir}", "--num_epochs=1", "--child_steps_per_epoch=3",
         f"--child_fixed_arc={PTB_ARC}", "--nocontroller_training", "--model_name=lm"])
    return output_dir


@pytest.mark.parametrize("removed", ["flags.cfg", "config.json"])
def test_a_copy_with_one_of_its_files_exports_the_runs_model_below_itself(
        ptb_run, tmp_path, removed):
    copy = tmp_path / "copy"
    shutil.copytree(ptb_run, copy, ignore=shutil.ignore_patterns("export", removed))
    result = export_child([f"--output_dir={copy}"])
    # The export lands below the copy, not below the run it was copied from.
    path = os.path.join(copy, "export", "lm", "1")
    assert f"export_path: {path}" in result.stdout
    metadata = saved_model.read_metadata(path)
    assert metadata["arc"] == PTB_ARC and metadata["flags"]["child_rhn_depth"] == 4
    own = os.path.join(ptb_run, "export", "lm", "1")
    inputs = {"tokens": tokens(), "initial_state": np.full((3, 8), 0.1, np.float32)}
    assert_same_outputs(reference(path, "serve_with_state", **inputs),
                        reference(own, "serve_with_state", **inputs))
