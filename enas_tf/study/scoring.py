"""Scores arcs with a search's shared weights: the supernet's view of each arc.

The study compares this view with each arc's stand-alone test metric to
measure how well the shared weights rank architectures. Scores use the
search's full validation split (``task.evaluate(arc, "valid")``), the same
number a search reports for an arc, under the search's last checkpoint.

Scoring runs in the study's process, one search at a time with
``keras.backend.clear_session()`` in between (a subprocess per search
would import TensorFlow once more per search); each search's scores are
cached in ``scores/<search name>.json`` as soon as they exist, so a resume
or a crash during scoring redoes at most one search, and arcs added later
(a new arm's) are the only ones scored then.
"""

import os

import keras
import tensorflow as tf

from enas_tf.training import run_config
from enas_tf.training import run_dir

SCORES = "scores"


def shared_weight_scores(search_dir, arcs):
    """The validation metric of each arc (official strings) under the weights of
    the search in ``search_dir``; also the checkpoint used."""
    keras.backend.clear_session()
    run = run_config.load(search_dir)
    task = run_config.build_task(run, run_config.load_data(run),
                                 tf.random.Generator.from_seed(run.seed))
    checkpoint = tf.train.latest_checkpoint(os.path.join(search_dir, run_dir.CHECKPOINTS))
    if checkpoint is None:
        raise FileNotFoundError(f"{search_dir} has no checkpoint to score arcs with")
    status = tf.train.Checkpoint(model=task.model).restore(checkpoint).expect_partial()
    status.assert_existing_objects_matched()
    key = f"valid_{task.metric_name}"
    scores = [task.evaluate(task.space.from_string(arc), "valid")[key] for arc in arcs]
    return scores, checkpoint


def cached_scores(study_dir, search_name, search_dir, arcs):
    """``shared_weight_scores`` of the search, from the study's cache for the arcs
    it holds; only the others (an added arm's) are scored, then cached."""
    path = os.path.join(study_dir, SCORES, f"{search_name}.json")
    cached = run_dir.read_json(path) if os.path.exists(path) else {"arcs": [], "scores": []}
    known = dict(zip(cached["arcs"], cached["scores"]))
    missing = [arc for arc in dict.fromkeys(arcs) if arc not in known]
    if missing:
        scores, checkpoint = shared_weight_scores(search_dir, missing)
        known.update(zip(missing, scores))
        cached["checkpoint"] = os.path.basename(checkpoint)
    if missing or cached["arcs"] != list(arcs):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        run_dir.write_json(path, {"arcs": list(arcs), "scores": [known[a] for a in arcs],
                                  "checkpoint": cached["checkpoint"]})
    return [known[arc] for arc in arcs]
