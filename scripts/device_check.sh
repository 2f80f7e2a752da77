#!/usr/bin/env bash
# One prepared run on a GPU machine (no internet; torch, nvcc, ninja and pytest
# installed): builds the extension against that machine's torch, runs the CUDA
# tests, the targets grid against cuDNN, the step latencies and
# compute-sanitizer. Full logs and results go to one archive in $OUT (default
# benchmarks/out), since the device tool brings back few files; a compact
# summary is printed last.
# Budget: about 8 minutes on an H100 host; stages that would start after
# DEADLINE seconds (default 420) are skipped, most important first.
# COMMIT names the commit under test in the logs (the device machine's copy of the
# tree may have no .git): COMMIT=$(git rev-parse HEAD) scripts/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out}
PY=${PY:-python3}
mkdir -p "$OUT"
LOGS=$(mktemp -d)
start=$(date +%s)
in_time() { [ $(( $(date +%s) - start )) -lt "${DEADLINE:-420}" ]; }
export COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
export PYTHONPATH=.
{
  echo "commit $COMMIT"
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  "$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, \
'cuDNN', torch.backends.cudnn.version())"
  nvcc --version | tail -1
} > "$LOGS/env.log" 2>&1

FORCE_CUDA=1 MAX_JOBS=$(nproc) timeout 150 "$PY" setup.py build_ext --inplace \
  > "$LOGS/build.log" 2>&1
build_rc=$?
build_s=$(( $(date +%s) - start ))

# xdist spreads test cases over processes where the machine has it.
xdist=$("$PY" -c "import xdist" 2>/dev/null && echo "-n 8")
# Every CUDA test once per recurrence that 'auto' can be made to take
# (RNN_FUSED_BACKEND replaces 'auto'); test_persistent.py and
# test_gated_persistent.py name their kernels themselves, so they run once.
# Other test files need packages the GPU machine may lack.
GENERAL_TESTS="tests/test_cuda.py tests/test_ops.py tests/test_fused_rnn.py tests/test_backend.py \
tests/test_double_backward.py tests/test_gated.py"
run_tests() {  # name, RNN_FUSED_BACKEND, pytest arguments...
  local name=$1 backend=$2
  shift 2
  in_time || return 0
  RNN_FUSED_BACKEND=$backend timeout "${TEST_TIMEOUT:-150}" "$PY" -m pytest -q -rs $xdist "$@" \
    > "$LOGS/tests_$name.log" 2>&1 || test_rc=1
}
test_rc=skipped
if [ "$build_rc" -eq 0 ]; then
  test_rc=0
  run_tests kernels "" tests/test_persistent.py
  run_tests gated_kernels "" tests/test_gated_persistent.py
  # The cluster and gated kernels' first runs: the sanitizers before the benchmarks,
  # the cluster kernel (DSMEM exchange, tensor cores) first.
  for backend in cluster gated persistent; do
    # recurrence_kernel: the persistent, cluster and tiled cluster kernels.
    kernel=$([ "$backend" = gated ] && echo gated_persistent || echo recurrence_kernel)
    for tool in memcheck racecheck synccheck; do
      in_time && SANITIZE_BACKEND=$backend timeout 60 compute-sanitizer --tool $tool \
        --kernel-name kns=$kernel "$PY" scripts/sanitize_persistent.py \
        > "$LOGS/sanitizer_${tool}_$backend.log" 2>&1
    done
  done
  in_time && timeout 200 "$PY" benchmarks/gpu_targets.py --repeats 15 --out "$LOGS" \
    > "$LOGS/targets.log" 2>&1
  run_tests persistent persistent -k "cuda or persistent" $GENERAL_TESTS
  run_tests per-step per-step -k "cuda or persistent" $GENERAL_TESTS
  for dtype in bfloat16 float32; do
    in_time && timeout 90 "$PY" benchmarks/step_latency.py --dtype "$dtype" --out "$LOGS" \
      > "$LOGS/step_latency_$dtype.log" 2>&1
  done
  # Last (their issue is closed): GRU and LSTM against cuDNN's (plain, padded, RL
  # rollout), float32 and bfloat16.
  for dtype in float32 bfloat16; do
    in_time && timeout 90 "$PY" benchmarks/run.py --quick --only sequences --cell gru lstm \
      --dtype "$dtype" --repeats 5 --out "$LOGS" > "$LOGS/bench_gated_$dtype.log" 2>&1
  done
fi

summary() {
  # Most important last: the reply shows only the end of the output.
  echo "==== device_check summary ($(( $(date +%s) - start )) s, logs in $OUT/device_check.tar.gz)"
  cat "$LOGS"/step-latency-*.md 2>/dev/null | grep "|"
  for dtype in float32 bfloat16; do
    grep -E "^(## |\| B=)" "$LOGS/bench_gated_$dtype.log" 2>/dev/null | grep -v reference \
      | cut -c1-140
  done
  grep -E "^(## |\| [0-9])" "$LOGS/targets.log" 2>/dev/null
  tail -3 "$LOGS/targets.log" 2>/dev/null | grep -iE "error|Traceback" || true
  grep -v "^$" "$LOGS/env.log"
  echo "build: exit $build_rc after $build_s s"
  [ "$build_rc" -eq 0 ] || tail -20 "$LOGS/build.log"
  for log in "$LOGS"/sanitizer_*.log; do
    [ -f "$log" ] || continue
    echo "$(basename "$log" .log): $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY|workload done" \
      "$log" | tr '\n' ' ')"
  done
  for log in "$LOGS"/tests_*.log; do
    [ -f "$log" ] || continue
    echo "$(basename "$log" .log): $(grep -E "^[0-9]+ (passed|failed|skipped|deselected|error)" \
      "$log" | tr '\n' ' ')"
    grep -E "^(FAILED|ERROR)" "$log" | cut -c1-200 | head -12
  done
}
summary | tee "$LOGS/summary.txt"
cp "$LOGS"/targets-*.md "$OUT"/ 2>/dev/null
tar czf "$OUT/device_check.tar.gz" -C "$LOGS" .
[ "$build_rc" -eq 0 ] && [ "$test_rc" -eq 0 ]
