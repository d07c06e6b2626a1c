"""Scoring K arcs in one call equals scoring them one by one."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from enas_tf.controller import controller as controller_sample
from enas_tf.controller import macro_controller
from enas_tf.controller import micro_controller
from enas_tf.controller import reinforce
from enas_tf.controller import rnn_controller
from enas_tf.data import cifar10
from enas_tf.data import ptb
from enas_tf.training import batched_scoring
from enas_tf.training import cifar_task
from enas_tf.training import ptb_task
from enas_tf.training import search
from ptb_cli import read_arcs, read_summary, run

pytestmark = pytest.mark.slow  # whole searches, batched and not

ROOT = os.path.join(os.path.dirname(__file__), "..", "testdata")
K = 3


def make_ptb_task():
    config = ptb_task.PtbConfig(num_nodes=4, hidden_size=8, batch_size=4, bptt=5)
    return ptb_task.PtbTask(config, ptb.load_ptb(os.path.join(ROOT, "ptb")),
                            tf.random.Generator.from_seed(1))


def make_cifar_task(space):
    sizes = {"macro": dict(num_layers=3, out_filters=4),
             "micro": dict(num_layers=1, num_cells=2, out_filters=4)}[space]
    config = cifar_task.CifarConfig(space=space, batch_size=8, num_valid=50, **sizes)
    return cifar_task.CifarTask(config, cifar10.load_cifar10(os.path.join(ROOT, "cifar10")),
                                tf.random.Generator.from_seed(1))


CONTROLLERS = {
    "rnn": lambda: rnn_controller.RnnController(4, lstm_size=8, tanh_constant=2.5,
                                                temperature=5.0, init_range=0.5),
    "macro": lambda: macro_controller.MacroController(3, lstm_size=8, init_range=0.5),
    "micro": lambda: micro_controller.MicroController(2, lstm_size=8, init_range=0.5),
}


@pytest.mark.parametrize("make_task", [make_ptb_task, lambda: make_cifar_task("macro"),
                                       lambda: make_cifar_task("micro")],
                         ids=["ptb", "macro", "micro"])
def test_batched_rewards_equal_one_call_per_arc_and_trace_once(make_task):
    task = make_task()
    rng = np.random.default_rng(0)
    batched = tf.function(lambda arcs, batches: batched_scoring.rewards(task, arcs, batches))
    one = tf.function(task.reward)
    for _ in range(2):  # new arcs and batches, same trace
        arcs = np.stack([task.space.random_arc(rng) for _ in range(K)]).astype(np.int32)
        batches = [task.reward_batch() for _ in range(K)]
        got = batched(tf.constant(arcs), batched_scoring.stack_batches(batches))
        want = np.array([[float(v) for v in one(arc, batch)]
                         for arc, batch in zip(arcs, batches)])
        np.testing.assert_allclose(np.stack([g.numpy() for g in got], axis=1), want,
                                   rtol=1e-5)
    assert batched.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_batched_sampling_gives_each_arc_its_own_sequential_statistics(name):
    keras.utils.set_random_seed(3)
    controller = CONTROLLERS[name]()
    seeds = tf.constant([[5, i] for i in range(6)], tf.int64)
    batch = controller_sample.ControllerSample(
        **tf.function(lambda s: vars(controller.sample_batch(s)))(seeds))
    arcs = batch.arc.numpy()
    assert len({tuple(a) for a in arcs}) > 1  # the seeds give different arcs
    for i, seed in enumerate(seeds):
        sampled = controller.sample(seed)
        forced = controller.sample(None, arc=tf.constant(arcs[i]))
        np.testing.assert_array_equal(arcs[i], sampled.arc.numpy())
        for field in ("log_prob", "entropy", "decision_entropies", "penalty"):
            np.testing.assert_allclose(getattr(batch, field)[i].numpy(),
                                       getattr(forced, field).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("centered", [False, True])
def test_score_batch_equals_k_score_calls(centered):
    def make():
        keras.utils.set_random_seed(4)
        controller = CONTROLLERS["macro"]()
        return reinforce.Reinforce(controller, keras.optimizers.SGD(1.0), baseline_decay=0.5,
                                   entropy_weight=0.1, penalty_weight=0.3, centered=centered)

    # Reward metric: a function of the arc; the third arc's is NaN (dropped).
    def metric(arc, nan):
        return tf.where(nan, np.nan, tf.reduce_sum(tf.cast(arc, tf.float32)) / 10.0)

    nans = tf.range(5) == 2
    seeds = tf.constant([[7, i] for i in range(5)], tf.int64)
    one_by_one, batched = make(), make()
    outs = [one_by_one.score(seed, lambda arc, nan=nan: (metric(arc, nan),) * 2)
            for seed, nan in zip(seeds, nans)]
    out = batched.score_batch(seeds, lambda arcs: (
        tf.map_fn(lambda a: metric(*a), (arcs, nans), fn_output_signature=tf.float32),) * 2)
    for key in ("arc", "reward", "baseline", "advantage", "loss", "entropy", "log_prob"):
        np.testing.assert_allclose(out[key].numpy(), np.stack([o[key].numpy() for o in outs]),
                                   rtol=1e-5, atol=1e-6, err_msg=key)
    assert int(batched.num_accumulated) == int(one_by_one.num_accumulated) == 4
    for a, b in zip(batched.accumulators, one_by_one.accumulators):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    assert float(batched.baseline) == pytest.approx(float(one_by_one.baseline))
    if centered:
        for a, b in zip(batched.score_accumulators, one_by_one.score_accumulators):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
        kept = np.delete(out["reward"].numpy(), 2)
        assert float(batched.reward_sum) == pytest.approx(kept.sum(), rel=1e-5)
        assert float(one_by_one.reward_sum) == pytest.approx(kept.sum(), rel=1e-5)


def test_batch_size_must_divide_the_arcs_per_update(tmp_path):
    with pytest.raises(ValueError, match=r"^controller_batch_arcs=4 must divide "
                                         r"controller_num_aggregate=10 \(allowed: \[1, 2, 5, 10\]\)"):
        search.LoopConfig(controller_num_aggregate=10, controller_batch_arcs=4)
    result = run([f"--output_dir={tmp_path}", "--controller_batch_arcs=2"], check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --controller_batch_arcs=2 must divide --controller_num_aggregate=3 "
        "(allowed: [1, 3])")


def test_search_records_the_same_arcs_and_rewards_batched(tmp_path):
    records = {}
    for k in (1, 3):
        output_dir = str(tmp_path / f"k{k}")
        run([f"--output_dir={output_dir}", "--num_epochs=1", "--derive_num_samples=1",
             f"--controller_batch_arcs={k}"])
        records[k] = [r for r in read_arcs(output_dir) if r["phase"] == "controller"]
        traces = read_summary(output_dir)["traces"]
        assert all(count == 1 for count in traces.values()), traces
        assert ("controller_score_batch" in traces) == (k > 1)
    assert len(records[3]) == 2 * 3
    assert [r["arc"] for r in records[3]] == [r["arc"] for r in records[1]]
    for batched, single in zip(records[3], records[1]):
        assert batched["reward"] == pytest.approx(single["reward"], rel=1e-5)
        assert batched["ppl"] == pytest.approx(single["ppl"], rel=1e-5)
