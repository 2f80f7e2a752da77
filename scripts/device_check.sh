#!/usr/bin/env bash
# One prepared run on a GPU machine (no internet; torch, nvcc, ninja and pytest
# installed): builds the extension against that machine's torch, runs the CUDA
# tests, and benchmarks against cuDNN in float32 and bfloat16. Full logs go to
# $OUT (default benchmarks/out); a compact summary is printed last.
# Budget: about 6 minutes on an H100 host.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out}
PY=${PY:-python3}
mkdir -p "$OUT"
start=$(date +%s)

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  "$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, \
'cuDNN', torch.backends.cudnn.version())"
  nvcc --version | tail -1
} > "$OUT/env.log" 2>&1

FORCE_CUDA=1 MAX_JOBS=$(nproc) timeout 120 "$PY" setup.py build_ext --inplace \
  > "$OUT/build.log" 2>&1
build_rc=$?
build_s=$(( $(date +%s) - start ))

test_rc=skipped
if [ "$build_rc" -eq 0 ]; then
  # CUDA-only tests first, so that their result survives a timeout later on; then
  # every device-parametrized test on CUDA. Other test files need packages the GPU
  # machine may lack, such as matplotlib.
  PYTHONPATH=. timeout 60 "$PY" -m pytest -q -rs tests/test_cuda.py > "$OUT/tests.log" 2>&1
  test_rc=$?
  PYTHONPATH=. timeout 110 "$PY" -m pytest -q -rs -k cuda tests/test_ops.py \
    tests/test_fused_rnn.py >> "$OUT/tests.log" 2>&1
  rc=$?; [ "$test_rc" -eq 0 ] && test_rc=$rc
  for dtype in float32 bfloat16; do
    PYTHONPATH=. timeout 45 "$PY" benchmarks/run.py --quick --dtype "$dtype" --repeats 5 \
      --out "$OUT" > "$OUT/bench_$dtype.log" 2>&1
  done
fi

echo "==== device_check summary ($(( $(date +%s) - start )) s, logs in $OUT)"
grep -v "^$" "$OUT/env.log"
echo "build: exit $build_rc after $build_s s"
[ "$build_rc" -eq 0 ] || tail -20 "$OUT/build.log"
echo "tests: exit $test_rc: $(grep -E "^[0-9]+ (passed|failed|skipped|deselected|error)" \
  "$OUT/tests.log" | tr '\n' ' ')"
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" 2>/dev/null | head -20
for dtype in float32 bfloat16; do
  [ -f "$OUT/bench_$dtype.log" ] && grep -E "^(- |## |\| B)" "$OUT/bench_$dtype.log" | cut -c1-160
  tail -2 "$OUT/bench_$dtype.log" | grep -iE "error|Traceback" || true
done
[ "$build_rc" -eq 0 ] && [ "$test_rc" -eq 0 ]
