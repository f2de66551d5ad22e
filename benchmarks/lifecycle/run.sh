#!/usr/bin/env bash
# Model lifecycle benchmark (see RESULTS.md): first request after SERVING with warm-up on and off, the same after
# each reload, realtime p99 during a reload, reload switch-over time, load throughput against read bandwidth.
# Usage: benchmarks/lifecycle/run.sh [BUILD_DIR] [SHAPES...]
#   SHAPES: default (models/default) and/or bench-model shape names (dense-270m, moe-700m, ...), generated with
#   benchmarks/model/make_bench_checkpoint.py into models/bench/<name> (a no-op when already there).
# Environment: ROUNDS (2), RELOADS (2), REPEATS (15), NICE (0: the daemon and client's nice level),
#   MEMORY_RELOADS (0: N reloads in a row after the others under realtime traffic, VmRSS / VmLck / malloc after each),
#   MODEL_B (a second checkpoint with the same tokenizer, alternated with the first at reloads),
#   BENCH_MODELS (a directory holding <shape>/ checkpoints already generated, read in place).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}
shift || true
SHAPES=${*:-default dense-270m}
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-$B/bench-results/lifecycle}
mkdir -p "$OUT"
lscpu | grep -m1 'Model name'; uptime
for s in $SHAPES; do
  if [ "$s" = default ]; then
    M=models/default
  elif [ -n "${BENCH_MODELS:-}" ] && [ -f "$BENCH_MODELS/$s/tokenizer.json" ]; then
    M=$BENCH_MODELS/$s  # read only
  else
    M=models/bench/$s
    "$PY" benchmarks/model/make_bench_checkpoint.py --shape "../shared/bench-models/$s-shape.json" --out "$M"
    [[ -f $M/tokenizer.json ]] || "$PY" benchmarks/peers/llama_cpp/make_bench_tokenizer.py "$M"
  fi
  echo "== $s ($M, $(du -sh "$M" | cut -f1))"
  nice -n "${NICE:-0}" "$PY" benchmarks/lifecycle/bench_lifecycle.py --inferd "$B/bin/inferd" --model "$M" \
    --proto-dir proto --rounds "${ROUNDS:-2}" --reloads "${RELOADS:-2}" --repeats "${REPEATS:-15}" \
    --memory-reloads "${MEMORY_RELOADS:-0}" ${MODEL_B:+--model-b "$MODEL_B"} --json "$OUT/$s.json"
  uptime
done
