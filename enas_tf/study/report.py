"""The study's report: report.json, report.md and PNG pictures, from its run directories.

Statistics come from scipy.stats and pictures from matplotlib (Agg backend,
no display needed), not hand-written versions:

- per group of searches (each strategy, each further ENAS arm): mean,
  sample standard deviation (ddof=1) and each seed's stand-alone test
  metric (the retrained search arc's summary.json);
- the improvement over the random architectures' mean as Yang et al.
  (ICLR 2020, "NAS evaluation is frustratingly hard") report it, the relative
  improvement RI = 100 x (group mean - random mean) / random mean, beside
  the plain difference of means. For accuracy a positive value is better; for
  perplexity (lower is better) a negative one, and ``better`` says which;
- each group against the random architectures, and each ENAS group against
  random search;
- for each difference of means, Welch's t-test (unequal variances, two-sided)
  and a 95% percentile-bootstrap confidence interval (scipy.stats.bootstrap,
  9999 resamples seeded by the study seed); both need two values per group,
  else they are null with the reason;
- the supernet's ranking quality: Kendall's tau and Spearman's rho between
  each search's shared-weight validation metric and the stand-alone test
  metric over every retrained arc, per search and pooled (all searches'
  pairs together).

A model can diverge (a PTB cell of identities can blow up on the long
evaluation stream: its perplexity is NaN). Its metric is recorded as null,
counted per group (``diverged``), left out of means, tests and intervals
(the notes say so), and ranked worst in the rank correlations.
"""

import glob
import math
import os
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position
from scipy import stats  # pylint: disable=wrong-import-position

from enas_tf.study import plan  # pylint: disable=wrong-import-position
from enas_tf.study import scoring  # pylint: disable=wrong-import-position
from enas_tf.training import run_dir  # pylint: disable=wrong-import-position

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PICTURES = {"test_metric": "test_metric.png", "shared_vs_standalone": "shared_vs_standalone.png",
            "search_curves": "search_curves.png"}
RANDOM_ARCS = "random_architectures"


def collect(study):
    """The finished study's numbers, read from its run directories and score cache."""
    metric = study.settings.metric
    searches = study.searches()
    search_arcs = {run.name: plan.best_arc(study.path(run)) for run in searches}
    retrainings = study.retrainings(search_arcs)
    arcs = [run.arc for run in retrainings]
    standalone = {run.name: _number(_summary(study.path(run))[f"test_{metric.name}"])
                  for run in retrainings}
    out = {"searches": [], "retrainings": []}
    for run in retrainings:
        out["retrainings"].append({"run": run.name, "source": run.source, "arc": run.arc,
                                   f"test_{metric.name}": standalone[run.name]})
    for run in searches:
        summary = _summary(study.path(run))
        scores = scoring.cached_scores(study.directory, run.name, study.path(run), arcs)
        out["searches"].append({
            "run": run.name, "strategy": run.strategy, "group": run.group, "seed": run.seed,
            "best_arc": search_arcs[run.name], "retraining": f"retrain_{run.name}",
            f"test_{metric.name}": standalone[f"retrain_{run.name}"],
            "child_steps": summary["child_steps"],
            "validation_batches_evaluated": summary["validation_batches_evaluated"],
            "shared_weight_scores": dict(zip([r.name for r in retrainings],
                                             [_number(score) for score in scores]))})
    return out


def build(study, data):
    """report.json's content from ``collect``'s numbers."""
    settings, metric = study.settings, study.settings.metric
    key = f"test_{metric.name}"
    groups = {group: [s for s in data["searches"] if s["group"] == group]
              for group in settings.groups}
    random_values = [r[key] for r in data["retrainings"] if r["source"] == "random"]
    random_search = [s[key] for s in groups["random"]]
    spreads = {}
    for group, runs in groups.items():
        spreads[group] = dict(
            _spread([s[key] for s in runs]),
            per_seed=[{"seed": s["seed"], "run": s["run"], "arc": s["best_arc"], key: s[key]}
                      for s in runs])
    report = {
        "family": settings.family, "metric": key, "lower_is_better": metric.lower_is_better,
        "settings": settings.to_json(),
        "budget": {
            "rule": ("every group runs the same search flags (epochs, shared-weight "
                     "steps; an ENAS arm adds only its own flags); random search spends the "
                     "ENAS controller phase's validation batches on its derivation "
                     "(--search_strategy's rule)"),
            "child_steps": {k: [s["child_steps"] for s in v] for k, v in groups.items()},
            "validation_batches_evaluated": {
                k: [s["validation_batches_evaluated"] for s in v] for k, v in groups.items()},
        },
        "groups": spreads,
        RANDOM_ARCS: dict(_spread(random_values), arcs=[
            {"run": r["run"], "arc": r["arc"], key: r[key]}
            for r in data["retrainings"] if r["source"] == "random"]),
        "improvement_over_random_architectures": {
            group: _difference([s[key] for s in runs], random_values,
                               metric.lower_is_better, settings.seed)
            for group, runs in groups.items()},
        "vs_random_search": {
            group: _difference([s[key] for s in runs], random_search,
                               metric.lower_is_better, settings.seed)
            for group, runs in groups.items() if group != "random"},
        "rank_correlation": _rank_correlations(data, key, metric.lower_is_better),
        "pictures": dict(PICTURES),
    }
    return report


def _summary(path):
    return run_dir.read_json(os.path.join(path, run_dir.SUMMARY))


def _number(value):
    """A float for JSON: NaN or infinity (a statistic of too few values, a
    diverged model) becomes null."""
    value = float("nan") if value is None else float(value)
    return value if math.isfinite(value) else None


def _finite(values):
    return [v for v in values if v is not None]


def _spread(values):
    finite = _finite(values)
    return {"mean": _number(np.mean(finite)) if finite else None,
            "std": _number(np.std(finite, ddof=1)) if len(finite) > 1 else None,
            "n": len(values), "diverged": len(values) - len(finite)}


def _difference(values, baseline, lower_is_better, seed):
    """Difference of means, Yang et al.'s relative improvement, Welch's t-test and a
    bootstrap CI of the difference, over the models that did not diverge."""
    left_out = len(values) + len(baseline) - len(_finite(values)) - len(_finite(baseline))
    values, baseline = _finite(values), _finite(baseline)
    out = {"difference": None, "relative_improvement_percent": None, "better": None,
           "welch_t": None, "welch_p": None, "bootstrap_ci95": None, "note": None}
    if left_out:
        out["note"] = f"{left_out} diverged model(s) left out of the means"
    if not values or not baseline:
        return out
    diff = float(np.mean(values) - np.mean(baseline))
    out.update(difference=diff, relative_improvement_percent=100.0 * diff / np.mean(baseline),
               better=diff < 0 if lower_is_better else diff > 0)
    if len(values) < 2 or len(baseline) < 2:
        out["note"] = "the test and the interval need at least 2 values per group"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant groups give NaN
        welch = stats.ttest_ind(values, baseline, equal_var=False)
        ci = stats.bootstrap(
            (np.asarray(values, float), np.asarray(baseline, float)),
            lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
            vectorized=True, n_resamples=9999, method="percentile",
            confidence_level=0.95, rng=np.random.default_rng(seed)).confidence_interval
    out.update(welch_t=_number(welch.statistic), welch_p=_number(welch.pvalue),
               bootstrap_ci95=[_number(ci.low), _number(ci.high)])
    return out


def _correlation(pairs, lower_is_better):
    worst = math.inf if lower_is_better else -math.inf  # a diverged model ranks last
    shared = [worst if p["shared"] is None else p["shared"] for p in pairs]
    standalone = [worst if p["standalone"] is None else p["standalone"] for p in pairs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: NaN, reported as null
        tau = stats.kendalltau(shared, standalone)
        rho = stats.spearmanr(shared, standalone)
    return {"kendall_tau": _number(tau.statistic), "kendall_p": _number(tau.pvalue),
            "spearman_rho": _number(rho.statistic), "spearman_p": _number(rho.pvalue),
            "pairs": pairs}


def _rank_correlations(data, key, lower_is_better):
    standalone = {r["run"]: r[key] for r in data["retrainings"]}
    per_search = {}
    for search in data["searches"]:
        per_search[search["run"]] = _correlation([
            {"retraining": name, "shared": score, "standalone": standalone[name]}
            for name, score in search["shared_weight_scores"].items()], lower_is_better)
    pooled = [dict(pair, search=name) for name, result in per_search.items()
              for pair in result["pairs"]]
    return {"shared_metric": key.replace("test_", "valid_"), "standalone_metric": key,
            "per_search": per_search, "pooled": _correlation(pooled, lower_is_better)}


# Pictures --------------------------------------------------------------------------
def search_curves(search_dir):
    """A search's controller rewards (arcs.jsonl, phase "controller") in order, and
    its controller/entropy scalars (TensorBoard) by controller step; a random
    search has neither."""
    rewards = [r["reward"] for r in run_dir.ArcLog(search_dir).read()
               if r.get("phase") == "controller"]
    entropy = {}
    for path in sorted(glob.glob(os.path.join(search_dir, run_dir.TENSORBOARD, "events.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag == "controller/entropy":
                    entropy[event.step] = float(tf.make_ndarray(value.tensor))
    return rewards, sorted(entropy.items())


def draw(study, report, directory):
    """Writes the three PNGs of ``PICTURES`` into ``directory``."""
    key = report["metric"]
    groups = [(f"{k}\nsearch", [s[key] for s in v["per_seed"]])
              for k, v in report["groups"].items()]
    groups.append(("random\narcs", [a[key] for a in report[RANDOM_ARCS]["arcs"]]))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups)), 4))  # labels side by side
    for i, (label, values) in enumerate(groups):
        values = _finite(values)  # diverged models are counted in report.md
        ax.scatter(np.full(len(values), i), values, alpha=0.7)
        if values:
            ax.hlines(np.mean(values), i - 0.25, i + 0.25, colors="black")
    ax.set_xticks(range(len(groups)), [g[0] for g in groups])
    ax.set_ylabel(f"stand-alone {key}" + (" (lower is better)" if report["lower_is_better"]
                                          else " (higher is better)"))
    ax.set_title("Retrained arcs: each seed, and the mean (bar)")
    _save(fig, directory, PICTURES["test_metric"])

    fig, ax = plt.subplots(figsize=(6, 4))
    correlation = report["rank_correlation"]
    for name, result in correlation["per_search"].items():
        pairs = [p for p in result["pairs"] if None not in (p["shared"], p["standalone"])]
        ax.scatter([p["shared"] for p in pairs], [p["standalone"] for p in pairs],
                   label=name, alpha=0.7)
    ax.set_xlabel(f"shared-weight {correlation['shared_metric']}")
    ax.set_ylabel(f"stand-alone {key}")
    ax.set_title(f"Pooled Kendall tau {_fmt(correlation['pooled']['kendall_tau'])}, "
                 f"Spearman rho {_fmt(correlation['pooled']['spearman_rho'])}")
    ax.legend(fontsize="small")
    _save(fig, directory, PICTURES["shared_vs_standalone"])

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=False)
    for run in study.searches():
        rewards, entropy = search_curves(study.path(run))
        if rewards:
            top.plot(rewards, label=run.name, alpha=0.7)
        if entropy:
            bottom.plot([s for s, _ in entropy], [e for _, e in entropy], label=run.name)
    top.set_xlabel("controller-scored arc")
    top.set_ylabel("reward")
    top.set_title("ENAS searches' controller (random searches have none)")
    bottom.set_xlabel("controller step")
    bottom.set_ylabel("sample entropy")
    for ax in (top, bottom):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    _save(fig, directory, PICTURES["search_curves"])


def _save(fig, directory, name):
    fig.tight_layout()
    fig.savefig(os.path.join(directory, name), dpi=100)
    plt.close(fig)


# report.md ------------------------------------------------------------------------
def _fmt(value):
    return "n/a" if value is None else f"{value:.4g}"  # n/a: no value, or a diverged model


def markdown(report):
    key = report["metric"]
    better = "lower" if report["lower_is_better"] else "higher"
    lines = [f"# Search study: {report['family']}", "",
             f"Stand-alone metric: `{key}` ({better} is better), each arc retrained from "
             "scratch with the same flags and seed, on the untouched test split.", "",
             "## Budget", "", report["budget"]["rule"] + ".", ""]
    for name in ("child_steps", "validation_batches_evaluated"):
        lines.append(f"- {name}: " + "; ".join(
            f"{k} {v}" for k, v in report["budget"][name].items()))
    lines += ["", "## Stand-alone test metric", "",
              "| group | n | diverged | mean | std | values |", "|---|---|---|---|---|---|"]
    for name, group in report["groups"].items():
        values = ", ".join(f"seed {s['seed']}: {_fmt(s[key])}" for s in group["per_seed"])
        lines.append(f"| {name} search | {group['n']} | {group['diverged']} | "
                     f"{_fmt(group['mean'])} | {_fmt(group['std'])} | {values} |")
    arcs = report[RANDOM_ARCS]
    lines.append(f"| random architectures | {arcs['n']} | {arcs['diverged']} | "
                 f"{_fmt(arcs['mean'])} | {_fmt(arcs['std'])} | "
                 f"{', '.join(_fmt(a[key]) for a in arcs['arcs'])} |")
    lines += ["", "## Differences of means", "",
              "Relative improvement (Yang et al. 2020): 100 x (mean - baseline mean) / "
              f"baseline mean; here {better} `{key}` is better, so a "
              f"{'negative' if report['lower_is_better'] else 'positive'} difference is an "
              "improvement. Test: Welch's two-sided t-test; interval: 95% percentile "
              "bootstrap of the difference of means.", "",
              "| comparison | difference | RI % | better | Welch t | p | 95% CI |",
              "|---|---|---|---|---|---|---|"]
    rows = [(f"{k} search - random architectures", v)
            for k, v in report["improvement_over_random_architectures"].items()]
    rows += [(f"{k} search - random search", v) for k, v in report["vs_random_search"].items()]
    for label, d in rows:
        ci = "n/a" if d["bootstrap_ci95"] is None else (
            f"[{_fmt(d['bootstrap_ci95'][0])}, {_fmt(d['bootstrap_ci95'][1])}]")
        lines.append(f"| {label} | {_fmt(d['difference'])} | "
                     f"{_fmt(d['relative_improvement_percent'])} | {d['better']} | "
                     f"{_fmt(d['welch_t'])} | {_fmt(d['welch_p'])} | {ci} |")
    notes = {d["note"] for _, d in rows if d["note"]}
    lines += [f"\n{note}." for note in sorted(notes)]
    correlation = report["rank_correlation"]
    lines += ["", "## Ranking quality of the shared weights", "",
              f"Shared-weight `{correlation['shared_metric']}` of every retrained arc "
              f"against its stand-alone `{key}` (a diverged model ranks last).", "",
              "| search | Kendall tau | Spearman rho |", "|---|---|---|"]
    for name, result in list(correlation["per_search"].items()) + [
            ("pooled", correlation["pooled"])]:
        lines.append(f"| {name} | {_fmt(result['kendall_tau'])} | "
                     f"{_fmt(result['spearman_rho'])} |")
    lines += ["", "## Pictures", ""]
    lines += [f"![{name}]({path})" for name, path in report["pictures"].items()]
    return "\n".join(lines) + "\n"


def write(study):
    """Collects, computes and writes report.json, report.md and the pictures; returns the report."""
    report = build(study, collect(study))
    draw(study, report, study.directory)
    run_dir.write_json(os.path.join(study.directory, REPORT_JSON), report)
    run_dir.write_text(os.path.join(study.directory, REPORT_MD), markdown(report))
    return report
