#!/usr/bin/env bash
# Installs missing packages, then configures (Ninja, Release) and builds dcp in
# ${DCP_BUILD_DIR:-build}. Extra arguments go to cmake's configure step.
# The Python package is assembled in build/python; as root, a dcp.pth file
# puts it on the path of Debian's python3 (and of a `python3` on PATH), so
# that `python3 -c "import dcp"` works right after this script.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
build_dir=${DCP_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" --parallel "$(nproc)"
if [[ -f "$build_dir/python/dcp/__init__.py" && $(id -u) -eq 0 && "${DCP_NO_PTH:-0}" == "0" ]]; then
  python_dir=$(cd "$build_dir/python" && pwd)
  for py in /usr/bin/python3 "$(command -v python3 || true)"; do
    [[ -x "$py" ]] || continue
    site=$("$py" -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null) || continue
    mkdir -p "$site" && echo "$python_dir" > "$site/dcp.pth"
  done
fi
