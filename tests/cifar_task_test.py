"""The CIFAR child task: one trace, masked momentum, clipping, rewards, evaluation, export."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from enas_tf.data import cifar10
from enas_tf.data import images as image_data
from enas_tf.export import saved_model
from enas_tf.search_space import macro
from enas_tf.training import cifar_task
from enas_tf.training import masked_sgd

DATA = cifar10.load_cifar10(os.path.join(os.path.dirname(__file__), "..", "testdata",
                                         "cifar10"))
MICRO_ARC = "0 4 1 2 1 0 0 3 1 1 1 0 2 4 0 2"  # 2-node cells
TINY = {"macro": dict(num_layers=3, out_filters=4),
        "micro": dict(num_layers=1, num_cells=2, out_filters=4, use_aux_heads=True)}


def make_task(space, fixed_arc=None, **overrides):
    config = dict(space=space, batch_size=8, eval_batch_size=30, num_valid=50,
                  num_epochs=2, l2_reg=1e-3, keep_prob=0.8, data_seed=3, **TINY[space])
    config = cifar_task.CifarConfig(**dict(config, **overrides))
    if fixed_arc is not None:
        fixed_arc = cifar_task.build_space(config).from_string(fixed_arc)
    return cifar_task.CifarTask(config, DATA, tf.random.Generator.from_seed(1),
                                fixed_arc=fixed_arc)


_SEARCH_TASKS = {}


def shared_search_task(space):
    """One search task per space for the whole file: building one costs seconds."""
    if space not in _SEARCH_TASKS:
        _SEARCH_TASKS[space] = make_task(space)
        _SEARCH_TASKS[space].begin_epoch(0)
    return _SEARCH_TASKS[space]


@pytest.fixture(params=["macro", "micro"])
def search_task(request):
    return shared_search_task(request.param)


def snapshot(variables):
    return [v.numpy().copy() for v in variables]


def momentum_of(task):
    """The optimizer's momentum slot of each trainable variable, by id."""
    return {id(v): m for v, m in zip(task.model.trainable_variables,
                                     task.optimizer.momentums)}


def direct_accuracy(task, images, labels, arc):
    logits = task.model(image_data.normalize(images, task.mean, task.std), arc, training=False)
    return float(np.mean(np.argmax(logits.numpy(), axis=-1) == labels))


class CompiledStepsTest:

    @pytest.mark.slow  # compiles a step for many arcs: 30 s; the search tests check traces == 1 too
    def test_one_trace_serves_many_random_arcs(self, search_task):
        rng = np.random.default_rng(0)
        reward = tf.function(search_task.reward)
        for _ in range(6):
            metrics = search_task.train_step(search_task.space.random_arc(rng))
            assert metrics["skipped"] == 0 and np.isfinite(metrics["loss"])
            assert 0.0 <= metrics["acc"] <= 1.0
        for _ in range(6):
            acc, reported = reward(tf.constant(search_task.space.random_arc(rng)),
                                   search_task.reward_batch())
            assert float(acc) == float(reported)
        search_task.evaluate(search_task.space.random_arc(rng), "valid")
        assert search_task.traces() == {"child_train_step": 1, "child_eval_step": 1}
        assert reward.experimental_get_tracing_count() == 1

    def test_reward_is_the_accuracy_on_the_batch(self, search_task):
        arc = tf.constant(search_task.space.random_arc(np.random.default_rng(4)))
        batch = search_task.reward_batch()
        acc, _ = search_task.reward(arc, batch)
        images, labels = batch
        assert images.shape[0] == 8
        logits = search_task.model(images, arc, training=False)
        want = np.mean(np.argmax(logits.numpy(), axis=-1) == labels.numpy())
        assert float(acc) == pytest.approx(want)

    def test_reward_batches_cycle_through_the_held_out_images(self, search_task):
        seen = [search_task.reward_batch()[1].numpy() for _ in range(len(
            search_task.reward_batches))]
        np.testing.assert_array_equal(np.sort(np.concatenate(seen)),
                                      np.sort(DATA.train_labels[-50:][:48]))


class MaskedMomentumTest:

    def test_zero_gradient_elements_keep_value_and_momentum(self):
        used, unused = tf.Variable([1.0, -2.0, 3.0]), tf.Variable([4.0, 5.0])
        masked = masked_sgd.MaskedSGD(0.1, momentum=0.9, l2_reg=0.01)
        plain = keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)
        twin = tf.Variable(used)
        masked.build([used, unused])
        plain.build([twin])
        for step in range(3):
            grad = tf.constant([0.5, -1.0, 0.0 if step else 2.0])
            masked.apply_gradients([(grad, used), (tf.zeros(2), unused)])
            # Keras' Nesterov SGD on the l2-augmented gradient, element 2 only
            # while its gradient is non-zero.
            plain.apply_gradients([(grad + 0.02 * twin * tf.cast(grad != 0, tf.float32),
                                    twin)])
            if step == 0:
                third = twin.numpy()[2]
        np.testing.assert_allclose(used.numpy()[:2], twin.numpy()[:2], rtol=1e-6)
        assert used.numpy()[2] == third  # frozen after step 0, momentum and all
        np.testing.assert_array_equal(unused.numpy(), [4.0, 5.0])
        np.testing.assert_array_equal(masked.momentums[1].numpy(), [0.0, 0.0])

    def test_an_op_the_arc_did_not_use_stays_put_with_its_momentum(self):
        task = shared_search_task("macro")
        conv3, sep3 = task.model.macro_layers[0].ops[:2]
        momentum = momentum_of(task)
        skips = ((), (1,), (0, 1))
        task.train_step(task.space.encode(macro.MacroNet(ops=(0, 0, 0), skips=skips)))
        before = snapshot(conv3.trainable_variables + sep3.trainable_variables)
        moments = snapshot([momentum[id(v)] for v in conv3.trainable_variables])
        task.train_step(task.space.encode(macro.MacroNet(ops=(1, 0, 0), skips=skips)))
        for old, var in zip(before, conv3.trainable_variables):
            np.testing.assert_array_equal(old, var.numpy())
        for old, var in zip(moments, conv3.trainable_variables):
            assert np.any(old != 0)  # it did move in the first step...
            np.testing.assert_array_equal(old, momentum[id(var)].numpy())  # ...not now
        moved = [np.any(old != var.numpy()) for old, var in
                 zip(before[len(conv3.trainable_variables):], sep3.trainable_variables)]
        assert all(moved)


class TrainStepTest:

    def test_the_gradient_is_clipped_to_the_global_norm_bound(self):
        task = make_task("macro", num_layers=1, grad_bound=1e-3, l2_reg=0.0)
        lr = task.begin_epoch(0)
        before = snapshot(task.model.trainable_variables)
        metrics = task.train_step(np.zeros(1, np.int32))
        assert metrics["grad_norm"] > 1e-2
        moved = np.sqrt(sum(np.sum((v.numpy() - w) ** 2) for v, w in
                            zip(task.model.trainable_variables, before)))
        # First Nesterov step from zero momentum: (1 + momentum) * lr * g.
        assert moved == pytest.approx(1.9 * lr * 1e-3, rel=1e-3)

    def test_non_finite_step_leaves_weights_momentum_and_statistics_alone(self):
        task = shared_search_task("macro")
        arc = tf.constant(task.space.random_arc(np.random.default_rng(2)))
        images, labels = next(task._iterator)
        task._train_step((images, labels), (), arc)  # momentum and statistics non-zero
        state = task.model.variables + task.optimizer.momentums
        before = snapshot(state)
        _, _, _, finite = task._train_step((images * np.nan, labels), (), arc)
        assert not finite.numpy()
        for old, var in zip(before, state):
            np.testing.assert_array_equal(old, var.numpy())

    def test_epochs_set_the_cosine_rate_and_replay_their_stream(self):
        task = make_task("macro", lr_max=0.1, lr_min=0.0, lr_t_0=2, lr_t_mul=2)
        assert [task.begin_epoch(e) for e in range(4)] == pytest.approx(
            [0.1, 0.05, 0.1, 0.1 * (1 + np.cos(np.pi / 4)) / 2])
        lr = task.begin_epoch(1)
        assert float(task.optimizer.learning_rate) == pytest.approx(lr)
        first = next(task._iterator)[0].numpy()
        task.begin_epoch(2)
        other = next(task._iterator)[0].numpy()
        task.begin_epoch(1)
        np.testing.assert_array_equal(first, next(task._iterator)[0].numpy())
        assert np.any(first != other)
        assert task.child_steps_per_epoch() == 32  # ceil(250 / 8)


class EvaluationTest:

    def test_evaluation_covers_every_image_once(self):
        task = shared_search_task("macro")  # moving averages: batching does not matter
        arc = tf.constant(task.space.random_arc(np.random.default_rng(3)))
        test = task.evaluate(arc, "test")
        assert test["test_images"] == 100
        assert test["test_acc"] == pytest.approx(
            direct_accuracy(task, DATA.test_images, DATA.test_labels, arc))
        valid = task.evaluate(arc, "valid")
        assert valid["valid_images"] == 50
        assert valid["valid_acc"] == pytest.approx(direct_accuracy(
            task, DATA.train_images[-50:], DATA.train_labels[-50:], arc))

    def test_without_a_validation_split_valid_acc_is_none(self):
        task = make_task("macro", fixed_arc="0 1 1 2 0 1", num_valid=0)
        assert task.num_train == 300
        assert task.evaluate(None, "valid") == {"valid_acc": None, "valid_images": 0}


class ExportTest:

    def test_serving_signature_equals_the_trained_model(self, tmp_path):
        task = make_task("micro", fixed_arc=MICRO_ARC, num_valid=0, drop_path_keep_prob=0.6,
                         cutout_size=8)
        task.begin_epoch(0)
        for _ in range(2):
            assert task.train_step(None)["skipped"] == 0
        # Drop-path strength follows the steps: 2 of 2 epochs x 38 steps.
        assert float(task.model.drop_path_progress) == pytest.approx(2 / 76)
        path = task.export(str(tmp_path), "cifar", {"arc": MICRO_ARC})
        assert path == os.path.join(str(tmp_path), "cifar", "1")
        metadata = saved_model.read_metadata(path)
        assert metadata["arc"] == MICRO_ARC
        np.testing.assert_allclose(metadata["mean"], task.mean, rtol=1e-6)
        np.testing.assert_allclose(metadata["std"], task.std, rtol=1e-6)

        serve = tf.saved_model.load(path).signatures["serving_default"]
        spec = serve.structured_input_signature[1]["images"]
        assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 32, 32, 3]
        images = DATA.test_images[:7]
        out = serve(images=tf.constant(images))
        assert out["probabilities"].dtype == tf.float32 and out["classes"].dtype == tf.int64
        np.testing.assert_allclose(out["probabilities"].numpy().sum(axis=1), 1.0, rtol=1e-5)
        logits = task.model(image_data.normalize(images, task.mean, task.std))
        np.testing.assert_allclose(out["probabilities"].numpy(),
                                   tf.nn.softmax(logits).numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(out["classes"].numpy(),
                                      np.argmax(logits.numpy(), axis=-1))
        assert task.num_params() < sum(int(np.prod(v.shape))
                                       for v in task.model.trainable_variables)
