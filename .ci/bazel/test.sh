#!/usr/bin/env bash
# Runs every Bazel test of enas_tf offline: `bazel test //...` from the
# repository root, with the project's Python first on PATH.
#
#   apt-get update && apt-get install -y bazel-bootstrap   # once, as root
#   .ci/bazel/test.sh                  # all tests
#   .ci/bazel/test.sh //:arcs_test     # targets given replace //...
#   .ci/bazel/test.sh --test_output=all  # flags alone keep //... (--f=v form)
#
# Which Python: $VIRTUAL_ENV if a venv is active, else ./.venv or /work/venv
# if there is one, else whatever python3 is already on PATH. It must import
# tensorflow, keras and pytest: Bazel does not install Python packages.
# CI does not run this script (it runs the tests with pytest directly).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

for venv in "${VIRTUAL_ENV:-}" "$root/.venv" /work/venv; do
  if [[ -n "$venv" && -x "$venv/bin/python3" ]]; then
    export PATH="$venv/bin:$PATH"
    break
  fi
done

if ! command -v bazel >/dev/null; then
  echo "test.sh: no bazel on PATH; install it with:" >&2
  echo "  apt-get update && apt-get install -y bazel-bootstrap" >&2
  exit 2
fi
if ! python3 -c "import tensorflow, keras, pytest" 2>/dev/null; then
  echo "test.sh: $(command -v python3) cannot import tensorflow, keras and" \
    "pytest; activate the project's venv or run: pip install -e '.[test]'" >&2
  exit 2
fi

has_target=0
for arg in "$@"; do
  if [[ "$arg" != -* ]]; then
    has_target=1
  fi
done
if [[ $has_target -eq 0 ]]; then
  set -- "$@" //...
fi
# Flags that must come from the command line: none; .bazelrc has the rest.
exec bazel test "$@"
