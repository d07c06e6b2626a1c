"""Keeps the Bazel files (BUILD, WORKSPACE, .bazelrc) in sync with the tree.

No Bazel needed: BUILD is evaluated as Python with small stand-ins for the
Bazel functions it calls, which collect the targets; the checks then compare
those targets with the files actually in the repository. Every failure names
the files or targets concerned.
"""

import ast
import os
import re
import stat
import warnings

import pytest


def _find_repo_root():
    """The checkout holding this file (also from a Bazel runfiles tree)."""
    # realpath: under `bazel test` this file is a symlink into the checkout,
    # and the checks must look at the checkout, not at the runfiles.
    path = os.path.dirname(os.path.realpath(__file__))
    while True:
        if all(os.path.exists(os.path.join(path, name))
               for name in ("BUILD", "WORKSPACE", "enas_tf")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            raise RuntimeError(
                "No repository root (BUILD, WORKSPACE, enas_tf/) above "
                + os.path.realpath(__file__))
        path = parent


ROOT = _find_repo_root()

# The repositories Bazel 4.2.3 would download for a Python-only build (see
# WORKSPACE), with a file of each stub that Bazel's own tools load.
OFFLINE_REPOSITORIES = {
    "rules_cc": "cc/defs.bzl",
    "rules_java": "java/defs.bzl",
    "remote_coverage_tools": "BUILD",
}
BUILD_FILE_NAMES = ("BUILD", "BUILD.bazel")
WORKSPACE_FILE_NAMES = ("WORKSPACE", "WORKSPACE.bazel")


# ---------------------------------------------------------------------------
# Files as Bazel sees them.
# ---------------------------------------------------------------------------

def _skipped_top_dir(name):
    return (name.startswith("bazel-") or name.endswith(".egg-info")
            or name in (".git", ".venv", "venv", "runs", "build", "dist",
                        ".hypothesis", ".pytest_cache"))


def _package_files(root):
    """Files of the root package, relative, '/'-separated, like Bazel's glob.

    Bazel's glob does not descend into a subfolder that is a package of its
    own (has a BUILD file) or another repository (has a WORKSPACE file).
    """
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir == ".":
            rel_dir = ""
            # Bazel's convenience symlinks, git's store and the ignored
            # outputs and venvs: no pattern of BUILD reaches into them.
            dirnames[:] = [d for d in dirnames if not _skipped_top_dir(d)]
        kept = []
        for d in dirnames:
            if d == "__pycache__":
                continue
            names = set(os.listdir(os.path.join(dirpath, d)))
            if names.isdisjoint(BUILD_FILE_NAMES + WORKSPACE_FILE_NAMES):
                kept.append(d)
        dirnames[:] = kept
        for name in filenames:
            files.append(f"{rel_dir}/{name}" if rel_dir else name)
    return sorted(files)


def _glob_regex(pattern):
    """Regex for one Bazel glob pattern: `*` within a segment, `**` segments."""
    segments = pattern.split("/")
    regex = ""
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            regex += ".+" if last else "(?:[^/]+/)*"
        else:
            regex += "[^/]*".join(re.escape(part) for part in segment.split("*"))
            if not last:
                regex += "/"
    return re.compile(regex + r"\Z")


def make_glob(files):
    """Bazel's glob over a list of package files (directories never match)."""

    def glob(include, exclude=(), exclude_directories=1, allow_empty=True):
        del exclude_directories, allow_empty  # Defaults are what BUILD uses.
        if isinstance(include, str) or isinstance(exclude, str):
            raise TypeError("glob() takes lists of patterns, not a string")
        included = [_glob_regex(p) for p in include]
        excluded = [_glob_regex(p) for p in exclude]
        return sorted(
            f for f in files
            if any(r.match(f) for r in included)
            and not any(r.match(f) for r in excluded))

    return glob


# ---------------------------------------------------------------------------
# BUILD evaluated with stand-ins.
# ---------------------------------------------------------------------------

class BuildFile:
    """Targets that evaluating a BUILD file declares, by name."""

    # pylint: disable=too-few-public-methods
    def __init__(self, text, files, filename="BUILD"):
        self.targets = {}  # name -> (kind, attrs)
        self.duplicates = []
        self.exported_files = []
        namespace = {
            "__builtins__": __builtins__,
            "glob": make_glob(files),
            "package": lambda **kwargs: None,
            "exports_files": self._exports_files,
        }
        for kind in ("py_library", "py_test", "py_binary", "filegroup",
                     "alias", "genrule", "sh_test", "sh_binary", "test_suite"):
            namespace[kind] = self._rule(kind)

        def load(label, *symbols, **aliases):
            del label
            for name in list(symbols) + list(aliases):
                namespace.setdefault(name, self._rule(name))

        namespace["load"] = load
        exec(compile(text, filename, "exec"), namespace)  # pylint: disable=exec-used
        self.namespace = namespace  # BUILD's constants, e.g. _TEST_OVERRIDES.

    def _rule(self, kind):
        def declare(name, **attrs):
            if name in self.targets:
                self.duplicates.append(name)
            self.targets[name] = (kind, attrs)

        return declare

    def _exports_files(self, srcs, visibility=None, licenses=None):
        del visibility, licenses
        self.exported_files.extend(srcs)

    def of_kind(self, kind):
        return {name: attrs for name, (k, attrs) in self.targets.items()
                if k == kind}


def _label_name(label):
    """Target name of a label in the root package, or None if elsewhere."""
    if label.startswith("//:"):
        return label[3:]
    if label.startswith(":"):
        return label[1:]
    if label.startswith(("//", "@")):
        return None
    return label


@pytest.fixture(name="files", scope="module")
def fixture_files():
    return _package_files(ROOT)


@pytest.fixture(name="build", scope="module")
def fixture_build(files):
    with open(os.path.join(ROOT, "BUILD"), encoding="utf-8") as f:
        return BuildFile(f.read(), files)


# ---------------------------------------------------------------------------
# The checks.
# ---------------------------------------------------------------------------

class GlobStandInTest:
    """The glob stand-in must agree with Bazel, or the other checks lie."""

    FILES = [
        "a.py", "bin/tool", "bin/x.sh", "pkg/__init__.py", "pkg/m.py",
        "pkg/sub/n.py", "pkg/sub/deeper/o.py", "pkg/m.pyc", "tests/a_test.py",
        "tests/helper.py", "tests/sub/b_test.py",
    ]

    def test_star_stays_within_one_folder(self):
        glob = make_glob(self.FILES)
        assert glob(["pkg/*.py"]) == ["pkg/__init__.py", "pkg/m.py"]
        assert glob(["*.py"]) == ["a.py"]
        assert glob(["tests/*_test.py"]) == ["tests/a_test.py"]

    def test_double_star_matches_any_depth_including_none(self):
        glob = make_glob(self.FILES)
        assert glob(["pkg/**/*.py"]) == [
            "pkg/__init__.py", "pkg/m.py", "pkg/sub/deeper/o.py",
            "pkg/sub/n.py"]
        assert glob(["bin/**"]) == ["bin/tool", "bin/x.sh"]

    def test_exclude(self):
        glob = make_glob(self.FILES)
        assert glob(["tests/**/*.py"], exclude=["tests/**/*_test.py"]) == [
            "tests/helper.py"]

    def test_subpackages_and_other_repositories_are_not_entered(self, tmp_path):
        for rel in ("BUILD", "x/a.py", "pkg/BUILD", "pkg/b.py",
                    "repo/WORKSPACE", "repo/c.py"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text("")
        assert make_glob(_package_files(str(tmp_path)))(["**/*.py"]) == ["x/a.py"]


class BuildSyncTest:
    """BUILD, WORKSPACE and .bazelrc against the files in the repository."""

    def test_build_declares_each_target_once(self, build):
        assert not build.duplicates, (
            f"BUILD declares these target names more than once: "
            f"{sorted(set(build.duplicates))}")

    def test_every_module_is_in_exactly_one_py_library(self, build, files):
        owners = {}
        for name, attrs in build.of_kind("py_library").items():
            for src in attrs.get("srcs", []):
                owners.setdefault(src, []).append(name)
        modules = [f for f in files
                   if f.startswith("enas_tf/") and f.endswith(".py")]
        assert modules, "no enas_tf/**/*.py found; is ROOT right? " + ROOT
        missing = [m for m in modules if m not in owners]
        assert not missing, (
            f"modules in no py_library of BUILD (a subpackage needs an "
            f"__init__.py to get its library): {missing}")
        several = {m: owners[m] for m in modules if len(owners[m]) > 1}
        assert not several, f"modules in several py_library targets: {several}"

    def test_every_test_file_has_a_py_test(self, build, files):
        tested = set()
        for attrs in build.of_kind("py_test").values():
            tested.update(attrs.get("srcs", []))
        test_files = [f for f in files
                      if re.fullmatch(r"tests/[^/]+_test\.py", f)]
        assert "tests/build_sync_test.py" in test_files
        missing = [f for f in test_files if f not in tested]
        assert not missing, f"test files with no py_test in BUILD: {missing}"

    def test_py_tests_run_their_file_with_pytest(self, build):
        wrong = []
        for name, attrs in build.of_kind("py_test").items():
            tests = [s for s in attrs.get("srcs", []) if s.startswith("tests/")]
            main = attrs.get("main", "")
            if (len(tests) != 1 or not main.endswith("pytest_main.py")
                    or attrs.get("args") != [f"$(location {tests[0]})"]):
                wrong.append(name)
            elif attrs.get("size") not in ("small", "medium", "large", "enormous"):
                wrong.append(name)
        assert not wrong, (
            f"py_test targets that do not run exactly one test file with "
            f".ci/bazel/pytest_main.py, or lack a valid size: {wrong}")

    def test_test_overrides_name_existing_tests(self, build, files):
        overrides = build.namespace.get("_TEST_OVERRIDES", {})
        stale = [f"tests/{name}.py" for name in overrides
                 if f"tests/{name}.py" not in files]
        assert not stale, (
            f"_TEST_OVERRIDES in BUILD names test files that do not exist: "
            f"{stale}")

    def test_every_launcher_has_a_py_binary(self, build, files):
        binaries = build.of_kind("py_binary")
        launchers = [
            f for f in files
            if f.startswith("bin/") and "/" not in f[len("bin/"):]
            and os.stat(os.path.join(ROOT, f)).st_mode & stat.S_IXUSR]
        problems = []
        for launcher in launchers:
            name = launcher[len("bin/"):]
            module = f"enas_tf/cli/{name}.py"
            if name not in binaries:
                problems.append(
                    f"{launcher}: no py_binary {name!r} in BUILD"
                    + ("" if module in files else f" ({module} is missing)"))
                continue
            main = binaries[name].get("main", "")
            if main != module or main not in files:
                problems.append(
                    f"{launcher}: py_binary {name!r} has main {main!r}, "
                    f"want the existing module {module}")
                continue
            with open(os.path.join(ROOT, main), encoding="utf-8") as f:
                tree = ast.parse(f.read(), filename=main)
            if not any(isinstance(node, ast.FunctionDef) and node.name == "run"
                       for node in tree.body):
                problems.append(f"{main}: no top-level run() for {launcher}")
            if not any(isinstance(node, ast.If)
                       and "__main__" in ast.unparse(node.test)
                       for node in tree.body):
                # A warning, not a failure: the module is not BUILD's to fix.
                warnings.warn(
                    f"{main} has no `if __name__ == \"__main__\": run()` "
                    f"block, so `bazel run //:{name}` would do nothing "
                    f"(bin/{name} and pip's entry point are unaffected)")
        assert not problems, "\n".join(problems)

    def test_deps_name_existing_targets(self, build):
        bad = []
        for name, (kind, attrs) in sorted(build.targets.items()):
            for dep in attrs.get("deps", []):
                dep_name = _label_name(dep)
                if dep_name is None or dep_name not in build.targets:
                    bad.append(f"{kind} {name!r}: dep {dep!r}")
        assert not bad, (
            "deps that name no target of BUILD (third-party packages come "
            "from the venv, not from Bazel):\n" + "\n".join(bad))

    def test_srcs_and_data_exist(self, build, files):
        bad = []
        for name, (kind, attrs) in sorted(build.targets.items()):
            for attr in ("srcs", "data"):
                for item in attrs.get(attr, []):
                    label = _label_name(item)
                    if item.startswith((":", "//")):
                        ok = label in build.targets
                    else:
                        ok = item in files
                    if not ok:
                        bad.append(f"{kind} {name!r}: {attr} {item!r}")
            main = attrs.get("main")
            if main is not None and main not in attrs.get("srcs", []):
                bad.append(f"{kind} {name!r}: main {main!r} is not in srcs")
        assert not bad, "missing files or targets:\n" + "\n".join(bad)

    def test_data_filegroups(self, build, files):
        groups = build.of_kind("filegroup")
        expected = {
            "flags": [f for f in files if re.fullmatch(r"flags/[^/]+\.cfg", f)],
            "testdata": [f for f in files if f.startswith("testdata/")],
            "launchers": [f for f in files if re.fullmatch(r"bin/[^/]+", f)],
        }
        for name, want in expected.items():
            assert name in groups, f"BUILD has no filegroup {name!r}"
            got = groups[name].get("srcs", [])
            assert sorted(got) == want, (
                f"filegroup {name!r} lacks {sorted(set(want) - set(got))} "
                f"and has extra {sorted(set(got) - set(want))}")
        lacking = [
            f"py_test {name!r} lacks {group!r} in its data"
            for name, attrs in sorted(build.of_kind("py_test").items())
            for group in (":flags", ":launchers", ":testdata")
            if group not in attrs.get("data", [])]
        assert not lacking, "\n".join(lacking)

    def test_tests_and_binaries_depend_on_the_whole_package(self, build):
        # The subpackage libraries have no deps on one another (see BUILD),
        # so only the aggregate brings every module a test may import.
        bad = []
        for kind in ("py_test", "py_binary"):
            for name, attrs in sorted(build.of_kind(kind).items()):
                if ":enas_tf" not in attrs.get("deps", []):
                    bad.append(f"{kind} {name!r} lacks the dep ':enas_tf'")
        assert not bad, "\n".join(bad)

    def test_no_build_file_in_subfolders(self):
        extra = []
        for dirpath, dirnames, filenames in os.walk(ROOT):
            rel = os.path.relpath(dirpath, ROOT)
            if rel == ".":
                dirnames[:] = [d for d in dirnames if not _skipped_top_dir(d)]
                continue
            # A folder with a WORKSPACE file (the offline stubs under
            # .ci/bazel/) is a repository of its own, not a package of ours.
            if not set(filenames).isdisjoint(WORKSPACE_FILE_NAMES):
                dirnames[:] = []
                continue
            extra += [os.path.join(rel, n) for n in filenames
                      if n in BUILD_FILE_NAMES]
        assert not extra, (
            f"BUILD files outside the root make their folders separate "
            f"packages and empty the root BUILD's globs there: {extra}")


class OfflineBazelTest:
    """WORKSPACE and .bazelrc keep `bazel test //...` offline (Bazel 4.2.3)."""

    @staticmethod
    def _workspace_repositories():
        repositories = {}

        def local_repository(name, path):
            repositories[name] = ("local_repository", path)

        def other_rule(kind):
            return lambda name, **kwargs: repositories.setdefault(
                name, (kind, None))

        namespace = {
            "workspace": lambda name: None,
            "local_repository": local_repository,
            "load": lambda *args, **kwargs: None,
        }
        for kind in ("http_archive", "git_repository", "new_local_repository"):
            namespace[kind] = other_rule(kind)
        with open(os.path.join(ROOT, "WORKSPACE"), encoding="utf-8") as f:
            exec(compile(f.read(), "WORKSPACE", "exec"), namespace)  # pylint: disable=exec-used
        return repositories

    @staticmethod
    def _bazelrc():
        """(command, flag) pairs of .bazelrc, comments and blanks dropped."""
        pairs = []
        with open(os.path.join(ROOT, ".bazelrc"), encoding="utf-8") as f:
            for line in f:
                words = line.split("#", 1)[0].split()
                pairs += [(words[0], flag) for flag in words[1:]]
        return pairs

    def test_downloaded_repositories_are_local_stubs(self):
        repositories = self._workspace_repositories()
        overrides = {
            flag.split("=", 2)[1]: flag.split("=", 2)[2]
            for command, flag in self._bazelrc()
            if command == "build" and flag.startswith("--override_repository=")
        }
        problems = []
        for name, needed_file in OFFLINE_REPOSITORIES.items():
            if name in overrides:
                path = overrides[name]
            elif repositories.get(name, ("", None))[0] == "local_repository":
                path = os.path.join(ROOT, repositories[name][1])
            else:
                problems.append(
                    f"@{name}: neither a local_repository in WORKSPACE nor an "
                    f"--override_repository in .bazelrc; Bazel would download it")
                continue
            for rel in WORKSPACE_FILE_NAMES[:1] + (needed_file,):
                if not os.path.isfile(os.path.join(path, rel)):
                    problems.append(f"@{name}: {os.path.join(path, rel)} is missing")
        assert not problems, "\n".join(problems)

    def test_overrides_use_absolute_paths(self):
        # Bazel 4.2.3 rejects a relative or %workspace% path here; the stubs
        # of this repository are therefore declared in WORKSPACE instead.
        bad = [flag for _, flag in self._bazelrc()
               if flag.startswith("--override_repository=")
               and not flag.split("=", 2)[2].startswith("/")]
        assert not bad, f".bazelrc overrides Bazel 4.2.3 rejects: {bad}"

    def test_downloads_are_disabled(self):
        assert ("build", "--experimental_repository_disable_download") in (
            self._bazelrc()), (
                ".bazelrc lacks `build --experimental_repository_disable_download`")
