"""The macro arc encoding: layout, round trips, the published arc, every malformed arc."""

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

class MacroSpaceTest:

    def test_final_arc_parses_to_the_published_layers(self):
        space = macro.MacroSpace(24, num_branches=4)
        net = space.decode(space.from_string(known_arcs.CIFAR_MACRO_FINAL))
        assert net.num_layers == 24
        assert net.ops == (0, 3, 0, 2, 2, 3, 2, 2, 1, 0, 2, 0,
                           2, 1, 0, 2, 2, 2, 3, 3, 0, 3, 0, 0)
        # Lines "3 1 1 0 1 0", "0 0 0 0 0 0 0 0 0 0" and the last one, by hand.
        assert net.skips[5] == (1, 1, 0, 1, 0)
        assert net.skips[9] == (0,) * 9
        assert net.skips[23] == (1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0,
                                 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0)
        assert net.op_names()[:3] == ("conv_3x3", "sep_conv_5x5", "conv_3x3")
        assert all(len(row) == i for i, row in enumerate(net.skips))

    def test_final_arc_uses_only_the_four_convolutions(self):
        text = known_arcs.CIFAR_MACRO_FINAL
        assert macro.MacroSpace(24, num_branches=6).from_string(text).shape == (300,)
        with pytest.raises(arcs.ArcError, match=r"\(layer 0 op\) must be in \[0, 3\]"):
            macro.MacroSpace(24, num_branches=4).from_string("4" + text[1:])

    def test_arc_length_is_l_plus_l_choose_2(self):
        assert macro.MacroSpace(12).arc_length == 78
        assert macro.MacroSpace(24).arc_length == 300
        assert macro.MacroSpace(1).arc_length == 1

    def test_positions_follow_the_official_layout(self):
        space = macro.MacroSpace(5)
        names = [space.position_name(p) for p in range(space.arc_length)]
        assert names[:6] == ["layer 0 op", "layer 1 op", "layer 1 skip from layer 0",
                             "layer 2 op", "layer 2 skip from layer 0",
                             "layer 2 skip from layer 1"]
        for layer in range(5):
            assert names[space.op_position(layer)] == f"layer {layer} op"
            for prev in range(layer):
                assert (names[space.skip_position(layer, prev)]
                        == f"layer {layer} skip from layer {prev}")
        with pytest.raises(ValueError, match="prev=3"):
            space.skip_position(3, 3)

    def test_bounds_ops_then_bits(self):
        space = macro.MacroSpace(4, num_branches=4)
        assert space.bounds.tolist() == [4, 4, 2, 4, 2, 2, 4, 2, 2, 2]

    def test_string_and_typed_round_trips(self):
        space = macro.MacroSpace(7)
        rng = np.random.default_rng(0)
        for _ in range(50):
            arc = space.random_arc(rng)
            assert np.array_equal(space.from_string(space.to_string(arc)), arc)
            assert np.array_equal(space.encode(space.decode(arc)), arc)

    def test_random_arcs_stay_in_range_and_cover_every_choice(self):
        space = macro.MacroSpace(12)
        rng = np.random.default_rng(1)
        sampled = np.stack([space.random_arc(rng) for _ in range(300)])
        assert (sampled >= 0).all() and (sampled < space.bounds).all()
        assert set(sampled[:, space.op_position(11)]) == set(range(6))
        assert set(sampled[:, space.skip_position(11, 0)]) == {0, 1}

    def test_typed_view_of_a_small_arc(self):
        net = macro.MacroSpace(3).decode([5, 4, 1, 0, 0, 1])
        assert net == macro.MacroNet(ops=(5, 4, 0), skips=((), (1,), (0, 1)))

    @pytest.mark.parametrize("text, message", [
        ("0 1 0", "must have 6 integers (L + L(L-1)/2 for L=3 layers"),
        ("6 1 0 0 0 0", "position 0 (layer 0 op) must be in [0, 5]. Received: 6"),
        ("0 1 2 0 0 0", "position 2 (layer 1 skip from layer 0) must be in [0, 1]. Received: 2"),
        ("0 1 0 0 0 -1", "position 5 (layer 2 skip from layer 1) must be in [0, 1]. Received: -1"),
        ("0 -1 0 0 0 0", "position 1 (layer 1 op) must be in [0, 5]. Received: -1"),
        ("0 1 0 0 x 0", "token 4 must be an integer. Received: 'x'"),
    ])
    def test_malformed_arcs_name_position_value_and_range(self, text, message):
        with pytest.raises(arcs.ArcError) as error:
            macro.MacroSpace(3).from_string(text)
        assert message in str(error.value)
        assert "\n" not in str(error.value)

    def test_encode_rejects_misshapen_nets(self):
        space = macro.MacroSpace(3)
        with pytest.raises(arcs.ArcError, match="layer 2 must have 2 skip bits. Received: 1"):
            space.encode(macro.MacroNet(ops=(0, 0, 0), skips=((), (1,), (1,))))
        with pytest.raises(arcs.ArcError, match="must have 3 ops"):
            space.encode(macro.MacroNet(ops=(0, 0), skips=((), (1,))))

    @pytest.mark.parametrize("other", [rnn.RnnSpace(12), micro.MicroSpace(5)])
    def test_other_spaces_arcs_are_rejected_by_length(self, other):
        arc = other.random_arc(np.random.default_rng(2))
        with pytest.raises(arcs.ArcError) as error:
            macro.MacroSpace(12).validate(arc)
        message = str(error.value)
        assert message.startswith("macro arc must have 78 integers")
        assert f"Received: {other.arc_length} integers" in message
        assert "\n" not in message

    def test_macro_arcs_are_rejected_by_the_other_spaces(self):
        arc = macro.MacroSpace(12).random_arc(np.random.default_rng(3))
        with pytest.raises(arcs.ArcError, match="ptb arc must have 23 integers.*Received: 78"):
            rnn.RnnSpace(12).validate(arc)
        with pytest.raises(arcs.ArcError, match="micro arc must have 40 integers.*Received: 78"):
            micro.MicroSpace(5).validate(arc)

    @pytest.mark.parametrize("num_layers, want", [(12, (3, 7)), (24, (7, 15)),
                                                  (3, (0, 1)), (2, ())])
    def test_pool_layers_are_the_official_ones(self, num_layers, want):
        assert macro.MacroSpace(num_layers).pool_layers() == want

    def test_constructor_rejects_bad_sizes(self):
        with pytest.raises(ValueError, match="num_layers=0"):
            macro.MacroSpace(0)
        with pytest.raises(ValueError, match="num_branches=7"):
            macro.MacroSpace(4, num_branches=7)


class MacroNetSvgTest:

    def test_final_net_drawing_has_every_layer_skip_and_reduction(self):
        space = macro.MacroSpace(24, num_branches=4)
        net = space.decode(space.from_string(known_arcs.CIFAR_MACRO_FINAL))
        svg = diagrams.macro_net_svg(net)
        root = ElementTree.fromstring(svg)
        texts = [t.text for t in root.iter(f"{_SVG}text")]
        for layer, name in enumerate(net.op_names()):
            assert f"{layer}: {name}" in texts
        assert texts.count("reduce (stride 2)") == 2
        # After layers 7 and 15: the reductions sit between them and the next layer.
        boxes = [t for t in texts if t and t[0].isdigit() or t == "reduce (stride 2)"]
        assert boxes[8] == "reduce (stride 2)" and boxes[17] == "reduce (stride 2)"
        skip_arcs = [p for p in root.iter(f"{_SVG}path") if p.get("stroke") == "#c63"]
        assert len(skip_arcs) == sum(map(sum, net.skips))

    def test_every_op_is_labelled(self):
        net = macro.MacroNet(ops=(0, 1, 2, 3, 4, 5), skips=tuple((1,) * i for i in range(6)))
        svg = diagrams.macro_net_svg(net, title="all ops")
        for name in macro.OPS:
            assert name in svg
        assert "all ops" in svg
        ElementTree.fromstring(svg)
