"""The micro arc encoding: layout, round trips, the published cells, every malformed arc."""

import numpy as np
import pytest

from enas_tf.search_space import arcs
from enas_tf.search_space import known_arcs
from enas_tf.search_space import macro
from enas_tf.search_space import micro
from enas_tf.search_space import rnn


class MicroSpaceTest:

    def test_final_arc_parses_to_the_published_cells(self):
        space = micro.MicroSpace()
        cells = space.decode(space.from_string(known_arcs.CIFAR_MICRO_FINAL))
        assert cells.normal.nodes == ((0, 2, 0, 0), (0, 4, 0, 1), (0, 4, 1, 1),
                                      (1, 0, 0, 1), (0, 2, 1, 1))
        assert cells.reduction.nodes == ((1, 0, 1, 0), (0, 3, 0, 2), (1, 1, 3, 1),
                                         (1, 0, 0, 4), (0, 3, 1, 1))
        # The normal cell reads only the cell inputs: every node is a loose end.
        assert cells.normal.loose_ends == (2, 3, 4, 5, 6)
        # Reduction node 2 reads node 1 (index 3).
        assert cells.reduction.loose_ends == (2, 4, 5, 6)

    def test_arc_length_is_8b(self):
        assert micro.MicroSpace(5).arc_length == 40
        assert micro.MicroSpace(1).arc_length == 8

    def test_positions_follow_the_official_layout(self):
        space = micro.MicroSpace(5)
        assert space.position(False, 0, 0) == 0
        assert space.position(False, 4, 3) == 19
        assert space.position(True, 0, 0) == 20
        assert space.position(True, 3, 1) == 33
        assert space.position_name(33) == "reduction cell node 3 op 1"
        assert space.position_name(6) == "normal cell node 1 input 2"
        names = {space.position_name(p) for p in range(40)}
        assert len(names) == 40
        with pytest.raises(ValueError, match="node=5"):
            space.position(False, 5, 0)

    def test_node_b_reads_only_the_b_plus_2_earlier_outputs(self):
        space = micro.MicroSpace(3, num_ops=4)
        cell = [2, 4, 2, 4, 3, 4, 3, 4, 4, 4, 4, 4]
        assert space.bounds.tolist() == cell + cell

    def test_string_and_typed_round_trips(self):
        space = micro.MicroSpace(5)
        rng = np.random.default_rng(0)
        for _ in range(50):
            arc = space.random_arc(rng)
            assert np.array_equal(space.from_string(space.to_string(arc)), arc)
            assert np.array_equal(space.encode(space.decode(arc)), arc)

    def test_random_arcs_stay_in_range_and_cover_every_choice(self):
        space = micro.MicroSpace(5)
        rng = np.random.default_rng(1)
        sampled = np.stack([space.random_arc(rng) for _ in range(300)])
        assert (sampled >= 0).all() and (sampled < space.bounds).all()
        assert set(sampled[:, space.position(True, 4, 2)]) == set(range(6))
        assert set(sampled[:, space.position(False, 0, 1)]) == set(range(5))

    def test_loose_ends_ignore_unread_cell_inputs(self):
        cell = micro.MicroCell(nodes=((1, 0, 1, 0), (2, 4, 1, 0)))
        assert cell.num_nodes == 2
        assert cell.loose_ends == (3,)

    @pytest.mark.parametrize("position, value, message", [
        (0, 2, "position 0 (normal cell node 0 input 1) must be in [0, 1]. Received: 2"),
        (1, 5, "position 1 (normal cell node 0 op 1) must be in [0, 4]. Received: 5"),
        (14, 5, "position 14 (normal cell node 3 input 2) must be in [0, 4]. Received: 5"),
        (35, -1, "position 35 (reduction cell node 3 op 2) must be in [0, 4]. Received: -1"),
        (38, 7, "position 38 (reduction cell node 4 input 2) must be in [0, 5]. Received: 7"),
    ])
    def test_malformed_arcs_name_position_value_and_range(self, position, value, message):
        arc = np.zeros(40, np.int64)
        arc[position] = value
        with pytest.raises(arcs.ArcError) as error:
            micro.MicroSpace().validate(arc)
        assert message in str(error.value)
        assert "\n" not in str(error.value)

    def test_wrong_length_names_the_layout(self):
        with pytest.raises(arcs.ArcError) as error:
            micro.MicroSpace().from_string(" ".join(["0"] * 20))
        assert str(error.value) == (
            "micro arc must have 40 integers (8B for B=5 nodes: the normal cell then "
            "the reduction cell, each node as (input 1, op 1, input 2, op 2)). "
            "Received: 20 integers")

    def test_encode_rejects_misshapen_cells(self):
        space = micro.MicroSpace(2)
        good = micro.MicroCell(((0, 0, 1, 1), (2, 0, 0, 0)))
        with pytest.raises(arcs.ArcError, match="reduction cell must have 2 nodes"):
            space.encode(micro.MicroArc(good, micro.MicroCell(((0, 0, 1, 1),))))
        with pytest.raises(arcs.ArcError, match="normal cell must have 2 nodes of 4"):
            space.encode(micro.MicroArc(micro.MicroCell(((0, 0, 1), (2, 0, 0, 0))), good))

    @pytest.mark.parametrize("other", [rnn.RnnSpace(12), macro.MacroSpace(12),
                                       macro.MacroSpace(24)])
    def test_other_spaces_arcs_are_rejected_by_length(self, other):
        arc = other.random_arc(np.random.default_rng(2))
        with pytest.raises(arcs.ArcError) as error:
            micro.MicroSpace().validate(arc)
        message = str(error.value)
        assert message.startswith("micro arc must have 40 integers")
        assert f"Received: {other.arc_length} integers" in message

    def test_micro_arcs_are_rejected_by_the_ptb_space(self):
        with pytest.raises(arcs.ArcError, match="ptb arc must have 23 integers.*Received: 40"):
            rnn.RnnSpace(12).from_string(known_arcs.CIFAR_MICRO_FINAL)

    @pytest.mark.parametrize("num_layers, want", [(6, (2, 5)), (15, (5, 11))])
    def test_reduction_cells_are_the_official_ones(self, num_layers, want):
        assert micro.MicroSpace().reduction_layers(num_layers) == want

    def test_constructor_rejects_bad_sizes(self):
        with pytest.raises(ValueError, match="num_nodes=0"):
            micro.MicroSpace(0)
        with pytest.raises(ValueError, match="num_ops=6"):
            micro.MicroSpace(5, num_ops=6)
