"""Main of every Bazel py_test in //:BUILD: runs pytest on the given files.

The tests are written for pytest (classes, fixtures, parametrize), so running
a test file as a plain script would execute nothing. Bazel starts this module
with the test file's runfiles path as argument, from the runfiles root of the
main repository, where pytest.ini is too (it is in the target's data).

What Bazel asks of a test runner and this module does:
  * exit status 0 only when every test passed (pytest's own exit status);
  * a JUnit XML report at $XML_OUTPUT_FILE, so Bazel shows each test case;
  * scratch files under $TEST_TMPDIR (pytest's tmp_path), not in /tmp;
  * `bazel test --test_filter=EXPR` arrives as $TESTBRIDGE_TEST_ONLY and
    becomes pytest's `-k EXPR`; a file where nothing matches then passes.
"""
import os
import sys


def _pytest_args(argv, environ):
    """Returns pytest's command line for this run (pure, for readability)."""
    args = list(argv)
    xml_output = environ.get("XML_OUTPUT_FILE")
    if xml_output:
        args.append("--junitxml=" + xml_output)
    tmpdir = environ.get("TEST_TMPDIR")
    if tmpdir:
        args.append("--basetemp=" + os.path.join(tmpdir, "pytest"))
    test_filter = environ.get("TESTBRIDGE_TEST_ONLY")
    if test_filter:
        args.extend(["-k", test_filter])
    return args


def main():
    # The runfiles tree is Bazel's, not ours: leave no __pycache__ in it.
    sys.dont_write_bytecode = True
    import pytest  # pylint: disable=g-import-not-at-top
    status = int(pytest.main(_pytest_args(sys.argv[1:], os.environ)))
    if status == pytest.ExitCode.NO_TESTS_COLLECTED and os.environ.get(
            "TESTBRIDGE_TEST_ONLY"):
        # `bazel test //... --test_filter=X` reaches every target; a file
        # with no test matching X has not failed.
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
