"""The output directory of a run: its files, written so a crash tears none.

Every JSON/text output is written to a temporary file and renamed into
place, so a reader (or a resumed run) sees either the old or the new file.
"""

import json
import os
import shutil
import tempfile

from absl import logging

SUMMARY = "summary.json"
ARCS = "arcs.jsonl"
BEST_ARC = "best_arc.txt"
FLAGS = "flags.cfg"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"


def prepare(output_dir, reset):
    """Creates ``output_dir``; with ``reset`` empties it first."""
    if reset and os.path.isdir(output_dir):
        logging.info("Removing %s (--reset_output_dir)", output_dir)
        shutil.rmtree(output_dir)
    os.makedirs(output_dir, exist_ok=True)


def write_text(path, text):
    """Atomically replaces ``path`` with ``text``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class ArcLog:
    """``arcs.jsonl``: one JSON object per evaluated architecture."""

    def __init__(self, output_dir):
        self.path = os.path.join(output_dir, ARCS)

    def truncate_to_epoch(self, epoch):
        """Drops records of epochs >= ``epoch`` (redone after a resume)."""
        if not os.path.exists(self.path):
            return
        kept = []
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line torn by a crash
                if record.get("epoch", 0) < epoch:
                    kept.append(json.dumps(record, sort_keys=True) + "\n")
        write_text(self.path, "".join(kept))

    def append(self, records):
        """Appends whole lines in one write, flushed to disk."""
        if not records:
            return
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def read(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
