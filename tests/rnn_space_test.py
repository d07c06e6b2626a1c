"""The PTB arc encoding: round trips, published arcs, every malformed arc."""

import numpy as np
import pytest

from enas_tf.search_space import arcs
from enas_tf.search_space import known_arcs
from enas_tf.search_space import rnn


class RnnSpaceTest:

    def test_paper_arc_parses_to_the_published_cell(self):
        space = rnn.RnnSpace(12)
        cell = space.decode(space.from_string(known_arcs.PTB_PAPER))
        assert cell.activations == (0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1)
        assert cell.prev_nodes == (0, 1, 2, 2, 2, 5, 1, 6, 8, 8, 8)
        assert cell.loose_ends == (3, 4, 7, 9, 10, 11)

    def test_string_and_typed_round_trips(self):
        space = rnn.RnnSpace(6)
        rng = np.random.default_rng(0)
        for _ in range(50):
            arc = space.random_arc(rng)
            assert np.array_equal(space.from_string(space.to_string(arc)), arc)
            assert np.array_equal(space.encode(space.decode(arc)), arc)

    def test_random_arcs_stay_in_range(self):
        space = rnn.RnnSpace(12)
        rng = np.random.default_rng(1)
        arcs_ = np.stack([space.random_arc(rng) for _ in range(500)])
        assert (arcs_ >= 0).all() and (arcs_ < space.bounds).all()
        # Every previous-node choice of the last node is reachable.
        assert set(arcs_[:, space.prev_position(11)]) == set(range(11))

    def test_arc_length_is_2n_minus_1(self):
        assert rnn.RnnSpace(12).arc_length == 23
        assert rnn.RnnSpace(2).arc_length == 3

    def test_official_string_accepts_any_whitespace(self):
        space = rnn.RnnSpace(3)
        assert space.to_string(space.from_string(" 1\n0 2\t1 3 \n")) == "1 0 2 1 3"

    @pytest.mark.parametrize("text, message", [
        ("0 0 0", "must have 5 integers"),
        ("0 0 0 1 1 2", "must have 5 integers"),
        ("0 0 x 1 1", "token 2 must be an integer. Received: 'x'"),
        ("0 0 1.5 1 1", "token 2 must be an integer. Received: '1.5'"),
        ("4 0 0 1 1", "position 0 (node 0 activation) must be in [0, 3]. Received: 4"),
        ("0 1 0 1 1", "position 1 (node 1 previous node) must be in [0, 0]. Received: 1"),
        ("0 0 0 2 1", "position 3 (node 2 previous node) must be in [0, 1]. Received: 2"),
        ("0 0 0 1 -1", "position 4 (node 2 activation) must be in [0, 3]. Received: -1"),
        ("", "must have 5 integers"),
    ])
    def test_malformed_arcs_name_position_value_and_range(self, text, message):
        with pytest.raises(arcs.ArcError) as error:
            rnn.RnnSpace(3).from_string(text)
        assert message in str(error.value)
        assert "\n" not in str(error.value)

    def test_validate_rejects_non_integer_and_nested_vectors(self):
        space = rnn.RnnSpace(3)
        with pytest.raises(arcs.ArcError, match="must be an integer. Received: 0.5"):
            space.validate(np.array([0, 0, 0.5, 0, 0]))
        with pytest.raises(arcs.ArcError, match="flat vector"):
            space.validate(np.zeros((2, 5), np.int32))

    def test_enas_lm_arc_converts_with_its_activation_order(self):
        arc = rnn.from_enas_lm_string(known_arcs.PTB_ENAS_LM)
        cell = rnn.RnnSpace(9).decode(arc)
        assert cell.activation_names() == (
            "tanh", "sigmoid", "tanh", "relu", "sigmoid", "tanh", "tanh",
            "sigmoid", "sigmoid")
        assert cell.prev_nodes == (0, 1, 2, 2, 4, 5, 3, 6)

    def test_enas_lm_arc_errors(self):
        with pytest.raises(arcs.ArcError, match="even"):
            rnn.from_enas_lm_string("0 2 1")
        with pytest.raises(arcs.ArcError, match=r"activation\) must be in \[0, 3\]"):
            rnn.from_enas_lm_string("0 4")
        with pytest.raises(arcs.ArcError, match="previous node"):
            rnn.from_enas_lm_string("0 1 3 1")
