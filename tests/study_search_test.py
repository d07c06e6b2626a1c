"""bin/study_search: a tiny PTB study end to end, interrupted and resumed, and its
report checked against the run directories; bad study flags.

The study is flags/study_ptb_tiny.cfg: 2 seeds per strategy and 2 random
arcs (below the study's minimum of 3 and 8, so the whole file runs in about
two minutes), each run one epoch of 6 steps.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from absl.testing import flagsaver
from scipy import stats

from enas_tf.cli import study_search
from enas_tf.training import run_config
from ptb_cli import ROOT, run_binary

pytestmark = pytest.mark.slow  # a study's runs are subprocesses of the binaries

BINARY = os.path.join(ROOT, "bin", "study_search")
TINY = ["--flagfile=flags/study_ptb_tiny.cfg"]
SEARCHES = ["search_enas_seed0", "search_random_seed0", "search_enas_seed1",
            "search_random_seed1"]
RETRAININGS = [f"retrain_{name}" for name in SEARCHES] + ["retrain_random_0",
                                                          "retrain_random_1"]
ARM = "--study_arm=lr:--controller_lr=0.05 --controller_entropy_weight=0.001"
ARM_RUNS = ["search_enas_lr_seed0", "search_enas_lr_seed1", "retrain_search_enas_lr_seed0",
            "retrain_search_enas_lr_seed1"]


def read_json(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as f:
        return json.load(f)


def summary_mtimes(study_dir, names):
    return {name: os.stat(os.path.join(study_dir, name, "summary.json")).st_mtime_ns
            for name in names}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Runs the tiny study as 3 runs, then the rest, then once more; returns what
    each step left, for the tests below."""
    study_dir = str(tmp_path_factory.mktemp("study") / "ptb")
    args = TINY + [f"--study_dir={study_dir}"]
    first = run_binary(BINARY, args + ["--study_max_runs=3"])
    after_first = sorted(n for n in os.listdir(study_dir) if n.startswith(("search_", "retrain_")))
    first_mtimes = summary_mtimes(study_dir, after_first)
    reported_early = os.path.exists(os.path.join(study_dir, "report.json"))
    run_binary(BINARY, args + ["--study_max_runs=1"])  # the last search, then scoring
    scored_before_retraining = (
        sorted(os.listdir(os.path.join(study_dir, "scores"))) == sorted(
            f"{n}.json" for n in SEARCHES)
        and not any(n.startswith("retrain_") for n in os.listdir(study_dir)))
    second = run_binary(BINARY, args)
    report_after_second = read_json(study_dir, "report.json")
    all_mtimes = summary_mtimes(study_dir, SEARCHES + RETRAININGS)
    score_mtimes = {n: os.stat(os.path.join(study_dir, "scores", f"{n}.json")).st_mtime_ns
                    for n in SEARCHES}
    third = run_binary(BINARY, args)
    report = read_json(study_dir, "report.json")
    mtimes_after_third = (summary_mtimes(study_dir, SEARCHES + RETRAININGS), {
        n: os.stat(os.path.join(study_dir, "scores", f"{n}.json")).st_mtime_ns
        for n in SEARCHES})
    with_arm = run_binary(BINARY, args + [ARM])
    return {"dir": study_dir, "first": first, "after_first": after_first,
            "first_mtimes": first_mtimes, "reported_early": reported_early,
            "scored_before_retraining": scored_before_retraining, "second": second,
            "report_after_second": report_after_second, "all_mtimes": all_mtimes,
            "score_mtimes": score_mtimes, "third": third, "report": report,
            "mtimes_after_third": mtimes_after_third, "with_arm": with_arm, "report_with_arm": read_json(study_dir, "report.json")}


@pytest.mark.slow
class StudyResumeTest:

    def test_a_limited_call_runs_that_many_runs_and_no_report(self, study):
        assert "stopped after 3 runs" in study["first"].stdout
        assert study["after_first"] == sorted(SEARCHES[:3])
        assert not study["reported_early"]
        assert "running search_enas_seed0" in study["first"].stdout

    def test_the_searches_score_every_arc_before_any_retraining(self, study):
        # From then on no search checkpoint is needed.
        assert study["scored_before_retraining"]

    def test_resume_never_redoes_a_finished_run(self, study):
        second = study["second"].stdout
        assert not any(f"running {name}\n" in second for name in SEARCHES)
        assert all(f"running {name}\n" in second for name in RETRAININGS)
        now = summary_mtimes(study["dir"], study["after_first"])
        assert now == study["first_mtimes"]

    def test_a_finished_study_reruns_nothing_and_reports_the_same(self, study):
        assert "running" not in study["third"].stdout
        assert study["mtimes_after_third"] == (study["all_mtimes"], study["score_mtimes"])
        assert study["report"] == study["report_after_second"]

    def test_a_study_with_other_settings_is_refused(self, study, capsys):
        code, err = run_in_process(TINY + [f"--study_dir={study['dir']}", "--study_seeds=3"],
                                   capsys)
        assert code == 2
        assert err.strip().splitlines()[-1] == (
            f"error: --study_dir={study['dir']} holds a study with other settings "
            "(--study_seeds was 2, now 3); rerun it with its own settings (arms may only "
            "be added after its own) or choose another --study_dir")

    def test_an_added_arm_runs_only_its_own_runs(self, study):
        ran = [line.split()[1] for line in study["with_arm"].stdout.splitlines()
               if line.startswith("running ")]
        assert ran == ARM_RUNS
        assert summary_mtimes(study["dir"], SEARCHES + RETRAININGS) == study["all_mtimes"]
        for k in range(2):
            config = run_config.load(os.path.join(study["dir"], f"search_enas_lr_seed{k}"))
            assert config.loop.search_strategy == "enas" and config.seed == k
            assert config.controller.lr == 0.05 and config.controller.entropy_weight == 0.001
        assert run_config.load(os.path.join(study["dir"], "search_enas_seed0")).controller.lr != 0.05

    def test_an_added_arm_is_compared_with_the_same_baselines(self, study):
        before, after = study["report"], study["report_with_arm"]
        assert set(after["groups"]) == {"enas", "random", "enas_lr"}
        for name in ("enas", "random"):
            assert after["groups"][name] == before["groups"][name]
        assert after["random_architectures"] == before["random_architectures"]
        assert set(after["vs_random_search"]) == {"enas", "enas_lr"}
        arm = [e["test_ppl"] for e in after["groups"]["enas_lr"]["per_seed"]]
        random_search = [e["test_ppl"] for e in after["groups"]["random"]["per_seed"]]
        assert after["vs_random_search"]["enas_lr"]["difference"] == pytest.approx(
            np.mean(arm) - np.mean(random_search))
        # Every search scores the arm's arcs too.
        for result in after["rank_correlation"]["per_search"].values():
            assert {p["retraining"] for p in result["pairs"]} == set(
                RETRAININGS + ARM_RUNS[2:])

    def test_an_arm_cannot_be_changed_once_recorded(self, study, capsys):
        code, err = run_in_process(TINY + [f"--study_dir={study['dir']}",
                                           "--study_arm=lr:--controller_lr=0.1"], capsys)
        assert code == 2
        assert "(--study_arm was [['lr', ['--controller_lr=0.05'," in err


@pytest.mark.slow
class StudyReportTest:

    def test_runs_are_the_planned_strategies_seeds_and_arcs(self, study):
        plan = read_json(study["dir"], "plan.json")
        for name in SEARCHES:
            config = run_config.load(os.path.join(study["dir"], name))
            assert config.loop.search_strategy == name.split("_")[1]
            assert config.seed == int(name[-1])
            assert config.fixed_arc is None
        for i, arc in enumerate(plan["random_arcs"]):
            config = run_config.load(os.path.join(study["dir"], f"retrain_random_{i}"))
            assert config.fixed_arc == arc and config.seed == 0
        assert len(set(plan["random_arcs"])) == 2  # two draws, not one arc twice

    def test_each_seeds_metric_is_its_retrainings_test_ppl(self, study):
        report = study["report"]
        assert report["metric"] == "test_ppl" and report["lower_is_better"]
        for strategy in ("enas", "random"):
            group = report["groups"][strategy]
            values = []
            for entry in group["per_seed"]:
                retrained = read_json(study["dir"], f"retrain_{entry['run']}", "summary.json")
                searched = read_json(study["dir"], entry["run"], "summary.json")
                assert entry["test_ppl"] == retrained["test_ppl"]
                assert entry["arc"] == searched["best_arc"] == retrained["best_arc"]
                values.append(entry["test_ppl"])
            assert [e["seed"] for e in group["per_seed"]] == [0, 1]
            assert group["mean"] == pytest.approx(np.mean(values))
            assert group["std"] == pytest.approx(np.std(values, ddof=1))
        random_values = [read_json(study["dir"], f"retrain_random_{i}", "summary.json")["test_ppl"]
                         for i in range(2)]
        assert [a["test_ppl"] for a in report["random_architectures"]["arcs"]] == random_values

    def test_the_budget_is_equal(self, study):
        budget = study["report"]["budget"]
        for key in ("child_steps", "validation_batches_evaluated"):
            recorded = {s: [read_json(study["dir"], f"search_{s}_seed{k}", "summary.json")[key]
                            for k in range(2)] for s in ("enas", "random")}
            assert budget[key] == recorded
            assert recorded["enas"] == recorded["random"]
        # 2 controller steps x 3 arcs + 4 derived = 10 batches, the random search's
        # 4 + ceil(6 / 1) derived arcs.
        assert budget["validation_batches_evaluated"]["enas"] == [10, 10]

    def test_differences_and_tests_are_scipys_on_the_values(self, study):
        report = study["report"]
        random_values = [a["test_ppl"] for a in report["random_architectures"]["arcs"]]
        for strategy, result in report["improvement_over_random_architectures"].items():
            values = [e["test_ppl"] for e in report["groups"][strategy]["per_seed"]]
            diff = np.mean(values) - np.mean(random_values)
            assert result["difference"] == pytest.approx(diff)
            assert result["relative_improvement_percent"] == pytest.approx(
                100 * diff / np.mean(random_values))
            assert result["better"] == (diff < 0)  # perplexity: lower is better
            welch = stats.ttest_ind(values, random_values, equal_var=False)
            assert result["welch_t"] == pytest.approx(welch.statistic)
            assert result["welch_p"] == pytest.approx(welch.pvalue)
            low, high = result["bootstrap_ci95"]
            assert min(values) - max(random_values) <= low <= high <= (
                max(values) - min(random_values))

    def test_shared_weight_scores_restore_each_searchs_weights(self, study):
        """A search's score of its own arc is the valid_ppl the search reported for it."""
        report = study["report"]
        pairs = report["rank_correlation"]["per_search"]
        arc_of = {a["run"]: a["arc"] for a in report["random_architectures"]["arcs"]}
        arc_of.update({f"retrain_{e['run']}": e["arc"] for group in report["groups"].values()
                       for e in group["per_seed"]})
        for name in SEARCHES:
            searched = read_json(study["dir"], name, "summary.json")
            own = {p["retraining"]: p["shared"] for p in pairs[name]["pairs"]}
            assert own[f"retrain_{name}"] == pytest.approx(searched["valid_ppl"], rel=1e-5)
            assert sorted(own) == sorted(RETRAININGS)
            # The cache (which by now also holds the added arm's arcs) by arc.
            cached = read_json(study["dir"], "scores", f"{name}.json")
            by_arc = dict(zip(cached["arcs"], cached["scores"]))
            assert [own[r] for r in RETRAININGS] == [by_arc[arc_of[r]] for r in RETRAININGS]

    def test_rank_correlations_are_scipys_on_the_recorded_pairs(self, study):
        correlation = study["report"]["rank_correlation"]
        standalone = {name: read_json(study["dir"], name, "summary.json")["test_ppl"]
                      for name in RETRAININGS}
        pooled = []
        for name in SEARCHES:
            result = correlation["per_search"][name]
            shared = [p["shared"] for p in result["pairs"]]
            alone = [p["standalone"] for p in result["pairs"]]
            assert alone == [standalone[p["retraining"]] for p in result["pairs"]]
            assert result["kendall_tau"] == pytest.approx(stats.kendalltau(shared, alone).statistic)
            assert result["spearman_rho"] == pytest.approx(stats.spearmanr(shared, alone).statistic)
            pooled += list(zip(shared, alone))
        assert len(correlation["pooled"]["pairs"]) == len(SEARCHES) * len(RETRAININGS)
        shared, alone = zip(*pooled)
        assert correlation["pooled"]["kendall_tau"] == pytest.approx(
            stats.kendalltau(shared, alone).statistic)
        assert correlation["pooled"]["spearman_rho"] == pytest.approx(
            stats.spearmanr(shared, alone).statistic)

    def test_markdown_and_pictures(self, study):
        report = study["report"]
        with open(os.path.join(study["dir"], "report.md"), encoding="utf-8") as f:
            text = f.read()
        assert "lower `test_ppl` is better, so a negative difference is an improvement" in text
        assert f"| {report['groups']['enas']['mean']:.4g} |" in text
        assert "Welch's two-sided t-test" in text and "bootstrap" in text
        for name in SEARCHES + ["pooled"]:
            assert f"| {name} |" in text
        for picture in report["pictures"].values():
            with open(os.path.join(study["dir"], picture), "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"
            assert f"]({picture})" in text


def run_in_process(args, capsys):
    """Runs bin/study_search in this process; returns (exit code, stderr)."""
    with flagsaver.flagsaver(), pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # flag files are named from the checkout
        patch.setattr(sys, "argv", ["study_search"] + args)
        with pytest.raises(SystemExit) as exited:
            study_search.run()
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--study_dir="], "--study_dir must name the study's directory"),
    (["--study_family=cnn"],
     "--study_family must be one of ptb, macro, micro. Received: 'cnn'"),
    (["--study_seeds=0"], "--study_seeds must be at least 1. Received: 0"),
    (["--study_random_arcs=1"], "--study_random_arcs must be at least 2. Received: 1"),
    (["--study_max_runs=-1"], "--study_max_runs must be 0 (no limit) or more. Received: -1"),
    (["--search_flagfile=flags/nope.cfg"], "--search_flagfile=flags/nope.cfg: no such file"),
    (["--retrain_flagfile="], "--retrain_flagfile must name a flag file of the search binary"),
    (["--study_arm=eps8"],
     "--study_arm=eps8: expected NAME:FLAGS, e.g. eps8:--controller_adam_epsilon=1e-8"),
    (["--study_arm=a_b:--controller_lr=1"], "--study_arm: arm names must be unique letters, "
     "digits, '.' and '-'. Received: 'a_b'"),
    (["--study_arm=a:--controller_lr=1", "--study_arm=a:--controller_lr=2"],
     "--study_arm: arm names must be unique letters, digits, '.' and '-'. Received: 'a'"),
    (["--study_arm=a:"], "--study_arm: arm 'a' adds no search flags"),
    (["--study_arm=a:--seed=4"], "--study_arm: arm 'a' sets --seed=4, which the study sets "
     "per run (it sets --search_strategy, --seed, --output_dir, --search_for)"),
])
def test_bad_study_flags(tmp_path, capsys, args, message):
    study_dir = tmp_path / "study"
    code, err = run_in_process(TINY + [f"--study_dir={study_dir}"] + args, capsys)
    assert code == 2
    assert err.strip().splitlines()[-1] == f"error: {message}"
    assert not study_dir.exists() or not os.listdir(study_dir)


def test_a_failing_run_stops_the_study_naming_its_log(tmp_path, capsys):
    study_dir = tmp_path / "study"
    code, err = run_in_process(TINY + [f"--study_dir={study_dir}",
                                       "--search_arg=--child_lstm_x_keep=1.5"], capsys)
    log = study_dir / "logs" / "search_enas_seed0.log"
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"error: search_enas_seed0 failed (exit 1); its output is in {log}; "
        "rerun the study to resume it")
    assert "child_lstm_x_keep" in log.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["ptb_cpu", "ptb_gpu", "cifar10_macro_cpu", "cifar10_macro_gpu",
                                  "cifar10_micro_cpu", "cifar10_micro_gpu"])
def test_real_study_flag_files_ask_for_the_studys_minimum(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    with flagsaver.flagsaver():
        study_search.FLAGS([BINARY, f"--flagfile=flags/study_{name}.cfg"])
        settings = study_search.settings_from_flags()
    assert settings.family == ("ptb" if name.startswith("ptb") else name.split("_")[1])
    assert settings.seeds >= 3 and settings.random_arcs >= 8
    # The CPU studies shrink the quick flag files; the GPU ones run the paper's.
    assert ("_quick.cfg" in settings.search_args[0]) == name.endswith("cpu")
    assert ("_quick.cfg" in settings.retrain_args[0]) == name.endswith("cpu")


@pytest.mark.slow
def test_sigterm_stops_the_study_and_the_run_in_progress(tmp_path):
    study_dir = tmp_path / "study"
    study = subprocess.Popen([sys.executable, BINARY] + TINY + [f"--study_dir={study_dir}"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = str(study_dir / "search_enas_seed0")

    def runs_alive():
        found = subprocess.run(["pgrep", "-f", f"output_dir={run_dir}"], capture_output=True,
                               text=True, check=False)
        return found.stdout.split()

    deadline = time.monotonic() + 120
    while not runs_alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert runs_alive(), "the study never started its first run"
    study.send_signal(signal.SIGTERM)
    assert study.wait(timeout=60) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 30
    while runs_alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not runs_alive(), "the run outlived its study"
