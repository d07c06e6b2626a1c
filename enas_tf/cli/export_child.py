"""bin/export_child: export a run's trained child as a SavedModel, without training.

Fixed run:   bin/export_child --output_dir=runs/ptb_final_quick
Search run:  bin/export_child --output_dir=runs/ptb_search_quick   (its best_arc.txt,
             or --child_fixed_arc / --child_fixed_arc_file)
Supernet:    bin/export_child --output_dir=runs/ptb_search_quick --supernet

The task is rebuilt from the run's config.json (PTB or CIFAR-10 macro or
micro), its latest checkpoint restored, and the task's export code writes
the next version under <export_dir>/<model_name>/. Only --output_dir,
--export_dir, --model_name, the arc flags and the data location come from
this command line. Runs written before config.json existed are rebuilt
from their flags.cfg.
"""

import dataclasses
import os

from absl import app
from absl import flags

from enas_tf.cli import common
from enas_tf.cli import search_cifar
from enas_tf.cli import search_ptb
from enas_tf.data import images as image_data
from enas_tf.data import ptb
from enas_tf.export import run_export
from enas_tf.export import saved_model
from enas_tf.training import run_config
from enas_tf.training import run_dir

FLAGS = flags.FLAGS

flags.DEFINE_boolean("supernet", False, "Export a search run's shared-weight model with "
                     "the arc as a second signature input, answering for every arc.")

# Taken from this command line; everything else comes from the run's config.json
# (or flags.cfg).
_OWN_FLAGS = ("output_dir", "export_dir", "model_name", "child_fixed_arc",
              "child_fixed_arc_file", "data_path", "tfds_data_dir")


def _check_run_dir(output_dir):
    """One-line errors for what a run directory must hold beyond a checkpoint."""
    if not FLAGS["output_dir"].present:
        raise common.UsageError("--output_dir must name the directory of a run of "
                                "bin/search_ptb or bin/search_cifar")
    if not os.path.isdir(output_dir):
        raise common.UsageError(f"--output_dir={output_dir} does not exist")
    if not any(os.path.isfile(os.path.join(output_dir, name))
               for name in (run_dir.CONFIG, run_dir.FLAGS)):
        raise common.UsageError(f"--output_dir={output_dir} has no {run_dir.FLAGS}: not a "
                                "run of bin/search_ptb or bin/search_cifar")


def _load_run(output_dir):
    """The run's RunConfig, with this command line's own flags applied, and the
    file it came from (config.json, or flags.cfg for an older run)."""
    if not os.path.isfile(os.path.join(output_dir, run_dir.CONFIG)):
        return _run_from_flags_file(output_dir), run_dir.FLAGS
    run = run_config.load(output_dir)
    given = {name: FLAGS[name].value for name in _OWN_FLAGS if FLAGS[name].present}
    data = run.data
    if "data_path" in given:
        data = dataclasses.replace(data, path=given["data_path"])
    if "tfds_data_dir" in given:
        data = dataclasses.replace(data, tfds_data_dir=given["tfds_data_dir"])
    loop = dataclasses.replace(run.loop, export_dir=given.get("export_dir", run.loop.export_dir),
                               model_name=given.get("model_name", run.loop.model_name))
    flags_used = dict(run.flags or {})
    flags_used.update((name, value) for name, value in given.items() if name in flags_used)
    return dataclasses.replace(run, data=data, loop=loop, flags=flags_used), run_dir.CONFIG


def _run_from_flags_file(output_dir):
    """The RunConfig of a run written before config.json: its flags.cfg re-parsed
    into FLAGS (keeping this command line's own flags), read as the binary reads them.

    It stays because runs (and their checkpoints) written by earlier
    versions have only flags.cfg, and must export as they always did.
    """
    given = {name: FLAGS[name].value for name in _OWN_FLAGS if FLAGS[name].present}
    for name in _OWN_FLAGS:
        FLAGS[name].unparse()
    FLAGS(["export_child"] + FLAGS.read_flags_from_files(
        [f"--flagfile={os.path.join(output_dir, run_dir.FLAGS)}"], force_gnu=False))
    best_arc = os.path.join(output_dir, run_dir.BEST_ARC)
    try:
        run_arc = common.fixed_arc_text()
    except common.UsageError:
        # The recorded arc file has gone; a finished fixed run wrote its arc too.
        if not os.path.isfile(best_arc):
            raise
        with open(best_arc, encoding="utf-8") as f:
            run_arc = f.read()
    for name in ("child_fixed_arc", "child_fixed_arc_file"):
        FLAGS[name].unparse()  # from here on, the arc asked for on this command line
    for name, value in given.items():
        FLAGS[name].value = value
    binary = search_cifar if FLAGS.search_for in ("macro", "micro") else search_ptb
    return binary.run_config_from_flags(run_arc, output_dir)


def export_child():
    """Rebuilds the run's task, restores its checkpoint and exports; returns the path."""
    output_dir = FLAGS.output_dir
    _check_run_dir(output_dir)
    run, source = _load_run(output_dir)
    if FLAGS.supernet and not FLAGS["model_name"].present:
        # never a new version of the run's fixed child
        run = dataclasses.replace(run, loop=dataclasses.replace(
            run.loop, model_name=run.loop.model_name + "_supernet"))
    data = search_cifar.load_data(run) if run.family != "ptb" else None
    path = run_export.export_run(run, output_dir, data=data, arc_text=common.fixed_arc_text(),
                                 supernet=FLAGS.supernet, source=source)
    arc = saved_model.read_metadata(path).get("arc")
    print(f"arc: {arc or 'any (supernet: the arc is an input)'}")
    print(f"export_path: {path}")
    return path


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    common.exit_on_user_error(export_child, user_errors=(
        ptb.PtbDataError, image_data.ImageDataError, run_config.RunConfigError,
        run_export.RunExportError))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
