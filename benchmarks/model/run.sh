#!/usr/bin/env bash
# Model benchmark: generates the random-weight bench checkpoints (bf16) outside git, then runs bench_model on
# dense-270m and moe-700m in bf16 and fp32 (fp32 runs load the bf16 checkpoint with dtype fp32), 2 threads.
#
#   benchmarks/model/run.sh [BUILD_DIR] [OUT_DIR]     defaults: build-model, build/bench-results
#
# Environment: MODELS (checkpoint dir, default build/bench-models), THREADS (2), REPEATS (3), STEPS (16),
# MODELS_LIST ("dense-270m moe-700m"), DTYPES ("bf16 fp32"), EXTRA (more bench_model flags).
# Needs: BUILD_DIR/bin/bench_model (cmake --build BUILD_DIR --target bench_model) and .venv with torch and
# transformers for the checkpoint generator.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-model}
OUT=${2:-build/bench-results}
MODELS=${MODELS:-build/bench-models}
THREADS=${THREADS:-2}
REPEATS=${REPEATS:-3}
STEPS=${STEPS:-16}
MODELS_LIST=${MODELS_LIST:-"dense-270m moe-700m"}
DTYPES=${DTYPES:-"bf16 fp32"}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$MODELS" "$OUT"

for m in $MODELS_LIST; do
  "$PY" benchmarks/model/make_bench_checkpoint.py --shape ../shared/bench-models/$m-shape.json \
      --out "$MODELS/$m" --dtype bf16
done

echo "# $(date -u +%FT%TZ) $(uname -n) $(nproc) cpus; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
for m in $MODELS_LIST; do
  for d in $DTYPES; do
    echo "## $m $d"
    "$BUILD/bin/bench_model" --model "$MODELS/$m" --dtype "$d" --threads "$THREADS" --repeats "$REPEATS" \
        --decode-steps "$STEPS" --json "$OUT/$m-$d.json" ${EXTRA:-}
  done
done
