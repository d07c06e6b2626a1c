"""bin/export_child on fixed-arc runs: the same model as the run's own export, by every loader."""

import os

import numpy as np
import pytest

from enas_tf.export import saved_model
from ptb_cli import run
from saved_model_support import (assert_same_outputs, export_child, images, session_predict,
                                 tfsm_predict, tokens)
from cifar_cli import FIXED, SPACES, run as run_cifar
from serving_support import reference

pytestmark = pytest.mark.slow  # runs and export_child in subprocesses

PTB_ARC = "1 0 0 1 3 0 2"
MACRO_ARC = "0 1 1 2 0 1"


@pytest.fixture(scope="module", name="ptb_run")
def fixture_ptb_run(tmp_path_factory):
    """A fixed PTB run that exported version 1 itself."""
    output_dir = str(tmp_path_factory.mktemp("ptb"))
    run([f"--output_dir={output_dir}", "--num_epochs=1", "--child_steps_per_epoch=3",
         f"--child_fixed_arc={PTB_ARC}", "--nocontroller_training", "--model_name=lm"])
    return output_dir


@pytest.fixture(scope="module", name="macro_run")
def fixture_macro_run(tmp_path_factory):
    """A fixed macro CIFAR run that exported version 1 itself."""
    output_dir = str(tmp_path_factory.mktemp("macro"))
    run_cifar(SPACES["macro"] + FIXED + [f"--output_dir={output_dir}",
                                         f"--child_fixed_arc={MACRO_ARC}"])
    return output_dir


class ExportFromRunTest:

    def test_ptb_reexport_is_the_next_version_and_answers_as_the_runs_own(self, ptb_run):
        result = export_child([f"--output_dir={ptb_run}"])
        model_dir = os.path.join(ptb_run, "export", "lm")
        assert f"export_path: {model_dir}/2" in result.stdout
        assert saved_model.existing_versions(model_dir) == [1, 2]
        metadata = saved_model.read_metadata(os.path.join(model_dir, "2"))
        assert metadata["arc"] == PTB_ARC and not metadata["supernet"]
        assert metadata["flags"]["child_rhn_depth"] == 4
        for signature, inputs in (
                ("serving_default", {"tokens": tokens()}),
                ("serve_with_state", {"tokens": tokens(1),
                                      "initial_state": np.full((3, 8), 0.1, np.float32)})):
            assert_same_outputs(reference(os.path.join(model_dir, "2"), signature, **inputs),
                                reference(os.path.join(model_dir, "1"), signature, **inputs))

    def test_macro_reexport_answers_as_the_runs_own(self, macro_run, tmp_path):
        export_child([f"--output_dir={macro_run}", f"--export_dir={tmp_path}",
                      "--model_name=net"])
        own = os.path.join(macro_run, "export", "enas_cifar10_macro", "1")
        again = os.path.join(tmp_path, "net", "1")
        assert saved_model.read_metadata(again)["mean"] == saved_model.read_metadata(own)["mean"]
        assert_same_outputs(reference(again, "serving_default", images=images()),
                            reference(own, "serving_default", images=images()))

    def test_the_runs_own_arc_may_be_named_but_no_other(self, ptb_run, tmp_path):
        export_child([f"--output_dir={ptb_run}", f"--child_fixed_arc={PTB_ARC}",
                      f"--export_dir={tmp_path}"])
        result = export_child([f"--output_dir={ptb_run}", "--child_fixed_arc=0 0 0 0 0 0 0",
                               f"--export_dir={tmp_path}"], check=False)
        assert result.returncode == 2
        assert f"trained only the arc '{PTB_ARC}'" in result.stderr.strip().splitlines()[-1]


class LoadersTest:
    """tf.saved_model.load, Keras 3's TFSMLayer and a TF1 session agree on an export."""

    def test_ptb_export_through_tfsm_layer(self, ptb_run):
        path = os.path.join(ptb_run, "export", "lm", "1")
        inputs = {"tokens": tokens()}
        assert_same_outputs(tfsm_predict(path, inputs),
                            reference(path, "serving_default", **inputs))

    def test_cifar_export_through_tfsm_layer_and_a_tf1_session(self, macro_run):
        path = os.path.join(macro_run, "export", "enas_cifar10_macro", "1")
        inputs = {"images": images()}
        want = reference(path, "serving_default", **inputs)
        assert_same_outputs(tfsm_predict(path, inputs), want)
        assert_same_outputs(session_predict(path, inputs), want)


class BadInputTest:

    @pytest.fixture(name="dirs")
    def fixture_dirs(self, tmp_path, ptb_run):
        flags_only = tmp_path / "flags_only"
        flags_only.mkdir()
        (flags_only / "flags.cfg").write_text(
            open(os.path.join(ptb_run, "flags.cfg"), encoding="utf-8").read())
        return {"flags_only": flags_only, "fixed": ptb_run}

    # tests/cli_flags_test.py runs the cases that need no run in-process.
    @pytest.mark.parametrize("which, args, message", [
        ("flags_only", [], "has no checkpoint in checkpoints/: nothing trained to export"),
        ("fixed", ["--child_fixed_arc=1 0 0 1 9 0 2"],
         "ptb arc position 4 (node 2 activation) must be in [0, 3]. Received: 9"),
        ("fixed", ["--child_fixed_arc=1 0 0"], "ptb arc must have 7 integers"),
        ("fixed", ["--supernet"], "is a fixed-arc run: --supernet needs a search run"),
    ])
    def test_one_line_error_and_nothing_exported(self, dirs, tmp_path, which, args, message):
        export_dir = tmp_path / "export"
        result = export_child([f"--output_dir={dirs[which]}", f"--export_dir={export_dir}"]
                              + args, check=False)
        assert result.returncode == 2
        assert message in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]
        assert "Traceback" not in result.stderr
        assert not export_dir.exists()
