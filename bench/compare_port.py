"""Our PTB search steps against the PyTorch ENAS port's, measured in one sitting.

A speed-up over a peer means something only when both were timed on the same
machine at the same time: this script runs, alternately and each as its own
process, ``ptb_search_step.py`` (float32; also ``mixed_bfloat16`` with
``--bf16``) and the port's ``run.sh`` (carpedm20/ENAS-pytorch, timed by
``shared/peers/enas_pytorch/time_port.py``) at the same size, for
``--rounds`` rounds (ours, port, [ours bf16], [port stock], then again), and
reads back the JSON each wrote. Per step kind (shared-weight step,
controller step) it prints each contender's median seconds per round, the
ratio port / ours of each round and their spread (min-max over rounds),
and each step's rate as a fraction of the same process's float32 2048
matmul ceiling (none for a bfloat16 run, whose ceilings are bfloat16).
Ratios above 1 mean we are faster.

The port runs at its best: ``MKL_AMD_FIX=1`` (run.sh preloads a shim that
lets the torch wheel's MKL use its AVX-512 sgemm on AMD CPUs; a no-op on
Intel), with ``--threads`` torch threads (default: every CPU, as TensorFlow
uses) and the same 3 untimed warm-up steps as ours. ``--port_stock`` adds
the stock wheel (``MKL_AMD_FIX=0``) as a fourth contender. The port's venv
is built (or checked) once before the first round, outside the sitting.

What the steps are: the port's shared step is the body of its
``Trainer.train_shared`` (sample, forward, backward, clip, SGD); its
controller step that of ``train_controller`` *including* its per-arc Adam
step, while our controller step leaves out the Adam update (applied every
``controller_num_aggregate`` arcs; timed apart, as each of our runs'
``controller_update_seconds``). The port's run-time patches are listed in
``shared/peers/enas_pytorch/PATCHES.md``.

On a GPU machine this runs unchanged: our side then runs on the GPU (the
JSON lists it), while the port's ``time_port.py`` builds its trainer with
``--num_gpu 0`` and always runs on the CPU; it is started with
``CUDA_VISIBLE_DEVICES=`` so its CPU patches apply. The ratios then compare
our GPU step with the port's CPU step, and the table says so.

    python bench/compare_port.py --data_path=$PWD/../shared/data/ptb \\
        --port_dir=$PWD/../shared/peers/enas_pytorch --rounds=3 --steps=8 --bf16 \\
        --port_stock --json_out=compare_port.json
    python bench/compare_port.py --hidden_size=32 --num_nodes=4 --batch_size=8 \\
        --bptt=5 --steps=2   # a smoke run: its times mean nothing
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

import harness

FLAGS = flags.FLAGS

HERE = os.path.dirname(os.path.abspath(__file__))
WARMUP = 3  # ptb_search_step.py's (harness.timed's default); the port is given the same.
LABELS = {"ours_float32": "ours f32", "ours_bfloat16": "ours bf16",
          "port": "port", "port_stock": "port stock"}
# Each step kind's key prefix in each side's JSON.
STEP_KEYS = {"shared-weight step": {"ours": "child_step", "port": "shared_step"},
             "controller step": {"ours": "controller_step", "port": "controller_step"}}


def side(name):
    """'ours' or 'port': which script a contender's JSON came from."""
    return name.split("_")[0]


def f32_square_ceiling(name, result):
    """The run's own float32 2048 matmul ceiling (GFLOP/s), or None if it has none.

    Ours measures its ceilings in the child's compute dtype (``ceiling_dtype``);
    the port's (``--ceilings``) are float32 and summarised as median/min/max.
    """
    ceilings = result.get("matmul_ceilings_gflops_per_second")
    if not ceilings:
        return None
    if side(name) == "ours":
        return ceilings["square_2048"] if result.get("ceiling_dtype") == "float32" else None
    return ceilings["square_2048"]["median"]


def check_same_size(rounds):
    """Raises ValueError unless every run timed the same shape (keys both sides give)."""
    keys = ("hidden", "nodes", "batch", "bptt", "vocab")
    shapes = {(i, name): tuple(result["shape"][k] for k in keys)
              for i, runs in enumerate(rounds) for name, result in runs.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError("runs timed different sizes (" + ", ".join(keys) + "): " + "; ".join(
            f"round {i + 1} {name} {shape}" for (i, name), shape in sorted(shapes.items())))


def summarize(rounds):
    """Per step kind: medians, fractions of the f32 2048 ceiling and ratios, per round.

    ``rounds`` is a list (one entry per round) of {contender: its JSON}, the
    contenders named as in ``LABELS``. Each port contender is divided by each
    of ours, round by round (the two runs of a round sat next to each other).
    """
    check_same_size(rounds)
    names = [n for n in LABELS if n in rounds[0]]
    summary = {}
    for kind, keys in STEP_KEYS.items():
        seconds, fractions = {}, {}
        for name in names:
            key = keys[side(name)]
            seconds[name] = [runs[name][f"{key}_seconds"]["median"] for runs in rounds]
            fractions[name] = []
            for runs, median in zip(rounds, seconds[name]):
                ceiling = f32_square_ceiling(name, runs[name])
                fractions[name].append(
                    runs[name][f"{key}_gflop"] / median / ceiling if ceiling else None)
        ratios = {f"{port}/{ours}": [p / o for p, o in zip(seconds[port], seconds[ours])]
                  for port in names if side(port) == "port"
                  for ours in names if side(ours) == "ours"}
        summary[kind] = {
            "seconds_median_per_round": seconds,
            "fraction_of_f32_2048_ceiling_per_round": fractions,
            "ratio_per_round": ratios,
            "ratio_spread": {pair: {"min": min(r), "max": max(r), "median": statistics.median(r)}
                             for pair, r in ratios.items()}}
    return summary


def cpu_model():
    """The CPU's model name (Linux), which decides what the MKL fix does."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name")), "")
    except OSError:
        return ""


def devices(rounds):
    """Where each contender ran: the port always on the CPU (time_port.py's --num_gpu 0)."""
    return {name: ("GPU" if result.get("gpus") else "CPU")
            for name, result in rounds[0].items()}


def print_summary(summary, where):
    names = list(next(iter(summary.values()))["seconds_median_per_round"])
    for kind, figures in summary.items():
        seconds, ratios = figures["seconds_median_per_round"], figures["ratio_per_round"]
        fractions = figures["fraction_of_f32_2048_ceiling_per_round"]
        print(f"\n{kind}: median seconds per round, port / ours, "
              "fraction of the run's own float32 2048 matmul ceiling")
        titles = ([("round", "")] + [(f"{LABELS[n]} ({where[n]}) s", ".3f") for n in names]
                  + [(pair.replace("_float32", " f32").replace("_bfloat16", " bf16")
                      .replace("_stock", " stock"), ".2f") for pair in ratios]
                  + [(f"{LABELS[n]} /ceil", ".2f") for n in names])
        columns = [(title, len(title) + 2, spec) for title, spec in titles]
        rows = [(str(i + 1),) + tuple(seconds[n][i] for n in names)
                + tuple(r[i] for r in ratios.values()) + tuple(fractions[n][i] for n in names)
                for i in range(len(next(iter(seconds.values()))))]
        harness.print_table(columns, rows)
        for pair, spread in figures["ratio_spread"].items():
            print(f"  {pair}: {spread['min']:.2f}-{spread['max']:.2f} over {len(rows)} rounds")


def contenders():
    """{name: (argv, env overrides)} in the order of a round: ours and the port alternate."""
    data_path = os.path.abspath(FLAGS.data_path)
    run_sh = os.path.join(os.path.abspath(FLAGS.port_dir), "run.sh")
    ours = [sys.executable, os.path.join(HERE, "ptb_search_step.py"),
            f"--data_path={data_path}", f"--hidden_size={FLAGS.hidden_size}",
            f"--num_nodes={FLAGS.num_nodes}", f"--batch_size={FLAGS.batch_size}",
            f"--bptt={FLAGS.bptt}", f"--steps={FLAGS.steps}"]
    port = [run_sh, f"--data_path={data_path}", f"--hidden={FLAGS.hidden_size}",
            f"--num_blocks={FLAGS.num_nodes}", f"--batch_size={FLAGS.batch_size}",
            f"--bptt={FLAGS.bptt}", f"--steps={FLAGS.steps}", f"--warmup={WARMUP}",
            f"--threads={FLAGS.threads}", "--ceilings"]
    hide_gpus = {"CUDA_VISIBLE_DEVICES": ""}
    runs = {"ours_float32": (ours + ["--child_precision=float32"], {}),
            "port": (port, dict(hide_gpus, MKL_AMD_FIX="1"))}
    if FLAGS.bf16:
        runs["ours_bfloat16"] = (ours + ["--child_precision=mixed_bfloat16"], {})
    if FLAGS.port_stock:
        runs["port_stock"] = (port, dict(hide_gpus, MKL_AMD_FIX="0"))
    return runs


def run(argv, env, log_path):
    """Runs one contender to completion, its output to ``log_path``; fails loudly."""
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.run(argv, env=dict(os.environ, **env), stdout=log,
                              stderr=subprocess.STDOUT, check=False).returncode
    if code:
        with open(log_path, encoding="utf-8") as log:
            tail = log.read()[-3000:]
        raise RuntimeError(f"{' '.join(argv)} exited {code}; the end of {log_path}:\n{tail}")


def main(argv):
    del argv
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="compare_port_")
    os.makedirs(work_dir, exist_ok=True)
    runs = contenders()
    port_argv, port_env = runs["port"]
    print(f"logs and JSON in {work_dir}; building or checking the port's venv first")
    run([port_argv[0], "--help"], port_env, os.path.join(work_dir, "port_venv.log"))
    rounds = []
    for i in range(FLAGS.rounds):
        results = {}
        for name, (cmd, env) in runs.items():
            out = os.path.join(work_dir, f"round{i + 1}_{name}.json")
            print(f"round {i + 1}/{FLAGS.rounds}: {name}", flush=True)
            run(cmd + [f"--json_out={out}"], env, out[:-len(".json")] + ".log")
            with open(out, encoding="utf-8") as f:
                results[name] = json.load(f)
        rounds.append(results)
    summary = summarize(rounds)
    where = devices(rounds)
    print_summary(summary, where)
    first = rounds[0]
    harness.finish({
        "shape": first["ours_float32"]["shape"], "steps": FLAGS.steps, "warmup": WARMUP,
        "rounds_run": FLAGS.rounds, "cpu_model": cpu_model(), "devices": where,
        "tensorflow_in_runs": first["ours_float32"]["tensorflow"],
        "torch": first["port"]["torch"], "port_threads": first["port"]["threads"],
        "commands": {name: {"argv": cmd, "env": env} for name, (cmd, env) in runs.items()},
        "summary": summary, "runs": rounds})


def define_flags():
    """Defined on the command line only: importing this module (its tests) defines none."""
    flags.DEFINE_string("data_path", "../shared/data/ptb", "PTB directory (ptb.*.txt).")
    flags.DEFINE_string("port_dir", "../shared/peers/enas_pytorch", "Holds the port's run.sh.")
    flags.DEFINE_integer("hidden_size", 1000, "Hidden = embedding size (the port's --hidden).")
    flags.DEFINE_integer("num_nodes", 12, "Cell nodes (the port's --num_blocks).")
    flags.DEFINE_integer("batch_size", 64, "Batch size.")
    flags.DEFINE_integer("bptt", 35, "BPTT length.")
    flags.DEFINE_integer("steps", 8, "Timed steps of each kind per run (after 3 warm-up).")
    flags.DEFINE_integer("rounds", 2, "Rounds of alternating runs.", lower_bound=2)
    flags.DEFINE_bool("bf16", False, "Also run ours with --child_precision=mixed_bfloat16.")
    flags.DEFINE_bool("port_stock", False, "Also run the port's stock wheel (MKL_AMD_FIX=0).")
    flags.DEFINE_integer("threads", os.cpu_count(), "The port's torch threads.", lower_bound=1)
    flags.DEFINE_string("work_dir", "", "Each run's JSON and log go here (default: a new temp dir).")


if __name__ == "__main__":
    define_flags()
    app.run(main)
