#!/usr/bin/env bash
# Page faults and context switches per decode step of bench_model, by difference: the same run with S1 and S2
# decode steps (everything else equal: load, prefill, the warm-up's 2 steps, one timed repeat), so
# (count(S2) - count(S1)) / (S2 - S1) is the steady-state count of one step. The in-process bandwidth probe
# runs with a 1 MiB buffer (its own page faults, about 256 per probe, would otherwise dominate and vary).
#   benchmarks/attention/faults.sh BUILD_DIR MODEL BATCH [CONTEXT] [S1] [S2]     (MODEL under $MODELS)
set -euo pipefail
B=$1; M=$2; N=$3; CTX=${4:-64}; S1=${5:-4}; S2=${6:-20}
MODELS=${MODELS:-/work/main/build/bench-models}
count() {
  perf stat -x, -e page-faults,context-switches -- "$B/bin/bench_model" --model "$MODELS/$M" --dtype bf16 --threads 2 \
    --prompts 16 --batches "$N" --context "$CTX" --decode-steps "$1" --repeats 1 --membw-bytes 1048576 \
    2>&1 >/dev/null | grep -E 'page-faults|context-switches' | cut -d, -f1 | tr '\n' ' '
}
read -r f1 c1 <<<"$(count "$S1")"
read -r f2 c2 <<<"$(count "$S2")"
steps=$((S2 - S1))
echo "$M batch $N context $CTX: page faults per step $(( (f2 - f1) / steps )), context switches per step $(( (c2 - c1) / steps )) (S=$S1: $f1 / $c1, S=$S2: $f2 / $c2)"
