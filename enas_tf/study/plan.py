"""Which runs a study holds: their names, directories and command lines; plan.json.

A study is S seeds of each search strategy, the final arc of every search
retrained from scratch, and R uniformly drawn arcs retrained the same way.
Each run is its own run directory below the study directory, named so a
rerun finds it (``search_<strategy>_seed<k>``, ``retrain_<search name>``,
``retrain_random_<i>``), and each is run by the family's search binary, so
the binary's own resume applies inside a run.

The budget is matched by giving both strategies the same search flags: the
same epochs and shared-weight steps, and the binary's random strategy spends
the controller phase's validation batches on its derivation
(``LoopConfig.derive_arcs``). Only ``--search_strategy`` and ``--seed``
differ, and the seeds are shared, so seed k of ENAS and of random search
start from the same weights.

plan.json records the settings and, once drawn, the random arcs: a resumed
study runs and draws exactly the same, and a study directory started with
other settings is refused rather than mixed.
"""

import dataclasses
import os
import sys

import numpy as np

from enas_tf.training import errors
from enas_tf.training import run_config
from enas_tf.training import run_dir
from enas_tf.training import search

PLAN = "plan.json"
STRATEGIES = search.SEARCH_STRATEGIES


class StudyError(errors.NamesParameters, ValueError):
    """A study that cannot run as asked; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Metric:
    """A family's stand-alone metric and its direction."""

    name: str  # summary.json holds valid_<name> and test_<name>
    lower_is_better: bool


METRICS = {"ptb": Metric("ppl", True), "macro": Metric("acc", False),
           "micro": Metric("acc", False)}
_BINARIES = {"ptb": "enas_tf.cli.search_ptb", "macro": "enas_tf.cli.search_cifar",
             "micro": "enas_tf.cli.search_cifar"}
_SEARCH_FOR = {"ptb": "enas", "macro": "macro", "micro": "micro"}


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a study runs. The issue asks for seeds >= 3 and random_arcs >= 8;
    smaller values are allowed (down to 1 seed, 2 arcs: a spread needs two)
    so a test can run a whole study in a minute, and the report says when a
    statistic needs more values than it has."""

    family: str  # one of run_config.FAMILIES
    seeds: int = 3  # searches per strategy; search k of each runs with seed + k
    random_arcs: int = 8  # uniformly drawn arcs, the distribution a search must beat
    seed: int = 0  # first search seed, the random arcs' draw and every retraining's seed
    search_args: tuple = ()  # binary flags of every search (e.g. a --flagfile)
    retrain_args: tuple = ()  # binary flags of every retraining: the one protocol

    def __post_init__(self):
        if self.family not in run_config.FAMILIES:
            raise StudyError(f"{{family}} must be one of {', '.join(run_config.FAMILIES)}. "
                             f"Received: {self.family!r}")
        if self.seeds < 1:
            raise StudyError(f"{{seeds}} must be at least 1. Received: {self.seeds}")
        if self.random_arcs < 2:
            raise StudyError(f"{{random_arcs}} must be at least 2. Received: {self.random_arcs}")
        object.__setattr__(self, "search_args", tuple(self.search_args))
        object.__setattr__(self, "retrain_args", tuple(self.retrain_args))

    @property
    def metric(self):
        return METRICS[self.family]

    def to_json(self):
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of the study: a search, or the retraining of one arc."""

    name: str
    args: tuple  # the binary's flags
    strategy: str | None = None  # searches
    seed: int | None = None  # searches
    arc: str | None = None  # retrainings
    source: str | None = None  # retrainings: the search it retrains, or "random"


class Study:
    """A study directory: its settings, runs and random arcs."""

    def __init__(self, directory, settings, random_arcs=None):
        self.directory, self.settings = directory, settings
        self.random_arcs = random_arcs  # official arc strings, once drawn

    @classmethod
    def open(cls, directory, settings):
        """The study in ``directory``: new, or resumed if its plan.json has these settings."""
        path = os.path.join(directory, PLAN)
        if not os.path.exists(path):
            os.makedirs(directory, exist_ok=True)
            study = cls(directory, settings)
            study.save()
            return study
        plan = run_dir.read_json(path)
        recorded = plan["settings"]
        for name, value in settings.to_json().items():
            if value != recorded.get(name):
                raise StudyError(
                    f"{{study_dir}}={directory} holds a study with other settings "
                    f"({{{name}}} was {recorded.get(name)!r}, now {value!r}); "
                    "rerun it with its own settings or choose another {study_dir}")
        return cls(directory, settings, plan.get("random_arcs"))

    def save(self):
        run_dir.write_json(os.path.join(self.directory, PLAN),
                           {"settings": self.settings.to_json(),
                            "random_arcs": self.random_arcs})

    def path(self, run):
        return os.path.join(self.directory, run.name)

    def searches(self):
        """Seed by seed, ENAS then random: an interrupted study has both strategies' seed 0 first."""
        s = self.settings
        runs = []
        for k in range(s.seeds):
            for strategy in STRATEGIES:
                name = f"search_{strategy}_seed{k}"
                runs.append(Run(name, s.search_args + (
                    f"--search_for={_SEARCH_FOR[s.family]}", "--controller_training",
                    f"--search_strategy={strategy}", f"--seed={s.seed + k}",
                    f"--output_dir={os.path.join(self.directory, name)}",
                    "--noreset_output_dir"), strategy=strategy, seed=s.seed + k))
        return runs

    def draw_random_arcs(self, space):
        """Draws the R random arcs from ``space`` once (numpy, seeded by the study's
        seed) and records them; a resumed study keeps the recorded ones."""
        if self.random_arcs is None:
            rng = np.random.default_rng(self.settings.seed)
            self.random_arcs = [space.to_string(space.random_arc(rng))
                                for _ in range(self.settings.random_arcs)]
            self.save()
        return self.random_arcs

    def retrainings(self, search_arcs):
        """The retraining of each search's arc (``search_arcs``: search name -> arc),
        then of each random arc; all with the same flags and seed."""
        sources = [(f"retrain_{name}", name, arc) for name, arc in search_arcs.items()]
        sources += [(f"retrain_random_{i}", "random", arc)
                    for i, arc in enumerate(self.random_arcs)]
        s = self.settings
        return [Run(name, s.retrain_args + (
            f"--search_for={_SEARCH_FOR[s.family]}", "--nocontroller_training",
            f"--child_fixed_arc={arc}", f"--seed={s.seed}",
            f"--output_dir={os.path.join(self.directory, name)}", "--noreset_output_dir"),
            arc=arc, source=source) for name, source, arc in sources]

    def command(self, run):
        """The run's command line: the family's binary in this Python."""
        return [sys.executable, "-m", _BINARIES[self.settings.family]] + list(run.args)


def finished(path):
    """Whether the run in ``path`` is done: all its epochs, and its final result
    (a search's derived arc, a retraining's test metric) in summary.json."""
    try:
        summary = run_dir.read_json(os.path.join(path, run_dir.SUMMARY))
        config = run_config.load(path)
    except (OSError, ValueError):
        return False
    return (summary.get("epochs_done") == config.loop.num_epochs
            and summary.get("best_arc") is not None
            and os.path.exists(os.path.join(path, run_dir.BEST_ARC)))


def best_arc(path):
    """The arc a finished search derived (its best_arc.txt), on one line."""
    with open(os.path.join(path, run_dir.BEST_ARC), encoding="utf-8") as f:
        return " ".join(f.read().split())
