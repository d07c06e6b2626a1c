"""The output directory of a run: its files, written so a crash tears none.

Every JSON/text output is written to a temporary file and renamed into
place, so a reader (or a resumed run) sees either the old or the new file.
"""

import errno
import fcntl
import json
import os
import shutil
import tempfile

from absl import logging

from enas_tf.training import errors

SUMMARY = "summary.json"
ARCS = "arcs.jsonl"
BEST_ARC = "best_arc.txt"
FLAGS = "flags.cfg"
CONFIG = "config.json"  # the RunConfig (run_config.py)
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
POLICY_PICTURE = "policy.png"  # the ops the controller samples, per position
LOCK = ".lock"

_held_locks = []  # open lock files: a lock lives as long as its process


class OutputDirBusyError(errors.NamesParameters, RuntimeError):
    """Another live process is writing the same output directory (``{output_dir}``)."""


class RunLock:
    """The lock ``prepare`` took: held until ``release`` or the process ends."""

    def __init__(self, lock_file):
        self._file = lock_file

    def release(self):
        """Lets another run use the directory (a Python caller's run has ended)."""
        if self._file in _held_locks:
            _held_locks.remove(self._file)
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()


def prepare(output_dir, reset):
    """Creates and locks ``output_dir``; with ``reset`` empties it first.
    Returns the RunLock.

    The lock is taken before anything is deleted and is never deleted
    itself, so a second run can neither write beside a live one nor reset
    it away from under it.
    """
    os.makedirs(output_dir, exist_ok=True)
    lock = _lock(output_dir)
    if reset:
        logging.info("Emptying %s (reset)", output_dir)
        for name in os.listdir(output_dir):
            path = os.path.join(output_dir, name)
            if name == LOCK:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    return lock


def _lock(output_dir):
    path = os.path.join(output_dir, LOCK)
    lock_file = open(path, "a+", encoding="utf-8")  # pylint: disable=consider-using-with
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        lock_file.seek(0)
        owner = lock_file.read().strip() or "unknown"
        lock_file.close()
        raise OutputDirBusyError(
            f"{{output_dir}}={output_dir} is in use by another run (pid {owner}); "
            "wait for it to finish or choose another {output_dir}") from None
    lock_file.truncate(0)
    lock_file.write(str(os.getpid()))
    lock_file.flush()
    _held_locks.append(lock_file)
    return RunLock(lock_file)


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
