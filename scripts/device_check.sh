#!/usr/bin/env bash
# The device check: one short window on a GPU machine (no internet; torch,
# nvcc, ninja and pytest installed) that builds the extension against that
# machine's torch and checks the CUDA paths, the default ones first.
#
# Usage: COMMIT=$(git rev-parse HEAD) scripts/device_check.sh [--stages a,b,...] [--dry-run]
#   --stages   run only these stages (names below; 'all' adds the optional ones)
#   --dry-run  print the stages with their time limits, and the total; needs no GPU
#
# Each stage streams its log into $OUT (default benchmarks/out/device-check-<commit>)
# as it runs, is bounded by its own timeout, and prints one status line when it
# ends; $OUT/summary.json (scripts/device_summary.py) is rewritten after every
# stage, so a run killed at any point still leaves every finished stage and its
# verdict. The default stages fit in 9 minutes by their own limits, so the
# script runs unchanged under a 600-s command limit. COMMIT names the commit
# under test (the device's copy of the tree may have no .git).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
OUT=${OUT:-benchmarks/out/device-check-${COMMIT:0:10}}
export PYTHONPATH=.

# The CUDA tests of the default paths ('auto'), and the files they live in.
DEFAULT_TESTS="tests/test_cuda.py tests/test_ops.py tests/test_modules.py tests/test_paths.py \
tests/test_backend.py tests/test_double_backward.py"

# pytest; fails where a test skipped for want of a GPU (or of the CUDA
# kernels), which would pass the stage with nothing run. xdist spreads the
# cases over processes where the machine has it.
run_pytest() {
  local xdist log rc
  xdist=$("$PY" -c "import xdist" 2>/dev/null && echo "-n 8")
  log=$(mktemp)
  "$PY" -m pytest -q -rs $xdist "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ] && grep -q "needs a GPU" "$log"; then
    echo "device_check: tests skipped for want of a GPU"
    rc=1
  fi
  rm -f "$log"
  return "$rc"
}

sanitize() {  # tool, SANITIZE_BACKEND, kernel-name filter
  SANITIZE_BACKEND=$2 compute-sanitizer --tool "$1" --kernel-name "kns=$3" \
    "$PY" scripts/sanitize_persistent.py
}

run_stage() {
  case "$1" in
    env)
      echo "commit $COMMIT"
      date -u
      nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv
      nvcc --version | tail -1
      echo "$(nproc) CPU cores"
      # Last, so that the stage fails (and the run stops) where torch sees no GPU.
      "$PY" - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
p = torch.cuda.get_device_properties(0)
print(f"device {p.name}, {p.multi_processor_count} SMs, compute capability {p.major}.{p.minor}")
EOF
      ;;
    build)
      # This device's architecture only; setup.py lists the .cu units first.
      local arch
      arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1)
      TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$arch} FORCE_CUDA=1 MAX_JOBS=$(nproc) \
        "$PY" setup.py build_ext --inplace ;;
    smoke) "$PY" scripts/device_smoke.py ;;
    default-tests) run_pytest -k "cuda" $DEFAULT_TESTS ;;
    grid-tests) run_pytest tests/test_one_launch.py tests/test_watchdog.py \
      -k "persistent and not gru and not lstm and not cluster and not tiled or watchdog \
          or auto_takes" ;;
    memcheck) sanitize memcheck per-step "step_kernel" ;;
    grid-bench) "$PY" benchmarks/gpu_targets.py --dtype float32 bfloat16 --batches 1 8 64 256 \
      --hidden 256 512 1024 --backends per-step persistent --repeats 15 --out "$OUT" ;;
    gated-tests) run_pytest tests/test_one_launch.py -k "persistent and (gru or lstm)" ;;
    cluster-tests) run_pytest tests/test_one_launch.py -k "cluster and not tiled" ;;
    tiled-tests) run_pytest tests/test_one_launch.py -k "tiled" ;;
    grid-sanitize)
      for tool in memcheck racecheck synccheck; do sanitize $tool persistent recurrence_kernel; done ;;
    gated-sanitize)
      for tool in memcheck racecheck synccheck; do sanitize $tool gated gated_persistent; done ;;
    cluster-sanitize)
      for tool in memcheck racecheck synccheck; do sanitize $tool cluster recurrence_kernel; done ;;
    latency)
      for dtype in bfloat16 float32; do
        "$PY" benchmarks/step_latency.py --dtype "$dtype" --out "$OUT"
      done ;;
    gated-bench)
      for dtype in float32 bfloat16; do
        "$PY" benchmarks/run.py --only sequences --cell gru lstm --dtype "$dtype" \
          --repeats 5 --out "$OUT"
      done ;;
    *) echo "unknown stage $1"; return 2 ;;
  esac
}

if [ "${1:-}" = "--run-stage" ]; then
  run_stage "$2"
  exit $?
fi

selected=default
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --stages) selected=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    *) echo "usage: $0 [--stages a,b,...|all] [--dry-run]" >&2; exit 2 ;;
  esac
done

chosen() {  # name, kind
  case "$selected" in
    default) [ "$2" = default ] ;;
    all) true ;;
    *) [[ ",$selected," == *",$1,"* ]] ;;
  esac
}

# The stages, their limits and the paths they verify: scripts/device_summary.py.
total=0
plan=()
while read -r name limit paths kind; do
  chosen "$name" "$kind" || continue
  plan+=("$name $limit $paths")
  total=$(( total + limit ))
done < <("$PY" scripts/device_summary.py --plan)

if [ "$dry_run" -eq 1 ]; then
  for stage in "${plan[@]}"; do
    read -r name limit paths <<< "$stage"
    printf "stage %-16s limit %4d s  verifies %s\n" "$name" "$limit" "$paths"
  done
  echo "total budget: $total s"
  exit 0
fi

# A rerun of some stages (same commit, same folder) replaces their lines.
mkdir -p "$OUT"
touch "$OUT/stages.tsv"
echo "device check of $COMMIT: ${#plan[@]} stages, total budget $total s, logs in $OUT"
failed=0
for stage in "${plan[@]}"; do
  read -r name limit paths <<< "$stage"
  start=$(date +%s)
  timeout -k 5 "$limit" bash "$0" --run-stage "$name" > "$OUT/$name.log" 2>&1
  rc=$?
  seconds=$(( $(date +%s) - start ))
  case $rc in
    0) status=passed ;;
    124|137) status=timed-out ;;
    *) status=failed ;;
  esac
  [ "$status" = passed ] || failed=1
  printf "%s\t%s\t%s\n" "$name" "$status" "$seconds" >> "$OUT/stages.tsv"
  "$PY" scripts/device_summary.py "$OUT" > /dev/null
  echo "stage $name: $status in $seconds s (limit $limit s) $(grep -E \
    "^[0-9]+ (passed|failed)|ERROR SUMMARY|cases passed" "$OUT/$name.log" | tail -1)"
  # Nothing runs without a GPU or without the extension.
  if { [ "$name" = env ] || [ "$name" = build ]; } && [ "$status" != passed ]; then
    tail -20 "$OUT/$name.log"
    break
  fi
done
"$PY" scripts/device_summary.py "$OUT"
exit $failed
