"""bin/export_child --supernet: one SavedModel answering for every arc of a search run.

For PTB the reference is the fixed child of each arc with its weights
copied out of the shared ones (export_child with --child_fixed_arc). A fixed
CIFAR network is a different network from the search model (as officially),
so there the references are the search model restored in-process and the
export pinned to each arc. Evaluation mode throughout: no dropout; macro BN
uses the moving statistics the search accumulated.
"""

import http.client
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from arc_check_support import PTB_LENGTH, check_message
from enas_tf.data import images as image_data
from enas_tf.export import saved_model
from enas_tf.models import cifar_child
from enas_tf.search_space import arcs
from enas_tf.search_space import rnn
from ptb_cli import run
from saved_model_support import assert_same_outputs, export_child, images, tokens
from cifar_cli import SPACES, run as run_cifar
from serving_support import reference, serving

pytestmark = pytest.mark.slow  # searches and export_child runs in subprocesses

PTB_ARCS = ("1 0 0 1 3 0 2", "2 0 1 0 0 2 3")
MACRO_ARCS = ("0 1 1 2 0 1", "3 4 0 5 1 0")


def exported(output_dir, *args):
    """Runs export_child on a run; returns the version directory it printed."""
    out = export_child([f"--output_dir={output_dir}"] + list(args)).stdout
    return out.split("export_path: ")[1].strip()


@pytest.fixture(scope="module", name="ptb")
def fixture_ptb(tmp_path_factory):
    """A 1-epoch PTB search; its supernet and the fixed child of each arc."""
    output_dir = str(tmp_path_factory.mktemp("ptb_search"))
    run([f"--output_dir={output_dir}", "--num_epochs=1", "--child_steps_per_epoch=3"])
    return {"supernet": exported(output_dir, "--supernet"),
            **{arc: exported(output_dir, f"--child_fixed_arc={arc}", f"--model_name=c{i}")
               for i, arc in enumerate(PTB_ARCS)}}


@pytest.fixture(scope="module", name="macro")
def fixture_macro(tmp_path_factory):
    """A 1-epoch macro search; its supernet and the export pinned to each arc."""
    output_dir = str(tmp_path_factory.mktemp("macro_search"))
    run_cifar(SPACES["macro"] + [f"--output_dir={output_dir}", "--num_valid_images=24",
                                 "--num_epochs=1"])
    return {"output_dir": output_dir, "supernet": exported(output_dir, "--supernet"),
            **{arc: exported(output_dir, f"--child_fixed_arc={arc}", f"--model_name=c{i}")
               for i, arc in enumerate(MACRO_ARCS)}}


def arc_array(text):
    return np.array(text.split(), np.int32)


def restored_macro_search_model(output_dir):
    model = cifar_child.MacroChild(num_layers=3, out_filters=4)
    model.build((None, 32, 32, 3))
    tf.train.Checkpoint(model=model).restore(
        tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints"))).expect_partial()
    return model


class PtbSupernetTest:

    def test_each_arc_answers_as_its_fixed_child_from_the_same_weights(self, ptb):
        answers = []
        for arc in PTB_ARCS:
            for signature, inputs in (
                    ("serving_default", {"tokens": tokens()}),
                    ("serve_with_state", {"tokens": tokens(1),
                                          "initial_state": np.full((3, 8), 0.1, np.float32)})):
                got = reference(ptb["supernet"], signature, arc=arc_array(arc), **inputs)
                assert_same_outputs(got, reference(ptb[arc], signature, **inputs))
            answers.append(got["log_probs"])
        assert np.abs(answers[0] - answers[1]).max() > 1e-4  # the arc input matters

    def test_the_fixed_child_holds_only_the_chosen_edges(self, ptb):
        def edge_shapes(path):
            return [tuple(v.shape) for v in tf.saved_model.load(path).model_variables
                    if len(v.shape) == 3]
        assert edge_shapes(ptb[PTB_ARCS[0]]) == [(3, 8, 16)]  # nodes 1..3
        assert edge_shapes(ptb["supernet"]) == [(6, 8, 16)]  # every (node, previous) edge

    def test_metadata_describes_the_arc_input(self, ptb):
        metadata = saved_model.read_metadata(ptb["supernet"])
        assert metadata["supernet"] and metadata["arc"] is None
        assert metadata["arc_bounds"] == [4, 1, 4, 2, 4, 3, 4]
        assert metadata["arc_positions"][4] == "node 2 activation"
        assert os.path.basename(os.path.dirname(ptb["supernet"])) == "enas_ptb_supernet"


class MacroSupernetTest:

    def test_each_arc_answers_as_the_restored_search_model_and_the_pinned_export(self, macro):
        model = restored_macro_search_model(macro["output_dir"])
        metadata = saved_model.read_metadata(macro["supernet"])
        x = image_data.normalize(tf.constant(images()), np.array(metadata["mean"], np.float32),
                              np.array(metadata["std"], np.float32))
        answers = []
        for arc in MACRO_ARCS:
            got = reference(macro["supernet"], "serving_default", images=images(),
                            arc=arc_array(arc))
            assert_same_outputs(got, reference(macro[arc], "serving_default", images=images()))
            want = tf.nn.softmax(model(x, tf.constant(arc_array(arc)), training=False)).numpy()
            np.testing.assert_allclose(got["probabilities"], want, rtol=1e-5, atol=1e-6)
            answers.append(got["probabilities"])
        assert np.abs(answers[0] - answers[1]).max() > 1e-4


def post(server, path, body):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        connection.request("POST", path, body=json.dumps(body))
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


class BadArcTest:

    @pytest.mark.parametrize("arc, message", [
        ([1, 0, 0, 1, 9, 0, 2], "ptb arc position 4 (node 2 activation) must be in [0, 3]. "
                                "Received: 9"),
        ([1, 0, 0, 1, 3, 0, -1], "ptb arc position 6 (node 3 activation) must be in [0, 3]. "
                                 "Received: -1"),
        ([1, 1, 0, 1, 3, 0, 2], "ptb arc position 1 (node 1 previous node) must be in [0, 0]. "
                                "Received: 1"),
        ([1, 0, 0], PTB_LENGTH.format(3)),
        ([1, 0, 0, 1, 3, 0, 2, 0], PTB_LENGTH.format(8)),
    ])
    def test_in_process_a_bad_arc_is_an_invalid_argument_naming_it(self, ptb, arc, message):
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            reference(ptb["supernet"], "serving_default", tokens=tokens(),
                      arc=np.array(arc, np.int32))
        assert check_message(error.value) == message
        with pytest.raises(arcs.ArcError) as host_error:
            rnn.RnnSpace(4).validate(arc)
        assert str(host_error.value) == message

    def test_a_bad_macro_arc_names_the_position(self, macro):
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            reference(macro["supernet"], "serving_default", images=images(),
                      arc=np.array([0, 1, 2, 2, 0, 1], np.int32))
        assert check_message(error.value) == (
            "macro arc position 2 (layer 1 skip from layer 0) must be in [0, 1]. Received: 2")

    def test_over_rest_a_bad_arc_is_a_400_and_serving_goes_on(self, ptb):
        base = os.path.dirname(ptb["supernet"])
        path = "/v1/models/sup:predict"
        good = {"inputs": {"tokens": tokens().tolist(), "arc": [int(v) for v in PTB_ARCS[0].split()]}}
        with serving([("sup", base)], grpc_port=None) as server:
            for bad_arc in ([1, 0, 0, 1, 9, 0, 2], [1, 0, 0]):
                status, answer = post(server, path, {"inputs": {**good["inputs"], "arc": bad_arc}})
                assert status == 400 and list(answer) == ["error"]
                assert "ptb arc" in answer["error"] and "\n" not in answer["error"]
            status, answer = post(server, path, good)
        assert status == 200
        np.testing.assert_allclose(
            np.array(answer["outputs"]["log_probs"], np.float32),
            reference(ptb[PTB_ARCS[0]], "serving_default", tokens=tokens())["log_probs"],
            rtol=1e-5, atol=1e-6)
