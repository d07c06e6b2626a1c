"""The run directory: atomic files, the arcs log, one run per directory."""

import json
import os

import pytest

from enas_tf.training import run_dir


class RunDirTest:

    def test_a_second_run_on_a_live_directory_is_refused(self, tmp_path):
        output_dir = str(tmp_path / "run")
        run_dir.prepare(output_dir, reset=False)
        with pytest.raises(run_dir.OutputDirBusyError,
                           match=rf"in use by another run \(pid {os.getpid()}\)"):
            run_dir.prepare(output_dir, reset=True)

    def test_reset_empties_the_directory_but_keeps_the_lock(self, tmp_path):
        output_dir = str(tmp_path / "run")
        os.makedirs(os.path.join(output_dir, "checkpoints"))
        open(os.path.join(output_dir, "summary.json"), "w").close()
        run_dir.prepare(output_dir, reset=True)
        assert os.listdir(output_dir) == [run_dir.LOCK]

    def test_write_text_replaces_whole_files_and_leaves_no_temporaries(self, tmp_path):
        path = str(tmp_path / "summary.json")
        run_dir.write_json(path, {"a": 1})
        run_dir.write_json(path, {"a": 2})
        assert run_dir.read_json(path) == {"a": 2}
        assert os.listdir(tmp_path) == ["summary.json"]

    def test_arc_log_truncation_drops_redone_epochs_and_torn_lines(self, tmp_path):
        log = run_dir.ArcLog(str(tmp_path))
        log.append([{"epoch": 0, "arc": "0"}, {"epoch": 1, "arc": "1"}])
        with open(log.path, "a", encoding="utf-8") as f:
            f.write('{"epoch": 1, "ar')
        log.truncate_to_epoch(1)
        assert log.read() == [{"epoch": 0, "arc": "0"}]
        with open(log.path, encoding="utf-8") as f:
            assert all(json.loads(line) for line in f)


def test_a_released_lock_lets_the_next_run_in(tmp_path):
    lock = run_dir.prepare(str(tmp_path), reset=False)
    with pytest.raises(run_dir.OutputDirBusyError):
        run_dir.prepare(str(tmp_path), reset=False)
    lock.release()
    run_dir.prepare(str(tmp_path), reset=False).release()
