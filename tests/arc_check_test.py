"""One arc check: a bad arc gets the same one-line message on the host and in every graph.

``SearchSpace.validate`` (numpy, the host) and ``SearchSpace.check_tensor``
(in the graph: compiled training calls here, serving signatures in
supernet_export_test) must name the same fault in the same words.
"""

import numpy as np
import pytest
import tensorflow as tf

from arc_check_support import PTB_LENGTH, check_message
from enas_tf.models import cifar_child
from enas_tf.models import ptb_child
from enas_tf.search_space import arcs
from enas_tf.search_space import rnn

MACRO_LENGTH = ("macro arc must have 3 integers (L + L(L-1)/2 for L=2 layers: per layer i, "
                "its op in [0, 3] then i skip bits for layers 0..i-1). Received: {} integers")
MICRO_LENGTH = ("micro arc must have 8 integers (8B for B=1 nodes: the normal cell then the "
                "reduction cell, each node as (input 1, op 1, input 2, op 2)). "
                "Received: {} integers")

CASES = {
    "ptb": [
        ([1, 0, 0, 1, 9, 0, 2],
         "ptb arc position 4 (node 2 activation) must be in [0, 3]. Received: 9"),
        ([1, 1, 0, 1, -3, 0, 2],
         "ptb arc position 1 (node 1 previous node) must be in [0, 0]. Received: 1"),
        ([1, 0, 0], PTB_LENGTH.format(3)),
        ([1, 0, 0, 1, 3, 0, 2, 0], PTB_LENGTH.format(8)),
    ],
    "macro": [
        ([0, 4, 0], "macro arc position 1 (layer 1 op) must be in [0, 3]. Received: 4"),
        ([0, 1, -2], "macro arc position 2 (layer 1 skip from layer 0) must be in [0, 1]. "
                     "Received: -2"),
        ([0, 1], MACRO_LENGTH.format(2)),
    ],
    "micro": [
        ([0, 0, 1, 0, 0, 0, 2, 0],
         "micro arc position 6 (reduction cell node 0 input 2) must be in [0, 1]. Received: 2"),
        ([0, 5, 1, 0, 0, 0, 1, 0],
         "micro arc position 1 (normal cell node 0 op 1) must be in [0, 4]. Received: 5"),
        ([0, 0, 1, 0], MICRO_LENGTH.format(4)),
    ],
}
ALL_CASES = [(family, arc, message) for family, cases in CASES.items()
             for arc, message in cases]


def compiled_ptb():
    model = ptb_child.PtbChild(vocab_size=10, hidden_size=4, num_nodes=4)
    tokens = tf.constant(np.arange(6).reshape(2, 3) % 10, tf.int32)
    state = model.initial_state(2)
    return model, tf.function(lambda arc: model(tokens, state, arc, training=False)[0])


def compiled_cifar(model, size):
    images = tf.zeros([2, size, size, 3])
    return model, tf.function(lambda arc: model(images, arc, training=True))


def space(model):
    """The search space whose check the model runs."""
    return model.cell.space if isinstance(model, ptb_child.PtbChild) else model.space


@pytest.fixture(scope="module", name="children")
def fixture_children():
    """Each family's search child (arc as input) and its compiled call."""
    return {
        "ptb": compiled_ptb(),
        "macro": compiled_cifar(cifar_child.MacroChild(num_layers=2, out_filters=4,
                                                       num_branches=4), 8),
        "micro": compiled_cifar(cifar_child.MicroChild(num_layers=1, out_filters=4,
                                                       num_nodes=1), 16),
    }


class SameMessageEverywhereTest:

    @pytest.mark.parametrize("family, arc, message", ALL_CASES)
    def test_the_host_check_names_the_fault(self, children, family, arc, message):
        model, _ = children[family]
        with pytest.raises(arcs.ArcError) as error:
            space(model).validate(np.array(arc))
        assert str(error.value) == message

    @pytest.mark.parametrize("family, arc, message", ALL_CASES)
    def test_a_compiled_child_call_fails_with_the_host_message(self, children, family, arc,
                                                               message):
        _, call = children[family]
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            call(tf.constant(arc, tf.int32))
        assert check_message(error.value) == message

    @pytest.mark.parametrize("family", CASES)
    def test_a_good_arc_runs(self, children, family):
        model, call = children[family]
        arc = space(model).random_arc(np.random.default_rng(0))
        assert np.isfinite(call(tf.constant(arc)).numpy()).all()


class CheckTensorTest:

    def test_an_arc_of_unknown_length_comes_back_with_the_space_length(self):
        space = rnn.RnnSpace(4)
        check = tf.function(space.check_tensor,
                            input_signature=[tf.TensorSpec([None], tf.int32)])
        assert check.get_concrete_function().structured_outputs.shape == (7,)
        assert check(tf.constant([1, 0, 0, 1, 3, 0, 2])).numpy().tolist() == [
            1, 0, 0, 1, 3, 0, 2]
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            check(tf.constant([1, 0, 0]))
        assert check_message(error.value) == PTB_LENGTH.format(3)

    def test_eagerly_the_message_is_the_same(self):
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            rnn.RnnSpace(4).check_tensor(tf.constant([1, 0, 0, 1, 9, 0, 2]))
        assert check_message(error.value) == CASES["ptb"][0][1]

    def test_a_wrong_rank_fails_when_tracing_as_on_the_host(self):
        space = rnn.RnnSpace(4)
        with pytest.raises(arcs.ArcError) as error:
            space.check_tensor(tf.zeros([1, 7], tf.int32))
        with pytest.raises(arcs.ArcError) as host_error:
            space.validate(np.zeros([1, 7]))
        assert str(error.value) == str(host_error.value) == (
            "ptb arc must be a flat vector of 7 integers. Received: shape=(1, 7)")
