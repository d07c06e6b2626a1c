"""The binaries on data that is not PTB or CIFAR-10, with ops of the user's
own module: a corpus with other file names searched by bin/search_ptb and a
prepared tfds image set searched by bin/search_cifar, each exported by
bin/export_child from what the run recorded (data, op module)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ptb_cli import ROOT
from ptb_cli import TINY as PTB_TINY
from cifar_cli import TINY as CIFAR_TINY

pytestmark = pytest.mark.slow  # four binaries, each compiling its model

OP_MODULE = '''
import tensorflow as tf
import enas_tf

enas_tf.register_op("rnn", "test_softsign", tf.nn.softsign)
'''


def run(binary, args, tmp_path):
    """bin/<binary> from the checkout, with tmp_path (the op module) importable."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bin", binary)] + args,
                            capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)


def metadata(export_path):
    with open(os.path.join(export_path, "assets", "enas_metadata.json"), encoding="utf-8") as f:
        return json.load(f)


def test_a_corpus_with_its_own_names_and_activation(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    for split, lines in (("train", 200), ("valid", 30), ("test", 30)):
        (corpus / f"wiki.{split}.tokens").write_text(
            "".join(" ".join(rng.choice(words, 7)) + "\n" for _ in range(lines)))
    (tmp_path / "my_acts.py").write_text(OP_MODULE)
    search = tmp_path / "search"
    args = [a for a in PTB_TINY if not a.startswith("--data_path")] + [
        f"--data_path={corpus}", "--train_file=wiki.train.tokens",
        "--valid_file=wiki.valid.tokens", "--test_file=wiki.test.tokens",
        "--op_module=my_acts", "--child_activations=test_softsign,tanh",
        "--num_epochs=1", f"--output_dir={search}"]
    printed = run("search_ptb", args, tmp_path)
    arc = printed["best_arc"].split()
    assert all(int(code) < 2 for code in arc[0::2])  # activation codes index the 2 given
    with open(search / "vocab.txt", encoding="utf-8") as f:
        assert len(f.read().split()) == 32  # 30 words, <unk>, <eos>
    with open(search / "config.json", encoding="utf-8") as f:
        config = json.load(f)
    assert config["op_modules"] == ["my_acts"]
    assert config["task"]["activations"] == ["test_softsign", "tanh"]
    assert config["data"]["train_file"] == "wiki.train.tokens"
    # export_child rebuilds the run (its data and op module) from config.json alone.
    exported = run("export_child", [f"--output_dir={search}"], tmp_path)["export_path"]
    assert metadata(exported)["arc"] == printed["best_arc"]
    serve = tf.saved_model.load(exported).signatures["serving_default"]
    out = serve(tokens=tf.constant([[1, 2, 3]], tf.int64))
    assert out["log_probs"].shape == (1, 3, 32)


def test_a_prepared_tfds_image_set(tmp_path):
    import tensorflow_datasets as tfds
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 120)
    images = (rng.integers(0, 50, (120, 16, 12, 3)) + 50 * labels[:, None, None, None]
              ).astype(np.uint8)
    names = ["w", "x", "y", "z"]
    tfds.dataset_builders.store_as_tfds_dataset(
        "four_shades", "1.0.0", tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(16, 12, 3)),
            "label": tfds.features.ClassLabel(names=names)}),
        {"train": tf.data.Dataset.from_tensor_slices({"image": images[:100],
                                                      "label": labels[:100]}),
         "test": tf.data.Dataset.from_tensor_slices({"image": images[100:],
                                                     "label": labels[100:]})},
        data_dir=str(tmp_path / "tfds"))
    search = tmp_path / "search"
    args = [a for a in CIFAR_TINY if not a.startswith("--data_path")] + [
        "--search_for=macro", "--child_num_layers=3", "--child_out_filters=4",
        "--dataset=tfds:four_shades", f"--tfds_data_dir={tmp_path / 'tfds'}",
        "--num_valid_images=20", "--num_epochs=1", f"--output_dir={search}"]
    printed = run("search_cifar", args, tmp_path)
    assert 0.0 <= float(printed["valid_acc"]) <= 1.0
    exported = run("export_child", [f"--output_dir={search}"], tmp_path)["export_path"]
    assert os.path.basename(os.path.dirname(exported)) == "enas_four_shades_macro"
    assert metadata(exported)["class_names"] == names
    assert metadata(exported)["image_shape"] == [16, 12, 3]
    serve = tf.saved_model.load(exported).signatures["serving_default"]
    assert serve(images=tf.constant(images[:3]))["probabilities"].shape == (3, 4)
