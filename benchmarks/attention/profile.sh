#!/usr/bin/env bash
# perf profile of bench_model decode at BATCHES (default 16,64), CONTEXT tokens (default 512; a shared prefix), bf16,
# 2 threads;
# the recording switches files once the context is prefilled, so the second file holds decode steps only.
#   benchmarks/attention/profile.sh BUILD_DIR OUT_PREFIX MODEL     (from the repository root; MODEL under build/bench-models)
# then: .venv/bin/python benchmarks/attention/summarize.py $(ls -t OUT_PREFIX.perf.data.* | head -1)
set -euo pipefail
B=$1; OUT=$2; M=$3
BATCHES=${BATCHES:-16,64}; CONTEXT=${CONTEXT:-512}; MODELS=${MODELS:-build/bench-models}
rm -f "$OUT".perf.data*
perf record -F 250 -g --switch-output -o "$OUT.perf.data" -- "$B/bin/bench_model" --model $MODELS/$M \
  --dtype bf16 --threads 2 --prompts 16 --batches $BATCHES --context $CONTEXT --share-context 1 --decode-steps 8 \
  --repeats 1 --membw-bytes 67108864 > "$OUT.txt" 2> "$OUT.err" &
PERF=$!
until grep -q "shared context prefilled" "$OUT.err"; do sleep 0.5; done
kill -USR2 $PERF
wait $PERF || true
LAST=$(ls -t "$OUT".perf.data.* | head -1)
perf report -i "$LAST" --no-children --sort symbol --percent-limit 0.3 --stdio 2>/dev/null | grep "%" | head -60 > "$OUT.report.txt"
