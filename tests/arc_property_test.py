"""Property: any string or integer vector gives a valid arc or a one-line ArcError.

The in-graph check of an arc tensor agrees with it: same arc, same message.
"""

import functools

import numpy as np
import tensorflow as tf
from hypothesis import given, settings, strategies as st

from arc_check_support import check_message
from enas_tf.search_space import arcs
from enas_tf.search_space import macro
from enas_tf.search_space import micro
from enas_tf.search_space import rnn

SPACES = (rnn.RnnSpace(6), macro.MacroSpace(5), micro.MicroSpace(3))
space_strategy = st.sampled_from(SPACES)
# Digits, signs, separators and junk, so many strings are near-valid arcs.
arc_text = st.text(alphabet="0123456789 -+.\n\tx,e", max_size=80)
settings.register_profile("enas", max_examples=300, deadline=None, database=None)
settings.load_profile("enas")


def parse_or_error(parse, value):
    try:
        return parse(value), None
    except arcs.ArcError as e:
        return None, str(e)


@functools.cache
def compiled_check(space):
    """The space's in-graph check as a serving signature runs it (length unknown)."""
    return tf.function(space.check_tensor, input_signature=[tf.TensorSpec([None], tf.int32)])


def check_or_error(space, values):
    try:
        return compiled_check(space)(tf.constant(values, tf.int32)).numpy(), None
    except tf.errors.InvalidArgumentError as e:
        return None, check_message(e)


class ArcParserPropertyTest:

    @given(space_strategy, arc_text)
    def test_strings_parse_or_fail_cleanly(self, space, text):
        arc, error = parse_or_error(space.from_string, text)
        if error is not None:
            assert "\n" not in error and space.name in error
        else:
            assert arc.dtype == np.int32 and arc.shape == (space.arc_length,)
            assert ((arc >= 0) & (arc < space.bounds)).all()
            assert space.to_string(arc) == " ".join(text.split())

    @given(space_strategy, st.lists(st.integers(-2**40, 2**40), max_size=60))
    def test_integer_vectors_validate_or_fail_cleanly(self, space, values):
        arc, error = parse_or_error(space.validate, np.array(values, dtype=np.int64))
        in_range = (len(values) == space.arc_length
                    and all(0 <= v < b for v, b in zip(values, space.bounds)))
        assert (error is None) == in_range
        if error is not None:
            assert "\n" not in error
        else:
            assert arc.tolist() == values

    @given(space_strategy, st.data())
    def test_the_graph_check_gives_what_validate_gives(self, space, data):
        length = data.draw(st.integers(0, space.arc_length + 2))
        value = st.integers(-2, int(space.bounds.max()) + 1) | st.integers(-2**31, 2**31 - 1)
        values = data.draw(st.lists(value, min_size=length, max_size=length))
        arc, error = parse_or_error(space.validate, np.array(values, dtype=np.int64))
        checked, graph_error = check_or_error(space, values)
        assert graph_error == error
        if error is None:
            assert checked.tolist() == arc.tolist()

    @given(space_strategy, st.data())
    def test_every_valid_arc_round_trips_through_its_typed_view(self, space, data):
        values = [data.draw(st.integers(0, int(b) - 1)) for b in space.bounds]
        arc = space.validate(np.array(values))
        assert np.array_equal(space.encode(space.decode(arc)), arc)
        assert np.array_equal(space.from_string(space.to_string(arc)), arc)

    @given(space_strategy, st.lists(st.floats(allow_nan=True, allow_infinity=True),
                                    min_size=1, max_size=40))
    def test_float_vectors_never_escape_as_other_errors(self, space, values):
        arc, error = parse_or_error(space.validate, np.array(values, dtype=np.float64))
        assert arc is not None or error
