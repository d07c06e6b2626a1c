"""bin/study_search: ENAS against random search at an equal budget, retrained and reported.

Study:   bin/study_search --flagfile=flags/study_ptb_cpu.cfg
Resume:  the same command; finished runs are kept, unfinished ones resume.

Runs S seeds of each strategy (and of each --study_arm), retrains every
search's arc and R uniformly drawn arcs with one protocol, scores every
retrained arc with each search's shared weights, then writes report.md,
report.json and PNGs into --study_dir (see enas_tf/study/). Run it from the repository root like the other
binaries: flag files and data paths are relative to the working directory.
"""

import os
import shlex
import signal
import sys

from absl import app
from absl import flags

from enas_tf.study import plan
from enas_tf.study import report
from enas_tf.study import runner

FLAGS = flags.FLAGS

flags.DEFINE_string("study_dir", None, "Directory of the study: one run directory per "
                    "search and retraining, plan.json, logs/, scores/ and the report. "
                    "An existing study there resumes.")
flags.DEFINE_string("study_family", None, "Search space: 'ptb' (bin/search_ptb), "
                    "'macro' or 'micro' (bin/search_cifar).")
flags.DEFINE_integer("study_seeds", 3, "Searches per strategy (the study asks for at "
                     "least 3); search k of both strategies runs with --study_seed + k.")
flags.DEFINE_integer("study_random_arcs", 8, "Uniformly drawn arcs retrained as the "
                     "baseline distribution (the study asks for at least 8).")
flags.DEFINE_integer("study_seed", 0, "First search seed, the seed of the random arcs' "
                     "draw and of every retraining.")
flags.DEFINE_string("search_flagfile", None, "Flag file of every search (the search "
                    "binary's flags, e.g. flags/ptb_search_quick.cfg).")
flags.DEFINE_multi_string("search_arg", [], "A further search flag, e.g. "
                          "--search_arg=--num_epochs=2 (repeatable; after the flag file).")
flags.DEFINE_string("retrain_flagfile", None, "Flag file of every retraining from "
                    "scratch (e.g. flags/ptb_final_quick.cfg): the one protocol.")
flags.DEFINE_multi_string("retrain_arg", [], "A further retraining flag (repeatable).")
flags.DEFINE_multi_string("study_arm", [], "A further ENAS arm, NAME:FLAGS, e.g. "
                          "--study_arm='eps8:--controller_adam_epsilon=1e-8': its searches "
                          "(search_enas_NAME_seed<k>) add FLAGS to the search flags and are "
                          "compared like the others. Repeatable; arms may be added to a study "
                          "that has run, and only their runs then run.")
flags.DEFINE_integer("study_max_runs", 0, "Start at most this many runs, then stop "
                     "(rerun to continue); 0: run the whole study.")

# The flags behind the parameters that study errors name.
_FLAG_NAMES = {"study_dir": "--study_dir", "family": "--study_family",
               "seeds": "--study_seeds", "random_arcs": "--study_random_arcs",
               "seed": "--study_seed", "search_args": "--search_flagfile/--search_arg",
               "retrain_args": "--retrain_flagfile/--retrain_arg", "arms": "--study_arm"}


def _binary_args(flagfile_flag, args_flag):
    """A flag file (made absolute, so a resume from elsewhere reads the same) and its extras."""
    flagfile = FLAGS[flagfile_flag].value
    if not flagfile:
        raise plan.StudyError(f"--{flagfile_flag} must name a flag file of the "
                              "search binary")
    if not os.path.isfile(flagfile):
        raise plan.StudyError(f"--{flagfile_flag}={flagfile}: no such file")
    return (f"--flagfile={os.path.abspath(flagfile)}",) + tuple(FLAGS[args_flag].value)


def settings_from_flags():
    if not FLAGS.study_dir:
        raise plan.StudyError("--study_dir must name the study's directory")
    if FLAGS.study_max_runs < 0:
        raise plan.StudyError(f"--study_max_runs must be 0 (no limit) or more. "
                              f"Received: {FLAGS.study_max_runs}")
    return plan.Settings(
        family=FLAGS.study_family, seeds=FLAGS.study_seeds,
        random_arcs=FLAGS.study_random_arcs, seed=FLAGS.study_seed,
        search_args=_binary_args("search_flagfile", "search_arg"),
        retrain_args=_binary_args("retrain_flagfile", "retrain_arg"),
        arms=[_arm(spec) for spec in FLAGS.study_arm])


def _arm(spec):
    """NAME:FLAGS as (name, [flags]) (FLAGS split as a shell would)."""
    name, sep, args = spec.partition(":")
    if not sep:
        raise plan.StudyError(f"--study_arm={spec}: expected NAME:FLAGS, e.g. "
                              "eps8:--controller_adam_epsilon=1e-8")
    return name, shlex.split(args)


def study_search():
    """Runs what the study has not finished; writes the report once all is done."""
    study = plan.Study.open(FLAGS.study_dir, settings_from_flags())
    if not runner.run_study(study, FLAGS.study_max_runs):
        print(f"stopped after {FLAGS.study_max_runs} runs (--study_max_runs); "
              "rerun the same command to continue")
        return None
    result = report.write(study)
    print(f"report: {os.path.join(study.directory, report.REPORT_MD)}")
    return result


def _stop(signum, frame):  # pylint: disable=unused-argument
    """SIGTERM ends the study like Ctrl-C: the run in progress is killed with it
    (subprocess.run kills its child on any exception) and resumes on the next call."""
    raise SystemExit(128 + signum)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    signal.signal(signal.SIGTERM, _stop)
    try:
        study_search()
    except plan.StudyError as e:
        print(f"error: {e.worded(_FLAG_NAMES)}", file=sys.stderr)
        sys.exit(2)
    except runner.RunFailedError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
