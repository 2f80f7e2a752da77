#!/usr/bin/env bash
# Registers, shared memory and spills of every CUDA kernel, as ptxas reports
# them, one line per kernel instantiation. Needs no GPU.
# Usage: scripts/ptxas_report.sh [arch, default sm_90]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ARCH=${1:-sm_90}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
INCLUDES=$("$PY" - <<'PYEOF'
import os, sysconfig
from torch.utils.cpp_extension import include_paths
paths = include_paths() + [sysconfig.get_paths()["include"],
                           os.path.join(sysconfig.get_paths()["purelib"], "nvidia", "cu13", "include")]
print(" ".join("-I" + p for p in paths if os.path.isdir(p)))
PYEOF
)
echo "kernel | registers | shared memory | stack | spill stores/loads ($ARCH)"
for cu in ${CU_FILES:-$(find csrc/cuda -name "*.cu" | sort)}; do
  "$CUDA_HOME/bin/nvcc" -std=c++20 -O3 -arch="$ARCH" -DWITH_CUDA -Xptxas -v $INCLUDES \
    --expt-relaxed-constexpr -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ \
    -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ \
    -c "$cu" -o /dev/null 2>&1 | "$PY" -c '
import re, subprocess, sys
name = None
for line in sys.stdin:
    if m := re.search(r"Compiling entry function .(\w+).", line):
        name = subprocess.run(["c++filt", m.group(1)], capture_output=True, text=True).stdout.strip()
        name = re.sub(r"\(.*", "", name).replace("rnn_fused::", "").replace("c10::", "")
    elif m := re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line):
        stack, stores, loads = m.groups()
    elif m := re.search(r"Used (\d+) registers", line):
        smem = re.search(r"(\d+) bytes smem", line)
        print(f"{name} | {m.group(1)} | {smem.group(1) if smem else 0} B | {stack} B | {stores}/{loads} B")
'
done
