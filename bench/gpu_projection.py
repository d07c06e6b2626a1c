"""The paper-size searches' time on one GPU, projected from their FLOP counts.

No GPU is measured here: this is arithmetic, and it says what it assumes.

1. FLOPs of a whole search at the paper's settings (the presets
   ``ptb_search``, ``macro_search``, ``micro_search``: epochs, batch,
   controller arcs per epoch), counted from the shapes as the step
   benchmarks count them (``ptb_flops.py``, ``cifar_flops.py``; a training
   step is 3x its forward pass; a CIFAR arc's count is the mean over
   ``--arcs`` uniformly drawn arcs). Per epoch: the shared-weight steps over
   the training split, one forward pass per controller-scored arc (on a
   batch of the search's batch size), the validation pass; then the
   derivation's arcs once. Left out: the controller's own LSTM (under 0.1%
   of any of them) and elementwise ops, BN and pooling (not counted by the
   step benchmarks either).
2. The fraction of a GPU's dense peak a search sustains: by default the
   fraction the paper's own run implies, i.e. the search's FLOPs over its
   reported time on its GTX 1080 Ti (PTB "about 10 hours"; macro 0.32 and
   micro 0.45 GPU days), and ``--fraction`` (default 0.5: about what our
   float32 CPU steps reach of their own matmul ceiling, i.e. a step as
   compute bound on the GPU as it is on the CPU). The paper-implied
   fractions are low for CIFAR (its runs were bound by per-op overheads,
   not FLOPs), and the same fraction on a faster GPU is an assumption: the
   small convolutions (20-36 channels) and the 64-row PTB matmuls fill a
   large GPU worse than a small one. The bfloat16 column (tensor-core peak)
   is the loosest.

    python bench/gpu_projection.py --json_out=gpu_projection.json
    python bench/gpu_projection.py --fraction=0.3
"""

import math

import numpy as np
from absl import app
from absl import flags

import cifar_flops
import harness
import ptb_flops
import enas_tf
from enas_tf.data import ptb

flags.DEFINE_integer("arcs", 64, "Uniformly drawn arcs whose mean FLOPs stand for a "
                     "CIFAR search's arc.", lower_bound=1)
flags.DEFINE_float("fraction", 0.5, "A fraction of each GPU's dense peak to assume, "
                   "beside the one the paper's own run implies.", lower_bound=0.01,
                   upper_bound=1.0)
FLAGS = flags.FLAGS

# Dense peaks, TFLOP/s, from the vendors' data sheets: (float32, bfloat16 tensor cores).
GPUS = {"GTX 1080 Ti": (11.34, None), "L4": (30.3, 121.0), "A100 SXM": (19.5, 312.0),
        "H100 SXM": (66.9, 989.0)}
PAPER_GPU = "GTX 1080 Ti"
# The paper's search times on one GTX 1080 Ti, hours (ENAS_REFERENCE.md).
PAPER_HOURS = {"ptb": 10.0, "macro": 0.32 * 24, "micro": 0.45 * 24}
# Real PTB token counts (train, valid) and vocabulary; CIFAR-10's search split.
PTB_TOKENS, PTB_VALID_TOKENS, PTB_VOCAB = 929_589, 73_760, 10_000
CIFAR_TRAIN_IMAGES = 50_000


def ptb_search_flops():
    """Total FLOPs of the paper's PTB search, and its parts per epoch."""
    config = enas_tf.preset("ptb_search")
    task, loop = config.task, config.loop
    window = ptb_flops.step_flops(task.batch_size, task.bptt, task.hidden_size,
                                  task.num_nodes, PTB_VOCAB)
    per_token = window / (task.batch_size * task.bptt)
    parts = {"shared_steps": ptb.num_windows(PTB_TOKENS, task.batch_size, task.bptt) * 3 * window,
             "controller_arcs": loop.controller_train_steps * loop.controller_num_aggregate
             * window,
             "validation": PTB_VALID_TOKENS * per_token}
    return _total(parts, loop, derive=loop.derive_num_samples * window)


def cifar_search_flops(space_name, num_arcs):
    """Total FLOPs of the paper's ``space_name`` search, and its parts per epoch;
    an arc counts as the mean of ``num_arcs`` uniformly drawn ones."""
    config = enas_tf.preset(f"{space_name}_search")
    task, loop = config.task, config.loop
    space = config.space()
    rng = np.random.default_rng(0)
    arcs = [space.random_arc(rng) for _ in range(num_arcs)]

    def mean_forward(batch, aux_head=False):
        return float(np.mean([cifar_flops.forward(space, arc, task, batch, aux_head=aux_head)
                              for arc in arcs]))

    steps = math.ceil((CIFAR_TRAIN_IMAGES - task.num_valid) / task.batch_size)
    batch_forward = mean_forward(task.batch_size)
    parts = {"shared_steps": steps * 3 * mean_forward(task.batch_size, task.use_aux_heads),
             "controller_arcs": loop.controller_train_steps * loop.controller_num_aggregate
             * batch_forward,
             "validation": task.num_valid / task.batch_size * batch_forward}
    return _total(parts, loop, derive=loop.derive_num_samples * batch_forward)


def _total(parts, loop, derive):
    return {"epochs": loop.num_epochs, "per_epoch_pflop": {k: v / 1e15 for k, v in parts.items()},
            "derive_pflop": derive / 1e15,
            "total_pflop": (loop.num_epochs * sum(parts.values()) + derive) / 1e15}


def project(flops, fraction):
    """Hours of ``flops`` (PFLOP) on each GPU at ``fraction`` of its dense peaks."""
    out = {}
    for gpu, peaks in GPUS.items():
        out[gpu] = [None if peak is None else flops * 1e15 / (peak * 1e12 * fraction) / 3600
                    for peak in peaks]
    return out


def main(argv):
    del argv
    families = {"ptb": ptb_search_flops(), "macro": cifar_search_flops("macro", FLAGS.arcs),
                "micro": cifar_search_flops("micro", FLAGS.arcs)}
    rows = []
    for family, counted in families.items():
        implied = counted["total_pflop"] * 1e15 / (
            PAPER_HOURS[family] * 3600 * GPUS[PAPER_GPU][0] * 1e12)
        counted.update(paper_hours=PAPER_HOURS[family], implied_fraction_of_1080ti=implied,
                       hours_float32_bfloat16={
                           "paper_implied": project(counted["total_pflop"], implied),
                           f"fraction_{FLAGS.fraction:g}": project(counted["total_pflop"],
                                                                   FLAGS.fraction)})
        for assumption, fraction in (("paper_implied", implied),
                                     (f"fraction_{FLAGS.fraction:g}", FLAGS.fraction)):
            for gpu, (f32, bf16) in counted["hours_float32_bfloat16"][assumption].items():
                rows.append((family, counted["total_pflop"], fraction, gpu, f32, bf16))
    harness.print_table([("search", 7, ""), ("PFLOP", 8, ".1f"), ("fraction", 9, ".3f"),
                         ("GPU", 12, ""), ("h f32", 8, ".2f"), ("h bf16", 8, ".2f")], rows)
    harness.finish({"gpus_dense_peak_tflops": {k: {"float32": v[0], "bfloat16": v[1]}
                                               for k, v in GPUS.items()},
                    "arcs_averaged": FLAGS.arcs, "searches": families})


if __name__ == "__main__":
    app.run(main)
