#!/usr/bin/env bash
# A/B of the CPU kernels' instruction-set paths on one build: bench_model alternates A (INFERD_CPU_ISA=A_ISA,
# default avx512bf16) and B (B_ISA, default empty: the CPU's best paths, AMX where present), A B A B per model,
# then ab_isa_summary.py prints medians, B / A, and aggregate decode over prefill 512.
#
#   benchmarks/model/ab_isa.sh [BUILD_DIR] [OUT_DIR] [ROUNDS]     defaults: build, build/amx-ab, 2
#
# Environment: MODELS_LIST ("dense-270m moe-700m", checkpoints under build/bench-models from run.sh or
# llama_vs_inferd.sh), A_ISA, B_ISA, THREADS (2). bench_model runs with OMP_WAIT_POLICY=PASSIVE, as
# scripts/run.sh starts the daemon.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
OUT=${2:-build/amx-ab}
ROUNDS=${3:-2}
A_ISA=${A_ISA-avx512bf16}
B_ISA=${B_ISA-}
mkdir -p "$OUT"
for M in ${MODELS_LIST:-dense-270m moe-700m}; do
  for r in $(seq 1 "$ROUNDS"); do
    for side in A B; do
      isa=$A_ISA
      [ "$side" = B ] && isa=$B_ISA
      echo "# $M round $r $side isa=${isa:-default} $(date -u +%T) loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
      env OMP_WAIT_POLICY=PASSIVE INFERD_CPU_ISA="$isa" "$BUILD/bin/bench_model" --model "build/bench-models/$M" \
        --dtype bf16 --threads "${THREADS:-2}" --prompts 128,512 --batches 1,4,16,64 --context 64 --decode-steps 16 \
        --repeats 3 --json "$OUT/$M-$side-$r.json" > "$OUT/$M-$side-$r.log" 2>&1
    done
  done
done
"${PYTHON:-.venv/bin/python}" benchmarks/model/ab_isa_summary.py "$OUT"
