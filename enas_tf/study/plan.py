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

Further ENAS arms (``Settings.arms``) test other controller settings at the
same budget: arm NAME adds its flags after the search flags, and its runs
are named ``search_enas_NAME_seed<k>``. Arms may be added to a study that
has run: only their searches and retrainings run, and the report compares
every arm with the same random search and random architectures.

plan.json records the settings and, once drawn, the random arcs: a resumed
study runs and draws exactly the same, and a study directory started with
other settings is refused rather than mixed.
"""

import dataclasses
import os
import re
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
_ARM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")
_STUDY_SETS = ("--search_strategy", "--seed", "--output_dir", "--search_for")  # per run


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
    arms: tuple = ()  # further ENAS arms: (name, flags added to the search flags) pairs

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
        object.__setattr__(self, "arms", tuple((name, tuple(args)) for name, args in self.arms))
        names = [name for name, _ in self.arms]
        for name, args in self.arms:
            if not _ARM_NAME.fullmatch(name) or names.count(name) > 1:
                raise StudyError(f"{{arms}}: arm names must be unique letters, digits, '.' "
                                 f"and '-'. Received: {name!r}")
            if not args:
                raise StudyError(f"{{arms}}: arm {name!r} adds no search flags")
            fixed = [a for a in args if a.split("=")[0] in _STUDY_SETS]
            if fixed:
                raise StudyError(f"{{arms}}: arm {name!r} sets {fixed[0]}, which the study "
                                 f"sets per run (it sets {', '.join(_STUDY_SETS)})")

    @property
    def metric(self):
        return METRICS[self.family]

    @property
    def groups(self):
        """The search groups the report compares: the strategies, then the arms."""
        return list(STRATEGIES) + [f"enas_{name}" for name, _ in self.arms]

    def to_json(self):
        out = {name: list(value) if isinstance(value, tuple) else value
               for name, value in dataclasses.asdict(self).items()}
        out["arms"] = [[name, list(args)] for name, args in self.arms]
        return out


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of the study: a search, or the retraining of one arc."""

    name: str
    args: tuple  # the binary's flags
    strategy: str | None = None  # searches
    group: str | None = None  # searches: the strategy, or enas_<arm>
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
        recorded = dict(plan["settings"])
        recorded.setdefault("arms", [])  # a plan.json from before arms
        wanted = settings.to_json()
        arms_added = (wanted["arms"] != recorded["arms"]
                      and wanted["arms"][:len(recorded["arms"])] == recorded["arms"])
        if arms_added:
            recorded["arms"] = wanted["arms"]  # arms may be added, never changed
        for name, value in wanted.items():
            if value != recorded.get(name):
                raise StudyError(
                    f"{{study_dir}}={directory} holds a study with other settings "
                    f"({{{name}}} was {recorded.get(name)!r}, now {value!r}); "
                    "rerun it with its own settings (arms may only be added after "
                    "its own) or choose another {study_dir}")
        study = cls(directory, settings, plan.get("random_arcs"))
        if arms_added:
            study.save()
        return study

    def save(self):
        run_dir.write_json(os.path.join(self.directory, PLAN),
                           {"settings": self.settings.to_json(),
                            "random_arcs": self.random_arcs})

    def path(self, run):
        return os.path.join(self.directory, run.name)

    def searches(self):
        """Seed by seed, ENAS, random, then the arms: an interrupted study has every
        group's seed 0 first."""
        s = self.settings
        runs = []
        for k in range(s.seeds):
            groups = [(strategy, strategy, ()) for strategy in STRATEGIES]
            groups += [(f"enas_{name}", "enas", args) for name, args in s.arms]
            for group, strategy, extra in groups:
                name = f"search_{group}_seed{k}"
                runs.append(Run(name, s.search_args + extra + (
                    f"--search_for={_SEARCH_FOR[s.family]}", "--controller_training",
                    f"--search_strategy={strategy}", f"--seed={s.seed + k}",
                    f"--output_dir={os.path.join(self.directory, name)}",
                    "--noreset_output_dir"), strategy=strategy, group=group, seed=s.seed + k))
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
