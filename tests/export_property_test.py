"""Property: any shape and dtype sent to an export's signature gives log-probs or a clean error."""

import os

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings, strategies as st

from enas_tf.data import ptb
from enas_tf.training import ptb_task

DATA = ptb.load_ptb(os.path.join(os.path.dirname(__file__), "..", "testdata", "ptb"))
DTYPES = [tf.int64, tf.int32, tf.float32, tf.float64, tf.uint8, tf.string, tf.bool]
# What TF raises for an input the signature does not accept: a clean refusal.
CLEAN_ERRORS = (TypeError, ValueError, tf.errors.InvalidArgumentError)


@pytest.fixture(scope="module")
def signature(tmp_path_factory):
    config = ptb_task.PtbConfig(num_nodes=3, hidden_size=4, batch_size=4, bptt=5)
    task = ptb_task.PtbTask(config, DATA, tf.random.Generator.from_seed(0),
                            fixed_arc=np.array([0, 0, 1, 1, 2], np.int32))
    path = task.export(str(tmp_path_factory.mktemp("export")), "lm", {"arc": "x"})
    return tf.saved_model.load(path).signatures["serving_default"]


def make_input(dtype, shape, values):
    array = np.resize(np.array(values, np.int64), shape)
    if dtype == tf.string:
        return tf.constant(array.astype(str))
    return tf.cast(tf.constant(array), dtype)


class ExportSignaturePropertyTest:

    @settings(max_examples=60, deadline=None, database=None)
    @given(dtype=st.sampled_from(DTYPES),
           shape=st.lists(st.integers(0, 4), max_size=3),
           values=st.lists(st.integers(-5, DATA.vocab.size + 5), min_size=1, max_size=8))
    def test_any_input_gives_log_probs_or_a_clean_error(self, signature, dtype, shape, values):
        tokens = make_input(dtype, shape, values)
        try:
            out = signature(tokens=tokens)
        except CLEAN_ERRORS as e:
            assert str(e)
            return
        # Accepted: an int64 [batch, time] of in-range ids.
        assert dtype == tf.int64 and len(shape) == 2
        ids = tokens.numpy()
        assert ids.size == 0 or (ids.min() >= 0 and ids.max() < DATA.vocab.size)
        log_probs = out["log_probs"].numpy()
        assert log_probs.shape == tuple(shape) + (DATA.vocab.size,)
        if log_probs.size:
            np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, rtol=1e-4)
