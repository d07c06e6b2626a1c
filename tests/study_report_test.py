"""The study report's statistics on recorded numbers, with diverged models.

Fast: the numbers are written here, as ``report.collect`` would read them
from a finished study; the slow tests/study_search_test.py runs real studies.
"""

import math

import numpy as np
import pytest
from scipy import stats

from enas_tf.study import plan
from enas_tf.study import report

KEY = "test_ppl"


def _data(enas, random_search, random_arcs, scores):
    """``collect``'s shape: searches (2 per strategy) and retrainings."""
    names = ([f"retrain_search_{s}_seed{k}" for s in ("enas", "random") for k in range(2)]
             + [f"retrain_random_{i}" for i in range(len(random_arcs))])
    standalone = list(enas) + list(random_search) + list(random_arcs)
    retrainings = [{"run": name, "source": "random" if "random_" in name and "search" not in name
                    else name[len("retrain_"):], "arc": str(i), KEY: value}
                   for i, (name, value) in enumerate(zip(names, standalone))]
    searches = []
    for strategy, values in (("enas", enas), ("random", random_search)):
        for k, value in enumerate(values):
            searches.append({"run": f"search_{strategy}_seed{k}", "strategy": strategy,
                             "group": strategy,
                             "seed": k, "best_arc": "0", "child_steps": 10,
                             "validation_batches_evaluated": 5, KEY: value,
                             "shared_weight_scores": dict(zip(names, scores))})
    return {"searches": searches, "retrainings": retrainings}


@pytest.fixture(name="study")
def _study(tmp_path):
    return plan.Study(str(tmp_path), plan.Settings("ptb", seeds=2, random_arcs=3))




def test_diverged_models_are_counted_and_left_out_of_means(study):
    data = _data([80.0, 90.0], [85.0, 95.0], [100.0, None, 120.0],
                 [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    result = report.build(study, data)
    arcs = result[report.RANDOM_ARCS]
    assert arcs["n"] == 3 and arcs["diverged"] == 1
    assert arcs["mean"] == pytest.approx(110.0)
    difference = result["improvement_over_random_architectures"]["enas"]
    assert difference["difference"] == pytest.approx(85.0 - 110.0)
    assert difference["better"] is True  # lower perplexity
    assert "1 diverged" in difference["note"]
    welch = stats.ttest_ind([80.0, 90.0], [100.0, 120.0], equal_var=False)
    assert difference["welch_p"] == pytest.approx(welch.pvalue)
    assert result["vs_random_search"]["enas"]["note"] is None


def test_a_diverged_model_ranks_last_in_the_correlations(study):
    # Shared-weight scores agree with the stand-alone order, the diverged arc
    # (stand-alone None, shared score None) is worst in both: tau is exactly 1.
    standalone = [80.0, 90.0, 85.0, 95.0, 100.0, None, 120.0]
    scores = [1.0, 3.0, 2.0, 4.0, 5.0, None, 6.0]
    result = report.build(study, _data(standalone[:2], standalone[2:4], standalone[4:], scores))
    pooled = result["rank_correlation"]["pooled"]
    assert pooled["kendall_tau"] == pytest.approx(1.0)
    assert len(pooled["pairs"]) == 4 * 7  # the diverged arc's pairs stay in
    # Dropping it instead would still give 1; ranking it best would not.
    assert stats.kendalltau([1, 3, 2, 4, 5, -math.inf, 6],
                            [80, 90, 85, 95, 100, math.inf, 120]).statistic < 1.0
    md = report.markdown(result)
    assert "| random architectures | 3 | 1 |" in md


def test_a_group_that_all_diverged_has_no_mean(study):
    result = report.build(study, _data([None, None], [85.0, 95.0], [100.0, 110.0, 120.0],
                                       list(np.arange(7.0))))
    assert result["groups"]["enas"]["mean"] is None
    assert result["groups"]["enas"]["diverged"] == 2
    assert result["vs_random_search"]["enas"]["difference"] is None
    assert "2 diverged" in result["vs_random_search"]["enas"]["note"]
