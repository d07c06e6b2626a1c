"""A study's plan: the runs of each group, further ENAS arms, and what a resume accepts."""

import json
import os

import pytest

from enas_tf.study import plan

SETTINGS = dict(family="ptb", seeds=2, random_arcs=2, search_args=("--flagfile=s.cfg",),
                retrain_args=("--flagfile=r.cfg",))


def test_an_arms_searches_add_its_flags_after_the_search_flags(tmp_path):
    settings = plan.Settings(**SETTINGS, arms=[("eps8", ["--controller_adam_epsilon=1e-8"])])
    searches = plan.Study(str(tmp_path), settings).searches()
    assert [r.name for r in searches] == [
        "search_enas_seed0", "search_random_seed0", "search_enas_eps8_seed0",
        "search_enas_seed1", "search_random_seed1", "search_enas_eps8_seed1"]
    arm = searches[2]
    assert (arm.group, arm.strategy, arm.seed) == ("enas_eps8", "enas", 0)
    assert arm.args[:2] == ("--flagfile=s.cfg", "--controller_adam_epsilon=1e-8")
    assert "--search_strategy=enas" in arm.args
    assert "--controller_adam_epsilon=1e-8" not in searches[0].args
    assert settings.groups == ["enas", "random", "enas_eps8"]


def test_arms_may_be_added_to_a_plan_from_before_arms(tmp_path):
    recorded = plan.Settings(**SETTINGS).to_json()
    del recorded["arms"]
    (tmp_path / plan.PLAN).write_text(json.dumps({"settings": recorded,
                                                  "random_arcs": ["1 0", "2 1"]}))
    settings = plan.Settings(**SETTINGS, arms=[("lr", ["--controller_lr=0.01"])])
    study = plan.Study.open(str(tmp_path), settings)
    assert study.random_arcs == ["1 0", "2 1"]
    with open(os.path.join(tmp_path, plan.PLAN), encoding="utf-8") as f:
        assert json.load(f)["settings"]["arms"] == [["lr", ["--controller_lr=0.01"]]]
    # A second arm after the first is fine; dropping or changing one is not.
    plan.Study.open(str(tmp_path), plan.Settings(
        **SETTINGS, arms=[("lr", ["--controller_lr=0.01"]), ("t", ["--controller_lr=1"])]))
    for arms in ([], [("lr", ["--controller_lr=0.02"])]):
        with pytest.raises(plan.StudyError, match="arms may only be added after its own"):
            plan.Study.open(str(tmp_path), plan.Settings(**SETTINGS, arms=arms))
