#!/usr/bin/env bash
# A/B of two bench_model builds on the same checkpoints: rounds alternate A B A B ... (each round runs
# run.sh's bf16 set once per build), then benchmarks/model/ab_summary.py prints medians per build and B / A.
#
#   benchmarks/model/ab.sh A_BUILD_DIR B_BUILD_DIR [OUT_DIR] [ROUNDS]     defaults: OUT build/bench-ab, 2 rounds
#
# Environment as run.sh (MODELS_LIST, STEPS, REPEATS, THREADS, EXTRA); DTYPES defaults to bf16.
# LLAMA_BENCH (path to llama.cpp's llama-bench) and LLAMA_GGUF (the same checkpoint as GGUF): after each
# round, llama.cpp's batch-1 decode in the same window (-t THREADS -lm none -p 0 -n STEPS -d CONTEXT -r 5;
# CONTEXT defaults to 64, pass the same --context in EXTRA), JSON in OUT/llama-ROUND.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1
B=$2
OUT=${3:-build/bench-ab}
ROUNDS=${4:-2}
export DTYPES=${DTYPES:-bf16}
mkdir -p "$OUT"
{
  lscpu | grep 'Model name'
  grep -o -w 'avx512_bf16\|amx_bf16\|avx512f\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' '
  echo
} | tee "$OUT/machine.txt"
for r in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    dir=$A
    [ "$side" = B ] && dir=$B
    echo "# round $r $side ($dir) $(date -u +%T) loadavg $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/log.txt"
    benchmarks/model/run.sh "$dir" "$OUT/$side-$r" | tee -a "$OUT/log.txt"
    echo "# end $(date -u +%T) loadavg $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/log.txt"
  done
  if [ -n "${LLAMA_BENCH:-}" ]; then
    echo "# round $r llama.cpp $(date -u +%T) loadavg $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/log.txt"
    "$LLAMA_BENCH" -m "$LLAMA_GGUF" -t "${THREADS:-2}" -lm none -p 0 -n "${STEPS:-16}" -d "${CONTEXT:-64}" -r 5 \
        -o json > "$OUT/llama-$r.json" 2>> "$OUT/llama.log"
  fi
done
"${PYTHON:-.venv/bin/python}" benchmarks/model/ab_summary.py "$OUT"
