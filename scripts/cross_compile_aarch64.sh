#!/usr/bin/env bash
# Compiles every C++ source of the extension (the CPU kernels, the ops, the
# registrations; not the CUDA units) for aarch64 with Debian's cross-compiler,
# against the installed torch's headers, and fails on any error or on an
# ignored attribute. Installs g++-aarch64-linux-gnu where it is missing (CI).
# Usage: scripts/cross_compile_aarch64.sh [python]   (default .venv/bin/python)
#        scripts/cross_compile_aarch64.sh --install-only
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=aarch64-linux-gnu-g++
if ! command -v "$CXX" > /dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++-aarch64-linux-gnu > /dev/null
fi
[[ "${1:-}" == --install-only ]] && exit 0
PY=${1:-.venv/bin/python}
read -r TORCH_INCLUDE PY_INCLUDE < <("$PY" -c '
import sysconfig, torch.utils.cpp_extension as e
print(e.include_paths()[0], sysconfig.get_paths()["include"])')
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# setup.py's flags at -O0, which finds the same errors in less time
# (always_inline and target checks run at every level).
FLAGS=(-std=c++20 -O0 -g0 -fopenmp -fno-trapping-math -Wno-psabi -fPIC -Werror=attributes
       -isystem "$TORCH_INCLUDE" -isystem "$TORCH_INCLUDE/torch/csrc/api/include"
       -isystem "$PY_INCLUDE" -DTORCH_API_INCLUDE_EXTENSION_H -DTORCH_EXTENSION_NAME=_C)
export CXX OUT
find csrc -name '*.cpp' -not -path 'csrc/cuda/*' | sort | xargs -P "$(nproc)" -I{} \
  bash -c 'echo "aarch64: {}"; $CXX "$@" -c {} -o "$OUT/$(echo {} | tr / _).o"' _ "${FLAGS[@]}"
COUNT=$(find csrc -name '*.cpp' -not -path 'csrc/cuda/*' | wc -l)
echo "aarch64: $COUNT sources compiled with $($CXX --version | head -1)"
