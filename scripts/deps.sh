#!/usr/bin/env bash
# Installs the Debian 12 packages dcp needs to build, test and run, if any are
# missing. Runs `apt-get update` first only when something must be installed,
# so a warm machine pays nothing. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  librocksdb-dev libflatbuffers-dev flatbuffers-compiler liblz4-dev libxxhash-dev
  libopenmpi-dev openmpi-bin
  catch2 libcli11-dev nlohmann-json3-dev libfmt-dev
  libre2-dev  # dcp-import's key mapping rules: linear-time regular expressions on untrusted names
  python3-numpy  # reads dcp-inspect's safetensors and .npy output in a test
  # The Python package (import dcp): pybind11 bindings, tested with Debian's
  # torch, NumPy, mpi4py and pytest.
  pybind11-dev python3-dev python3-torch python3-mpi4py python3-pytest
  # Sanitizer builds and libFuzzer (scripts/sanitize.sh, scripts/fuzz.sh).
  clang-16 libclang-rt-16-dev llvm-16  # llvm-16: the symbolizer of their reports
)
# LibTorch (CPU-only in Debian) for the dcp::torch adapter; DCP_WITH_TORCH=0 skips it.
if [[ "${DCP_WITH_TORCH:-1}" != "0" ]]; then
  packages+=(libtorch-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
