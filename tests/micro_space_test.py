"""The micro arc encoding: layout, round trips, the published cells, every malformed arc."""

import re
from xml.etree import ElementTree

import numpy as np
import pytest

from enas_tf.search_space import arcs
from enas_tf.search_space import diagrams
from enas_tf.search_space import known_arcs
from enas_tf.search_space import macro
from enas_tf.search_space import micro
from enas_tf.search_space import rnn

_SVG = "{http://www.w3.org/2000/svg}"

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


def _numbers(text):
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", text)]


def _path_points(d, steps=20):
    """Points along an SVG path made of M, C and L commands."""
    points = []
    for command, args in re.findall(r"([MCL])([^MCL]*)", d):
        v = _numbers(args)
        if command == "C":
            p0 = np.array(points[-1])
            p1, p2, p3 = np.array(v[0:2]), np.array(v[2:4]), np.array(v[4:6])
            for t in np.linspace(0, 1, steps)[1:]:
                points.append(tuple((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1
                                    + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3))
        elif command == "L":
            start, end = np.array(points[-1]), np.array(v)
            points += [tuple(start + t * (end - start)) for t in np.linspace(0, 1, steps)[1:]]
        else:
            points.append(tuple(v))
    return points


class MicroCellsSvgTest:

    def test_final_cells_drawing_parses_and_labels_every_op(self):
        space = micro.MicroSpace()
        cells = space.decode(space.from_string(known_arcs.CIFAR_MICRO_FINAL))
        svg = diagrams.micro_cells_svg(cells)
        root = ElementTree.fromstring(svg)
        texts = [t.text for t in root.iter(f"{_SVG}text")]
        assert texts[0] == "ENAS normal cell"
        assert any(t.startswith("ENAS reduction cell") for t in texts)
        used = {op for cell in (cells.normal, cells.reduction)
                for node in cell.nodes for op in (node[1], node[3])}
        for op in used:
            assert micro.OPS[op] in texts
        # Each cell: two inputs, two ops and an add per node, the concat.
        assert texts.count("node 6: add") == 2
        assert len([t for t in texts if t in micro.OPS]) == 2 * 2 * 5

    def test_edges_never_run_behind_another_box(self):
        space = micro.MicroSpace(5)
        rng = np.random.default_rng(4)
        for _ in range(10):
            svg = diagrams.micro_cells_svg(space.decode(space.random_arc(rng)))
            for cell in ElementTree.fromstring(svg).iter(f"{_SVG}svg"):
                boxes = [tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))
                         for r in cell.findall(f"{_SVG}rect") if r.get("x") is not None]
                for path in cell.findall(f"{_SVG}path"):
                    if path.get("marker-end") is None:
                        continue
                    for x, y in _path_points(path.get("d")):
                        for bx, by, bw, bh in boxes:
                            assert not (bx + 2 < x < bx + bw - 2 and by + 2 < y < by + bh - 2)
