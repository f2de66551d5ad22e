#!/usr/bin/env bash
# The GPU run (issue 14): on a machine with an NVIDIA GPU, nvcc, CMake, ninja and a CUDA torch at python3,
# builds the engine-only targets for the device's architecture (tools/gpu/CMakeLists.txt), runs every CUDA
# test (a skip fails the run), the model fidelity tests on cuda (fp32 against transformers' logits,
# bf16/fp16 against them with the documented tolerances), the device-to-device copy bandwidth, and
# bench_model on the real-DeepSeek shapes in bf16 and fp16 (prefill 512, decode at batch 1/16/64).
#
#   tools/gpu_prepare.sh                 # once, on the development machine: fills .gpu/
#   tools/gpu_check.sh                   # on the GPU machine (device tool: carry [".gpu"], timeout_s 600)
#
# Environment: OUT (results folder; default build-gpu/out), BENCH_MODELS (default: deepseek-coder-1.3b
# deepseek-v2-lite-4l deepseek-v3-arch-2k), BENCH_DTYPES (bf16 fp16), BUDGET_S (390: no benchmark starts
# later than this many seconds after the start), MODELS_DIR (/tmp/inferd-bench-models).
# Writes OUT/summary.md, OUT/gpu_check.log and OUT/results.tar.gz (test reports, bench JSON, logs).
# Exit: 0 all passed; 1 a build, test or benchmark failed; 2 no usable GPU here (nothing run); 3 .gpu/ missing.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
START=$(date +%s)
OUT=${OUT:-build-gpu/out}
BUDGET_S=${BUDGET_S:-390}
BENCH_MODELS=${BENCH_MODELS:-"deepseek-coder-1.3b deepseek-v2-lite-4l deepseek-v3-arch-2k"}
BENCH_DTYPES=${BENCH_DTYPES:-"bf16 fp16"}
MODELS_DIR=${MODELS_DIR:-/tmp/inferd-bench-models}
RAW=build-gpu/raw
mkdir -p "$OUT" "$RAW"
elapsed() { echo $(( $(date +%s) - START )); }
log() { echo "[gpu_check +$(elapsed)s] $*"; }
failures=()

main() {
# ---- 0. a usable GPU, or say why not and stop -----------------------------------------------------------
if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi missing or lists no device); nothing was run"
  exit 2
fi
PY=$(command -v python3 || true)
if [ -z "$PY" ] || ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2> /dev/null; then
  echo "gpu_check: python3 has no CUDA-enabled torch that sees the GPU; nothing was run"
  exit 2
fi
if ! command -v nvcc > /dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "gpu_check: nvcc not found; nothing was run"
  exit 2
fi
if [ ! -f .gpu/root/usr/include/spdlog/spdlog.h ] || [ ! -d .gpu/testmodels ]; then
  echo "gpu_check: .gpu/ is missing or incomplete: run tools/gpu_prepare.sh on the development machine and carry .gpu"
  exit 3
fi
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' ')
ARCH=${CAP/./}
GPU_NAME=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
log "device: $GPU_NAME, compute capability $CAP (building sm_$ARCH); commit $(git rev-parse --short HEAD 2> /dev/null || echo unknown)"
log "host: $(nproc) cpus, $(lscpu | sed -n 's/^Model name: *//p' | head -1); torch $("$PY" -c 'import torch; print(torch.__version__)')"

# ---- 1. benchmark checkpoints, generated in the background while the build runs -------------------------
mkdir -p "$MODELS_DIR"
(
  for m in $BENCH_MODELS; do
    "$PY" benchmarks/model/make_bench_checkpoint.py --shape ".gpu/bench-models/$m-shape.json" \
        --out "$MODELS_DIR/$m" --dtype bf16 || echo "checkpoint $m failed"
  done
) > "$RAW/checkpoints.log" 2>&1 &
GEN_PID=$!

# ---- 2. build --------------------------------------------------------------------------------------------
export PATH=$PATH:/usr/local/cuda/bin
TARGETS="kernels_cuda_test kernels_cuda_ops_test model_test bench_model"
if cmake -S tools/gpu -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DINFERD_PYTHON="$PY" \
       -DINFERD_GPU_ARCH="$ARCH" > "$RAW/configure.log" 2>&1 &&
   cmake --build build-gpu -j"$(nproc)" --target $TARGETS > "$RAW/build.log" 2>&1; then
  log "built $TARGETS"
  BUILT=1
else
  log "BUILD FAILED (last lines below; full log in results.tar.gz)"
  tail -30 "$RAW/configure.log" "$RAW/build.log"
  failures+=("build")
  BUILT=0
fi

# ---- 3. tests: every CUDA test must run (no skip), the model tests on cuda -----------------------------
run_gtest() {  # name, binary, timeout, extra env...
  local name=$1 bin=$2 limit=$3
  shift 3
  env "$@" timeout "$limit" "$bin" --gtest_output="json:$RAW/$name.json" > "$RAW/$name.log" 2>&1
  local rc=$?
  if "$PY" tools/gpu/check_gtest.py "$RAW/$name.json" && [ $rc -eq 0 ]; then
    log "$name: passed, none skipped"
  else
    log "$name: FAILED (exit $rc)"
    tail -40 "$RAW/$name.log"
    failures+=("$name")
  fi
}
if [ "$BUILT" = 1 ]; then
  run_gtest kernels_cuda_test build-gpu/tests/kernels_cuda_test 120
  run_gtest kernels_cuda_ops_test build-gpu/tests/kernels_cuda_ops_test 240
  run_gtest model_test_cuda build-gpu/tests/model_test 300 INFERD_TEST_DEVICE=cuda INFERD_TESTMODELS="$PWD/.gpu/testmodels"
  grep -h "^\[.*\(fp32\|bf16\|fp16\) prompt" "$RAW/model_test_cuda.log" > "$RAW/fidelity.txt" || true
fi

# ---- 4. copy bandwidth and benchmarks --------------------------------------------------------------------
"$PY" benchmarks/gpu/d2d_bandwidth.py --json "$RAW/d2d.json" || failures+=("d2d_bandwidth")
BENCH_JSON=()
if [ "$BUILT" = 1 ]; then
  for m in $BENCH_MODELS; do
    for d in $BENCH_DTYPES; do
      if [ "$(elapsed)" -gt "$BUDGET_S" ]; then
        log "bench $m $d: not started (past the ${BUDGET_S}s budget)"
        failures+=("bench $m $d (time)")
        continue
      fi
      while kill -0 "$GEN_PID" 2> /dev/null && [ ! -f "$MODELS_DIR/$m/inferd_bench_stamp.json" ]; do sleep 2; done
      if [ ! -f "$MODELS_DIR/$m/inferd_bench_stamp.json" ]; then
        log "bench $m: no checkpoint (see checkpoints.log)"
        failures+=("checkpoint $m")
        break
      fi
      j="$RAW/bench-$m-$d.json"
      if timeout 150 build-gpu/bin/bench_model --model "$MODELS_DIR/$m" --dtype "$d" --device cuda --threads 4 \
             --prompts 512 --batches 1,16,64 --context 64 --decode-steps 32 --repeats 3 \
             --membw-bytes 268435456 --json "$j" > "$RAW/bench-$m-$d.log" 2>&1; then
        log "bench $m $d: done"
        BENCH_JSON+=("$j")
      else
        log "bench $m $d: FAILED"
        tail -20 "$RAW/bench-$m-$d.log"
        failures+=("bench $m $d")
      fi
    done
  done
fi
kill "$GEN_PID" 2> /dev/null
wait 2> /dev/null

# ---- 5. summary --------------------------------------------------------------------------------------------
{
  echo "# tools/gpu_check.sh, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2> /dev/null || echo unknown)"
  echo
  echo "device: $GPU_NAME; host $(nproc) cpus; wall $(elapsed) s"
  echo
  if [ -f "$RAW/d2d.json" ]; then
    "$PY" benchmarks/gpu/summarize.py --d2d "$RAW/d2d.json" --bench "${BENCH_JSON[@]}"
  fi
  echo
  echo "fidelity (model_test on cuda):"
  cat "$RAW/fidelity.txt" 2> /dev/null
  echo
  if [ ${#failures[@]} -eq 0 ]; then echo "result: all passed"; else printf 'result: FAILED: %s\n' "${failures[*]}"; fi
} > "$OUT/summary.md"
cat "$OUT/summary.md"
tar -czf "$OUT/results.tar.gz" -C build-gpu raw
[ ${#failures[@]} -eq 0 ]
}

main 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
