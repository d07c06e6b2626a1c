"""SavedModel export in TF Serving's layout: ``<base>/<model_name>/<version>/``.

A version is written into a temporary sibling directory and renamed into
place, so TF Serving (which polls the base path) never sees a half-written
version, and an existing version is never overwritten. The run's metadata
(arc, flags, metrics) travels inside the export as ``assets/enas_metadata.json``,
beside any other text assets the model needs (e.g. the PTB vocabulary).
"""

import json
import os
import shutil
import tempfile

import tensorflow as tf

METADATA_FILE = "enas_metadata.json"


def tf_variables(model):
    """The ``tf.Variable``s behind a Keras 3 model's variables, for tracking.

    A serving module must track these, not the Keras wrappers: graph-mode
    loaders (TF Serving, saved_model_cli run, TF1 sessions) restore only
    variables the SavedModel's object graph records as tf.Variables.
    """
    return [v.value for v in model.variables]


def existing_versions(model_dir):
    """The integer version subdirectories already in ``model_dir``."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if name.isdigit())


def export(module, export_base, model_name, signatures, metadata, assets=None):
    """Saves ``module`` as the next version; returns the version directory.

    ``assets`` maps file names to text stored under the export's assets/.
    """
    model_dir = os.path.join(export_base, model_name)
    os.makedirs(model_dir, exist_ok=True)
    version = max(existing_versions(model_dir), default=0) + 1
    tmp = tempfile.mkdtemp(dir=model_dir, prefix=f".tmp-{version}-")
    try:
        with tempfile.TemporaryDirectory() as staging:
            texts = dict(assets or {})
            texts[METADATA_FILE] = json.dumps(metadata, indent=2, sort_keys=True)
            module.asset_files = []
            for name, text in texts.items():
                path = os.path.join(staging, name)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                module.asset_files.append(tf.saved_model.Asset(path))
            export_dir = os.path.join(tmp, "model")
            tf.saved_model.save(module, export_dir, signatures=signatures)
        final = os.path.join(model_dir, str(version))
        os.rename(export_dir, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def read_metadata(version_dir):
    """The metadata dict recorded in an export."""
    with open(os.path.join(version_dir, "assets", METADATA_FILE), encoding="utf-8") as f:
        return json.load(f)
