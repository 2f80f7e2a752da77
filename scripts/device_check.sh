#!/usr/bin/env bash
# One prepared run on a GPU machine (no internet; torch, nvcc, ninja and pytest
# installed): builds the extension against that machine's torch, runs the CUDA
# tests, and benchmarks against cuDNN in float32 and bfloat16. The full logs and
# results go to one archive in $OUT (default benchmarks/out), since the device
# tool brings back at most 8 files; a compact summary is printed last.
# Budget: about 6 minutes on an H100 host. BENCH_ARGS=--quick shortens the benchmark.
# COMMIT names the commit under test in the logs (the device machine's copy of the
# tree may have no .git): COMMIT=$(git rev-parse HEAD) scripts/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out}
PY=${PY:-python3}
mkdir -p "$OUT"
LOGS=$(mktemp -d)
start=$(date +%s)
# Stages that would start after DEADLINE seconds are skipped, so that the logs
# are packed before the device tool's own limit stops the script.
in_time() { [ $(( $(date +%s) - start )) -lt "${DEADLINE:-400}" ]; }

COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
{
  echo "commit $COMMIT"
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  "$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, \
'cuDNN', torch.backends.cudnn.version())"
  nvcc --version | tail -1
} > "$LOGS/env.log" 2>&1

FORCE_CUDA=1 MAX_JOBS=$(nproc) timeout 120 "$PY" setup.py build_ext --inplace \
  > "$LOGS/build.log" 2>&1
build_rc=$?
build_s=$(( $(date +%s) - start ))

test_rc=skipped
if [ "$build_rc" -eq 0 ]; then
  # Every CUDA test (test_cuda.py, test_persistent.py and the device-parametrized
  # tests on CUDA) once per recurrence: RNN_FUSED_BACKEND makes 'auto' the per-step
  # loop, then the persistent kernel. Other test files need packages the GPU
  # machine may lack.
  # xdist spreads the cases over processes where the machine has it.
  xdist=$("$PY" -c "import xdist" 2>/dev/null && echo "-n 8")
  test_rc=0
  for path in per-step persistent; do
    in_time || continue
    RNN_FUSED_BACKEND=$path PYTHONPATH=. timeout "${TEST_TIMEOUT:-150}" "$PY" -m pytest \
      -q -rs $xdist -k "cuda or persistent" tests/test_cuda.py tests/test_persistent.py tests/test_ops.py \
      tests/test_fused_rnn.py tests/test_backend.py tests/test_double_backward.py \
      > "$LOGS/tests_$path.log" 2>&1 || test_rc=1
  done
  for dtype in float32 bfloat16; do
    in_time || continue
    PYTHONPATH=. timeout 50 "$PY" benchmarks/step_latency.py --dtype "$dtype" --out "$LOGS" \
      > "$LOGS/step_latency_$dtype.log" 2>&1
  done
  for dtype in float32 bfloat16; do
    in_time || continue
    PYTHONPATH=. timeout "${BENCH_TIMEOUT:-90}" "$PY" benchmarks/run.py ${BENCH_ARGS:-} \
      --dtype "$dtype" --repeats 5 --out "$LOGS" > "$LOGS/bench_$dtype.log" 2>&1
  done
  for tool in memcheck racecheck; do
    in_time || continue
    PYTHONPATH=. timeout 60 compute-sanitizer --tool $tool \
      --kernel-name kns=persistent_recurrence_kernel "$PY" scripts/sanitize_persistent.py \
      > "$LOGS/sanitizer_$tool.log" 2>&1
  done
fi

summary() {
  # Most important last: the reply shows only the end of the output.
  echo "==== device_check summary ($(( $(date +%s) - start )) s, logs in $OUT/device_check.tar.gz)"
  for dtype in float32 bfloat16; do
    [ -f "$LOGS/bench_$dtype.log" ] && grep -E "^(- device|## |\| B=)" "$LOGS/bench_$dtype.log" \
      | grep -vE "reference|random resets" | cut -c1-150
    tail -2 "$LOGS/bench_$dtype.log" | grep -iE "error|Traceback" || true
  done
  cat "$LOGS"/*step-latency-*.md 2>/dev/null | grep "|"
  grep -v "^$" "$LOGS/env.log"
  echo "build: exit $build_rc after $build_s s"
  [ "$build_rc" -eq 0 ] || tail -20 "$LOGS/build.log"
  for tool in memcheck racecheck; do
    echo "compute-sanitizer $tool: $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY|workload done" \
      "$LOGS/sanitizer_$tool.log" | tr '\n' ' ')"
  done
  for path in per-step persistent; do
    echo "tests ($path): $(grep -E "^[0-9]+ (passed|failed|skipped|deselected|error)" \
      "$LOGS/tests_$path.log" | tr '\n' ' ')"
    grep -E "^(FAILED|ERROR)" "$LOGS/tests_$path.log" 2>/dev/null | cut -c1-200 | head -12
  done
}
summary | tee "$LOGS/summary.txt"
tar czf "$OUT/device_check.tar.gz" -C "$LOGS" .
[ "$build_rc" -eq 0 ] && [ "$test_rc" -eq 0 ]
