"""What the shared-weight dispatch costs: one arc, dynamic vs static, same ops and shapes.

For one seeded random arc per family, in the same run, with the timed
calls of the two networks interleaved (dynamic, static, dynamic, ...):

* dynamic: the search model (``fixed_arc=None``), the arc an int32 tensor,
  every choice dispatched in the graph (``tf.switch_case``, ``Switch``/``Merge``
  routing, masks);
* static: a network of only the chosen ops, wired in Python.

PTB cell: both sides are the real ``PtbTask`` (search mode vs fixed mode
with the same arc; the fixed cell creates only the chosen edges and runs
the same matmuls at the same shapes), timing ``train_step`` (forward,
backward, l2 on the used edges, clipping, SGD) and the compiled reward
(validation forward).

CIFAR macro and micro: the fixed-mode nets are other networks (the fixed
macro net doubles channels at reductions and joins skips by concat + 1x1
conv; the fixed micro cell adds a base conv, strided ops and drops the 1x1
combine), so the static side is built here from the search model's own
layers and weights, calling the chosen op of each layer/node directly: the
macro static net adds only the chosen skip inputs, the micro static cell
feeds its 1x1 combine the same B + 2 states with zeros in place of the used
ones. Both run one bench-side step (cross-entropy, gradient, plain SGD on
the variables the arc uses, the same on both sides: the search task's
masked update of every shared weight is in cifar_search_step's figures)
and an inference step (accuracy). No aux head and no drop-path (the
search models have no drop-path). The figure
is the ratio dynamic / static of the median step times; target <= 1.10.
``--inter_op_threads=1`` runs one op at a time: a static net whose arc
lets sibling nodes run concurrently loses that lead there, so what is left
of the ratio is the dispatch itself.

    python bench/dispatch_overhead.py
    python bench/dispatch_overhead.py --size=paper --ptb_data_path=../shared/data/ptb \\
        --families=ptb,macro
"""

import os

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

import harness
import setups
from enas_tf.data import cifar10
from enas_tf.data import ptb
from enas_tf.training import cifar_task
from enas_tf.training import ptb_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {  # family: {size: shape}
    "ptb": {"small": dict(hidden_size=256, num_nodes=8, batch_size=32, bptt=20),
            "paper": dict(hidden_size=1000, num_nodes=12, batch_size=64, bptt=35)},
    "macro": {"small": dict(num_layers=6, out_filters=16, batch_size=32),
              "paper": setups.CIFAR_PAPER["macro"]},
    "micro": {"small": dict(num_layers=2, out_filters=12, batch_size=32),
              "paper": setups.CIFAR_PAPER["micro"]},
}

flags.DEFINE_enum("size", "small", ["small", "paper"], "Shapes: small, or the paper's "
                  "search sizes (micro paper size needs ~9 GB to compile).")
setups.define_families_flag()
flags.DEFINE_string("ptb_data_path", os.path.join(ROOT, "testdata", "ptb"),
                    "PTB directory (the vocabulary sets the softmax size).")
flags.DEFINE_integer("steps", 10, "Timed steps of each kind per network (after 3 warm-up).",
                     lower_bound=1)
flags.DEFINE_integer("arc_seed", 0, "Seed of the random arc.")
flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads (0: its default). "
                     "1 runs one op at a time: what is left of the ratio is not concurrency.",
                     lower_bound=0)
FLAGS = flags.FLAGS


def interleaved(fns, runs, warmup=3):
    """Seconds of each fn, its timed calls alternating with the others' (same noise)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    seconds = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            seconds[name].extend(harness.timed(fn, 1, warmup=0))
    return seconds


def random_arc(space):
    return np.random.default_rng(FLAGS.arc_seed).integers(0, space.bounds).astype(np.int32)


# PTB: the real task in both modes ------------------------------------------
def ptb_steps(shape):
    data = ptb.load_ptb(FLAGS.ptb_data_path)
    config = setups.ptb_config(**shape)
    rng = setups.seeded_rng()
    dynamic = ptb_task.PtbTask(config, data, rng)
    arc = random_arc(dynamic.space)
    static = ptb_task.PtbTask(config, data, rng, fixed_arc=arc)
    steps = {}
    for name, task in (("dynamic", dynamic), ("static", static)):
        task.begin_epoch(0)
        reward = tf.function(task.reward)
        batch = task.reward_batch()
        steps[name] = (lambda task=task: setups.train_step(task, arc),
                       lambda reward=reward, batch=batch: reward(arc, batch)[0].numpy())
    return dynamic.space.to_string(arc), steps


# CIFAR: the search model, dispatched or called op by op --------------------
def macro_static(model, net, images, training):
    stem = model.stem(images, training=training)
    outputs, reductions = [], iter(model.reductions)
    for i, layer in enumerate(model.macro_layers):
        inputs = outputs or [stem]
        out = layer.ops[net.ops[i]](inputs[-1], training=training)
        if i:
            chosen = [y for y, bit in zip(inputs, net.skips[i]) if bit]
            out = layer.skip_bn(tf.add_n([out] + chosen), training=training)
        outputs.append(out)
        if i in model.pool_layers:
            outputs = [reduce(x, training=training)
                       for reduce, x in zip(next(reductions), outputs)]
    return outputs[-1]


def micro_cell_static(cell, nodes, inputs, training):
    states = [x if block is None else block(x, training=training)
              for block, x in zip(cell.calibrate, inputs)]
    for b, node in enumerate(nodes):
        states.append(tf.add_n([
            cell.node_ops[2 * b + p][op](states[source], training=training, slot=source)
            for p, (source, op) in enumerate((node[:2], node[2:]))]))
    used = {node[0] for node in nodes} | {node[2] for node in nodes}
    return cell.combine(tf.concat([tf.zeros_like(s) if i in used else s
                                   for i, s in enumerate(states)], axis=-1),
                        training=training)


def micro_static(model, arc, images, training):
    x = model.stem(images, training=training)
    states = [x, x]
    for cell in model.cells:
        nodes = (arc.reduction if cell.reduction else arc.normal).nodes
        states = [states[1], micro_cell_static(cell, nodes, states, training)]
    return tf.nn.relu(states[1])


def classify(model, features, training):
    pooled = tf.reduce_mean(features, axis=[1, 2])
    return model.classifier(model.dropout(pooled, training=training))


def _loss(labels, logits):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits))


def used_variables(model, forward, images, labels, arc):
    """The variables ``forward`` reads (one eager step): the ones both sides update."""
    with tf.GradientTape() as tape:
        loss = _loss(labels, forward(images, arc, True))
    grads = tape.gradient(loss, model.trainable_variables)
    return [v for v, g in zip(model.trainable_variables, grads) if g is not None]


def compiled_steps(variables, forward, images, labels, arc):
    """(train step, inference step) of ``forward(images, arc, training)``, fetched.

    Images, labels and the arc are arguments, not constants the graph
    optimizer could fold.
    """
    @tf.function
    def train(images, labels, arc):
        with tf.GradientTape() as tape:
            loss = _loss(labels, forward(images, arc, True))
        for grad, var in zip(tape.gradient(loss, variables), variables):
            var.assign_sub(0.01 * tf.convert_to_tensor(grad))
        return loss

    @tf.function
    def infer(images, labels, arc):
        predictions = tf.argmax(forward(images, arc, False), axis=-1, output_type=tf.int32)
        return tf.reduce_mean(tf.cast(predictions == labels, tf.float32))

    return (lambda: train(images, labels, arc).numpy(),
            lambda: infer(images, labels, arc).numpy())


def cifar_steps(space_name, shape):
    config = setups.cifar_config(space_name, shape["num_layers"], shape["out_filters"],
                                 shape["batch_size"], num_images=0, use_aux_heads=False)
    setups.seeded_rng()
    model = cifar_task.build_child(config)
    model.build((None,) + cifar10.IMAGE_SHAPE)
    arc = random_arc(model.space)
    view = model.space.decode(arc)
    body = macro_static if space_name == "macro" else micro_static
    images = tf.random.normal((config.batch_size,) + cifar10.IMAGE_SHAPE)
    labels = tf.random.uniform([config.batch_size], 0, 10, tf.int32)
    arc_tensor = tf.constant(arc)
    forwards = {
        "dynamic": lambda x, arc, training: model(x, arc, training=training),
        "static": lambda x, _, training: classify(model, body(model, view, x, training),
                                                  training),
    }
    used = used_variables(model, forwards["static"], images, labels, arc_tensor)
    return model.space.to_string(arc), {
        name: compiled_steps(used, forward, images, labels, arc_tensor)
        for name, forward in forwards.items()}


def main(argv):
    del argv
    if FLAGS.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    families, rows = {}, []
    for family in FLAGS.families:
        shape = SIZES[family][FLAGS.size]
        arc, steps = (ptb_steps(shape) if family == "ptb"
                      else cifar_steps(family, shape))
        figures = {"shape": shape, "arc": arc}
        for kind, index in (("train", 0), ("inference", 1)):
            seconds = interleaved({name: pair[index] for name, pair in steps.items()},
                                  FLAGS.steps)
            dynamic, static = (harness.describe(seconds[n]) for n in ("dynamic", "static"))
            ratio = dynamic["median"] / static["median"]
            figures[kind] = {"dynamic_seconds": dynamic, "static_seconds": static,
                             "ratio": ratio, "pair_ratios": harness.describe(
                                 [d / s for d, s in zip(seconds["dynamic"],
                                                        seconds["static"])])}
            rows.append((f"{family} {kind}", dynamic["median"], static["median"], ratio,
                         figures[kind]["pair_ratios"]["min"],
                         figures[kind]["pair_ratios"]["max"]))
        families[family] = figures
    harness.print_table([("step", 18, ""), ("dynamic s", 11, ".4f"), ("static s", 11, ".4f"),
                         ("ratio", 8, ".3f"), ("pair min", 10, ".3f"),
                         ("pair max", 10, ".3f")], rows)
    harness.finish({"size": FLAGS.size, "target_ratio": 1.10,
                    "inter_op_threads": FLAGS.inter_op_threads, "families": families})


if __name__ == "__main__":
    app.run(main)
