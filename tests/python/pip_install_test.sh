#!/usr/bin/env bash
# `pip install` of the project into a fresh virtual environment (what the
# README tells users with an environment of their own): builds the extension
# with CMake (scikit-build-core, pyproject.toml), then saves and loads with the
# installed package, run from outside the tree.
#   tests/python/pip_install_test.sh SOURCE_DIR PYTHON
set -euo pipefail
src=$(cd "$1" && pwd)
python=${2:-/usr/bin/python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/dcp-pip-XXXXXX")
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "$src"
cd "$work"
"$work/venv/bin/python" - "$work/store" <<'PY'
import os, sys
import numpy as np
import dcp
import dcp.integrations
assert os.path.dirname(dcp.__file__).startswith(sys.prefix), dcp.__file__  # the installed copy
a = np.arange(24, dtype=np.float32).reshape(4, 6)
dcp.save({"a": dcp.ShardedTensor("a", a, "float32", (4, 6), (4, 6), (0, 0)), "n": 7}, sys.argv[1])
out = dcp.load_plain_tensors(sys.argv[1])
assert np.array_equal(out["a"], a) and out["n"] == 7, out
print("pip install: ok,", dcp.__file__)
PY
