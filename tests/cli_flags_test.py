"""Bad flags of the three binaries, in-process: each case parses the command
line through absl's app.run as the binary does (flags restored afterwards
by flagsaver) and must exit 2 with one line naming what was wrong, writing
nothing. The end-to-end tests (search_*_test, export_child_test) keep a
subprocess case of each binary for the exit code a shell sees."""

import os
import sys

import pytest
from absl.testing import flagsaver

from enas_tf.cli import export_child
from enas_tf.cli import search_cifar
from enas_tf.cli import search_ptb
from enas_tf.search_space import known_arcs
from ptb_cli import ROOT, TINY as PTB_TINY
from cifar_cli import MICRO_ARC, SPACES, TINY as CIFAR_TINY


def run_binary(module, args, capsys):
    """Runs ``module``'s binary in this process; returns (exit code, stderr)."""
    with flagsaver.flagsaver(), pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # flag files are named from the checkout
        patch.setattr(sys, "argv", [module.__name__] + args)
        with pytest.raises(SystemExit) as exited:
            module.run()
    return exited.value.code, capsys.readouterr().err


def assert_one_line_error(module, args, message, tmp_path, capsys):
    output_dir = tmp_path / "out"
    code, err = run_binary(module, [f"--output_dir={output_dir}"] + args, capsys)
    assert code == 2
    assert message in err.strip().splitlines()[-1], err[-2000:]
    assert "Traceback" not in err
    assert not output_dir.exists()


@pytest.mark.parametrize("args, message", [
    (["--child_fixed_arc=1 0 0 1 9 0 2", "--nocontroller_training"],
     "ptb arc position 4 (node 2 activation) must be in [0, 3]. Received: 9"),
    (["--child_fixed_arc=1 0 0"], "ptb arc must have 7 integers"),
    (["--child_fixed_arc=1 0 0 1 3 0 2"], "add --nocontroller_training"),
    (["--data_path=/nonexistent/ptb"], "/nonexistent/ptb"),
    (["--search_for=micro"], "--search_for must be 'enas'"),
    (["--controller_shared_batch", "--controller_num_aggregate=1"],
     "--controller_shared_batch needs --controller_num_aggregate >= 2 (one arc centred on "
     "its own reward learns nothing). Received: 1"),
])
def test_search_ptb(tmp_path, capsys, args, message):
    assert_one_line_error(search_ptb, PTB_TINY + args, message, tmp_path, capsys)


@pytest.mark.parametrize("args, messages", [
    (["--child_lstm_x_keep=1.5"], ["child_lstm_x_keep", "1.5"]),
    (["--flagfile=flags/nope.cfg"], ["Unable to open flagfile", "flags/nope.cfg"]),
    (["--child_rhn_dept=3"], ["child_rhn_depth"]),  # the closest known flag
    (["--search_strategy=evolution"], ["--search_strategy=evolution", "enas|random"]),
])
def test_search_ptb_flag_parsing(tmp_path, capsys, args, messages):
    code, err = run_binary(search_ptb, PTB_TINY + [f"--output_dir={tmp_path / 'out'}"] + args,
                           capsys)
    assert code == 1 and all(m in err for m in messages), err[-2000:]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (SPACES["macro"] + [f"--child_fixed_arc={known_arcs.CIFAR_MICRO_FINAL}",
                        "--nocontroller_training"], "macro arc must have 6 integers"),
    (SPACES["macro"] + [f"--child_fixed_arc={known_arcs.PTB_PAPER}",
                        "--nocontroller_training"], "macro arc must have 6 integers"),
    (SPACES["macro"] + ["--child_fixed_arc=7 1 1 2 0 1", "--nocontroller_training"],
     "macro arc position 0 (layer 0 op) must be in [0, 5]. Received: 7"),
    (SPACES["micro"] + [f"--child_fixed_arc={MICRO_ARC}"], "add --nocontroller_training"),
    (SPACES["micro"] + ["--child_num_branches=4"], "--child_num_branches must be 5"),
    (SPACES["macro"] + ["--num_valid_images=0"], "--num_valid_images must be at least"),
    (SPACES["macro"] + ["--num_valid_images=300"], "leaves no training images"),
    (SPACES["macro"] + ["--data_path=/nonexistent/cifar"], "/nonexistent/cifar"),
    (["--search_for=enas"], "--search_for must be 'macro' or 'micro'"),
    # The official final arcs parse and check: the run gets as far as the data.
    (["--search_for=macro", "--child_num_layers=24", "--child_num_branches=4",
      f"--child_fixed_arc={known_arcs.CIFAR_MACRO_FINAL}", "--nocontroller_training",
      "--data_path=/nonexistent/c"], "/nonexistent/c does not exist"),
    (["--search_for=micro", "--child_num_cells=5", "--nocontroller_training",
      f"--child_fixed_arc={known_arcs.CIFAR_MICRO_FINAL}", "--data_path=/nonexistent/c"],
     "/nonexistent/c does not exist"),
])
def test_search_cifar(tmp_path, capsys, args, message):
    assert_one_line_error(search_cifar, CIFAR_TINY + args, message, tmp_path, capsys)


@pytest.mark.parametrize("args, message", [
    (["--dataset=imagenet"], "unknown data set 'imagenet'; expected one of cifar10, cifar100"),
    (["--dataset=folder", "--data_path="], "--dataset=folder needs --data_path: a directory "
                                           "with one sub-folder of images per class"),
    (["--image_size=32x32"], "--image_size is for --dataset=folder. Received: --dataset=cifar10"),
    (["--dataset=folder", "--image_size=32by32", "--data_path=x"],
     "--image_size must be HEIGHTxWIDTH in pixels, e.g. 64x48. Received: '32by32'"),
    (["--dataset=folder", "--data_path=/nonexistent/images"], "/nonexistent/images"),
    (["--dataset=cifar100"], "cifar-100"),  # testdata/cifar10 holds no CIFAR-100
    (["--child_cutout_size=40"], "--child_cutout_size=40 exceeds the 32x32 images"),
    (["--child_ops=conv_3x3,conv_9x9"], "conv_9x9"),
    (["--op_module=no_such_module_xyz"], "op module 'no_such_module_xyz' could not be "
                                         "imported: ModuleNotFoundError"),
])
def test_search_cifar_data_and_ops(tmp_path, capsys, args, message):
    assert_one_line_error(search_cifar, CIFAR_TINY + SPACES["macro"] + args, message,
                          tmp_path, capsys)


@pytest.mark.parametrize("args, message", [
    (["--train_file=wiki.train.tokens"], "train_file: no file"),
    (["--child_activations=tanh,swish9"], "swish9"),
    (["--op_module=no_such_module_xyz"], "op module 'no_such_module_xyz'"),
])
def test_search_ptb_data_and_ops(tmp_path, capsys, args, message):
    assert_one_line_error(search_ptb, PTB_TINY + args, message, tmp_path, capsys)


def test_search_cifar_flag_parsing(tmp_path, capsys):
    code, err = run_binary(search_cifar, CIFAR_TINY + [f"--output_dir={tmp_path / 'out'}",
                                                       "--child_keep_prob=1.5"], capsys)
    assert code == 1 and "--child_keep_prob must be in (0, 1]" in err, err[-2000:]


@pytest.mark.parametrize("binary, space", [(search_ptb, "ptb"), (search_cifar, "macro"),
                                           (search_cifar, "micro")])
def test_a_final_flag_file_without_an_arc_says_how_to_get_one(tmp_path, capsys, binary,
                                                              space):
    name = "ptb" if space == "ptb" else f"cifar10_{space}"
    output_dir = tmp_path / "out"
    code, err = run_binary(binary, [f"--flagfile=flags/{name}_final_quick.cfg",
                                    f"--output_dir={output_dir}"], capsys)
    assert_names_the_arc_flags_and_the_quick_search(code, err)
    assert f"{name}_search_quick" in err.strip().splitlines()[-1]
    assert not output_dir.exists()


@pytest.mark.parametrize("which, message", [
    ("missing", "does not exist"),
    ("empty", "has no flags.cfg: not a run of bin/search_ptb or bin/search_cifar"),
])
def test_export_child(tmp_path, capsys, which, message):
    (tmp_path / "empty").mkdir()
    export_dir = tmp_path / "export"
    code, err = run_binary(export_child, [f"--output_dir={tmp_path / which}",
                                          f"--export_dir={export_dir}"], capsys)
    assert code == 2
    assert message in err.strip().splitlines()[-1], err[-2000:]
    assert not export_dir.exists()


def assert_names_the_arc_flags_and_the_quick_search(code, err):
    """Exit 2, one line naming both arc flags and a search that writes an arc file."""
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "--child_fixed_arc=" in last and "--child_fixed_arc_file=" in last, last
    arc_file = last.split("such as the ")[1].split(" that ")[0]
    flagfile = last.split("`")[1].split("--flagfile=")[1]
    with open(os.path.join(ROOT, flagfile), encoding="utf-8") as f:
        assert f"--output_dir={os.path.dirname(arc_file)}" in f.read().splitlines()
