"""The README's quick-run commands, run verbatim as a user pastes them.

A fenced block right after a ``<!-- tested -->`` line in README.md is
executed, in README order, in one scratch copy of the checkout (so later
blocks see what earlier ones wrote, as in a user's shell): ``sh`` blocks
with ``bash -e``, ``python`` blocks with this interpreter.
``<!-- tested: server -->`` starts its block in the background and waits
until the server says it listens; it is stopped with SIGTERM after the last
block, and must exit cleanly. The commands are read from README.md, never
copied here, so the README and the code cannot drift apart.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow  # runs the README's commands: a pip install, seven runs, a server

# realpath: under `bazel test` this file is a symlink into the checkout.
ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
BLOCK = re.compile(r"^<!-- tested(?:: (?P<mode>\w+))? -->\n```(?P<lang>\w*)\n(?P<code>.*?)^```",
                   re.S | re.M)
SERVER_READY = "Exporting HTTP/REST API"


def marked_blocks(text):
    """[(mode, language, code, line)] of the marked blocks, in order."""
    return [(m["mode"] or "run", m["lang"], m["code"], text.count("\n", 0, m.start()) + 2)
            for m in BLOCK.finditer(text)]


def scratch_copy(destination):
    """The checkout's files (tracked and new, not ignored) copied to ``destination``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    for name in listed.stdout.decode().split("\0"):
        source = os.path.join(ROOT, name)
        if name and os.path.isfile(source):
            target = os.path.join(destination, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(source, target)
    return destination


def environment():
    """The user's shell: this interpreter's bin/ first on PATH, no package path set."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    return env


def command(language, code):
    if language == "sh":
        return ["bash", "-e", "-c", code]
    if language == "python":
        return [sys.executable, "-c", code]
    raise ValueError(f"a tested block must be sh or python. Received: {language!r}")


def describe(line, result_or_log):
    return f"README.md block at line {line} failed:\n{result_or_log[-4000:]}"


def start_server(language, code, line, cwd, log_path):
    log = open(log_path, "w", encoding="utf-8")  # pylint: disable=consider-using-with
    server = subprocess.Popen(command(language, code), cwd=cwd, env=environment(),
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        with open(log_path, encoding="utf-8") as f:
            if SERVER_READY in f.read():
                return server
        if server.poll() is not None:
            break
        time.sleep(0.5)
    stop(server)
    with open(log_path, encoding="utf-8") as f:
        raise AssertionError(describe(line, f.read()))


def stop(server):
    """SIGTERM to the server's process group; its exit code."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
    return server.wait(timeout=60)


@pytest.fixture(scope="module")
def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


class ReadmeTest:

    def test_marked_blocks_are_shell_or_python(self, readme):
        blocks = marked_blocks(readme)
        assert {lang for _, lang, _, _ in blocks} <= {"sh", "python"}
        assert {mode for mode, _, _, _ in blocks} <= {"run", "server"}
        # Every marker is followed by a fence the pattern read.
        assert len(blocks) == readme.count("<!-- tested")

    def test_quick_commands_run_verbatim_in_a_fresh_checkout(self, readme, tmp_path):
        scratch = scratch_copy(str(tmp_path / "checkout"))
        servers = []
        try:
            for i, (mode, language, code, line) in enumerate(marked_blocks(readme)):
                if mode == "server":
                    servers.append((line, start_server(language, code, line, scratch,
                                                       str(tmp_path / f"server{i}.log"))))
                    continue
                result = subprocess.run(command(language, code), cwd=scratch,
                                        env=environment(), capture_output=True, text=True,
                                        timeout=1200)
                output = result.stdout + result.stderr
                assert result.returncode == 0, describe(line, output)
                assert "Traceback" not in output, describe(line, output)
                # A server's answer to a bad request is {"error": ...}, with curl's exit 0.
                assert '"error"' not in result.stdout, describe(line, output)
        finally:
            codes = [(line, stop(server)) for line, server in servers]
            # The quick start's virtualenv (2.4 GB) is not worth keeping.
            shutil.rmtree(os.path.join(scratch, ".venv"), ignore_errors=True)
        assert all(code == 0 for _, code in codes), codes
