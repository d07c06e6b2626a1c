"""Checkpoints written by earlier code restore into today's, and score the same.

testdata/checkpoints/ holds tiny PTB, macro and micro checkpoints (searches
and fixed-arc trainings) and what their restored models scored, written by the code of commit cc4533f
(``testdata/make_checkpoint_testdata.py`` says how). Today's code rebuilds
the same runs and restores them: every object of today's run (child,
optimizer slots, controller and REINFORCE state in a search, counters) must match one in
the checkpoint, and the restored weights must give the arc the same loss.
"""

import importlib.util
import json
import os
import shutil

import pytest

from ptb_cli import ROOT

TESTDATA = os.path.join(ROOT, "testdata")
_spec = importlib.util.spec_from_file_location(
    "make_checkpoint_testdata", os.path.join(TESTDATA, "make_checkpoint_testdata.py"))
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

with open(os.path.join(TESTDATA, "checkpoints", "expected.json"), encoding="utf-8") as f:
    EXPECTED = json.load(f)


@pytest.mark.parametrize("run", fixtures.RUNS)
def test_an_earlier_checkpoint_restores_and_scores_the_same(run, tmp_path):
    output_dir = str(tmp_path / run)
    shutil.copytree(os.path.join(TESTDATA, "checkpoints", run), output_dir)
    task, loop = fixtures.build(run, output_dir)
    assert loop.restore()  # raises CheckpointMismatchError if any object is unmatched
    assert int(loop.epoch.numpy()) == 1
    assert fixtures.scores(task, run) == pytest.approx(EXPECTED[run], rel=1e-5)


def test_a_fresh_model_does_not_score_the_same(tmp_path):
    """The comparison above can fail: untrained weights give another loss."""
    task, _ = fixtures.build("macro_search", str(tmp_path))
    assert fixtures.scores(task, "macro_search") != pytest.approx(EXPECTED["macro_search"],
                                                                 rel=1e-5)
