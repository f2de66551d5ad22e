#!/usr/bin/env bash
# Serving benchmarks (engine + real model, bf16, 2 threads): decode throughput vs concurrency on dense-270m and
# moe-700m, then Recommend latency alone and under a saturating Generate background on dense-270m.
# Usage: benchmarks/serving/run.sh [BUILD_DIR]
#   BUILD_DIR defaults to build; it must contain bin/bench_serving
#   (cmake --build BUILD_DIR --target bench_serving). Checkpoints are generated, outside git, into
#   BUILD_DIR/bench-models/ when missing (a rerun is a no-op). JSON results go to BUILD_DIR/bench-results/.
# About 13 minutes on the 2-core development machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
py="${INFERD_PYTHON:-$root/.venv/bin/python}"
shapes="$root/../shared/bench-models"
models="$build/bench-models"
results="$build/bench-results"
bench="$build/bin/bench_serving"
mkdir -p "$models" "$results"
[[ -x "$bench" ]] || { echo "missing $bench: cmake --build $build --target bench_serving" >&2; exit 1; }

for m in dense-270m moe-700m; do
  "$py" "$root/benchmarks/model/make_bench_checkpoint.py" --shape "$shapes/$m-shape.json" --out "$models/$m" --dtype bf16
done

echo "== machine =="
nproc; uptime

for m in dense-270m moe-700m; do
  echo "== throughput: $m =="
  "$bench" --model "$models/$m" --mode throughput --dtype bf16 --threads 2 --repeats 3 \
    --concurrency 1,4,16,64 --prompt-len 32 --gen-tokens 16 --json "$results/throughput-$m.json"
done

echo "== recommend latency: dense-270m =="
"$bench" --model "$models/dense-270m" --mode latency --dtype bf16 --threads 2 --repeats 3 \
  --context 64 --candidates 8,16 --cand-len 4,8 --interval-ms 2000 --count 15 --warmup 2 \
  --bg-streams 24 --bg-prompt 128 --bg-tokens 64 --max-running 16 --step-tokens 256 \
  --complex-max-wait-ms 5000 --relaxed-max-wait-ms 120000 --json "$results/latency-dense-270m.json"
echo "== done; machine =="
uptime
