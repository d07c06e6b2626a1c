"""Runs what a study has not finished: searches, scoring, then retrainings.

Every search and retraining is a subprocess of the family's search binary
(the command of ``plan.Study.command``), so a crash or kill of one run
loses only that run's last epoch, which the binary resumes; a finished run
(``plan.finished``) is never started again. Each run's output goes to
``logs/<run name>.log`` in the study directory.

Every arc a study retrains is known once the searches have ended (their
best arcs and the recorded random ones), so the searches' shared weights
score them all before any retraining starts: from then on the study needs
no search checkpoint, and a study directory can be kept or copied without
them.
"""

import os
import subprocess

from enas_tf.study import plan
from enas_tf.study import scoring
from enas_tf.training import run_config

LOGS = "logs"


class RunFailedError(RuntimeError):
    """A run's binary exited with an error; the message is one line."""


def run_study(study, max_runs=0, echo=print):
    """Starts the study's unfinished runs in order; with ``max_runs`` > 0, at
    most that many in this call. Returns whether every run is finished.
    The shared-weight scores are cached as soon as the searches are."""
    started = 0

    def ensure(run):
        nonlocal started
        if plan.finished(study.path(run)):
            return True
        if max_runs and started >= max_runs:
            return False
        started += 1
        echo(f"running {run.name}")
        _run(study, run)
        return True

    searches = study.searches()
    if not all([ensure(run) for run in searches]):
        return False
    search_arcs = {run.name: plan.best_arc(study.path(run)) for run in searches}
    study.draw_random_arcs(_space(study, searches))
    retrainings = study.retrainings(search_arcs)
    arcs = [run.arc for run in retrainings]
    for run in searches:
        scoring.cached_scores(study.directory, run.name, study.path(run), arcs)
    return all([ensure(run) for run in retrainings])


def _run(study, run):
    """Runs one binary to its end; RunFailedError if it fails or ends unfinished."""
    os.makedirs(os.path.join(study.directory, LOGS), exist_ok=True)
    log_path = os.path.join(study.directory, LOGS, f"{run.name}.log")
    env = dict(os.environ)
    # The package as this process imported it, also from a checkout that is not installed.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with open(log_path, "a", encoding="utf-8") as log:
        code = subprocess.run(study.command(run), stdout=log, stderr=subprocess.STDOUT,
                              env=env, check=False).returncode
    if code:
        raise RunFailedError(f"{run.name} failed (exit {code}); its output is in {log_path}; "
                             "rerun the study to resume it")
    if not plan.finished(study.path(run)):
        raise RunFailedError(f"{run.name} exited without finishing (see {log_path})")


def _space(study, searches):
    """The searches' common space, from their config.json: the random arcs are
    drawn from what a search could derive."""
    spaces = {}
    for run in searches:
        space = run_config.load(study.path(run)).space()
        spaces[(type(space).__name__, tuple(space.bounds.tolist()))] = space
    if len(spaces) != 1:
        raise plan.StudyError("the study's searches ran in different search spaces; "
                              "their flags must give one space")
    return next(iter(spaces.values()))
