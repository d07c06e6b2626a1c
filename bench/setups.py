"""The search pieces the benchmarks run, built as bin/search_ptb and bin/search_cifar build them.

Sizes are arguments; the other child settings are the paper runs'
(flags/ptb_search.cfg, flags/cifar10_{macro,micro}_search.cfg) and the
controllers are the library's with each family's official settings
(``run_config.controller_defaults``), so a benchmark times the steps a
user's search runs. The compiled steps
are the search loop's own, taken from a ``SearchLoop`` over a scratch
directory.
"""

import keras
import tensorflow as tf
from absl import flags

from enas_tf.models import ptb_child
from enas_tf.search_space import macro
from enas_tf.search_space import micro
from enas_tf.training import cifar_task
from enas_tf.training import ptb_task
from enas_tf.training import run_config
from enas_tf.training import search

# The paper's search sizes and the settings that differ between the spaces
# (flags/cifar10_{macro,micro}_search.cfg).
CIFAR_PAPER = {
    "macro": {"num_layers": 12, "out_filters": 36, "batch_size": 128},
    "micro": {"num_layers": 6, "out_filters": 20, "batch_size": 160},
}
_CIFAR_SPACE = {
    "macro": {"num_branches": len(macro.OPS), "use_aux_heads": False, "l2_reg": 2.5e-4},
    "micro": {"num_branches": len(micro.OPS), "use_aux_heads": True, "l2_reg": 1e-4},
}
_SEARCH_VALID_IMAGES = 5000
PTB_KEEP_PROBS = ptb_child.KeepProbs(0.75, 0.25, 0.75, 0.25)  # flags/ptb_search.cfg


FAMILIES = ("ptb", "macro", "micro")


def define_families_flag():
    """--families: which of the PTB cell and the CIFAR macro and micro children to run."""
    flags.DEFINE_list("families", list(FAMILIES), "Which of " + ", ".join(FAMILIES) + ".")
    flags.register_validator("families", lambda names: set(names) <= set(FAMILIES),
                             message="--families must name only " + ", ".join(FAMILIES))


def seeded_rng(seed=0):
    """Seeds weight init; returns the generator the search draws everything else from."""
    keras.utils.set_random_seed(seed)
    return tf.random.Generator.from_seed(seed)


def ptb_config(hidden_size, num_nodes, batch_size, bptt):
    return ptb_task.PtbConfig(num_nodes=num_nodes, hidden_size=hidden_size,
                              batch_size=batch_size, bptt=bptt, keep_probs=PTB_KEEP_PROBS)


def ptb_controller(num_nodes):
    """The PTB controller and its REINFORCE trainer, with the paper's settings."""
    return run_config.build_controller("ptb", ptb_task.PtbConfig(num_nodes=num_nodes))


def cifar_config(space, num_layers, out_filters, batch_size, num_images,
                 use_aux_heads=None, precision="float32"):
    """A search config: 5,000 reward images as the paper, fewer in a small sample.

    ``use_aux_heads`` None keeps the paper's choice for the space.
    """
    settings = _CIFAR_SPACE[space]
    aux = settings["use_aux_heads"] if use_aux_heads is None else use_aux_heads
    return cifar_task.CifarConfig(
        space=space, num_layers=num_layers, out_filters=out_filters,
        num_branches=settings["num_branches"], use_aux_heads=aux,
        batch_size=batch_size, num_valid=max(batch_size, min(_SEARCH_VALID_IMAGES,
                                                             num_images // 3)),
        l2_reg=settings["l2_reg"], precision=precision)


def cifar_controller(config):
    """The space's controller and its REINFORCE trainer, with the official settings."""
    return run_config.build_controller(config.space, config)


def search_loop(task, controller, reinforce, rng, output_dir):
    """The search loop whose compiled steps (sample, score, apply, reward) we time."""
    return search.SearchLoop(task, search.LoopConfig(verbose=False), output_dir, rng,
                             controller=controller, reinforce=reinforce)


def train_step(task, arc):
    """``task.train_step``, starting the data over when an epoch runs out (PTB)."""
    try:
        return task.train_step(arc)
    except StopIteration:
        task.begin_epoch(0)
        return task.train_step(arc)
