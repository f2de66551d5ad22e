#!/usr/bin/env bash
# Realtime protection benchmarks (issue: realtime protected, not just prioritised). Usage: run.sh [BUILD_DIR]
# Needs the default model (scripts/setup.sh writes models/default). Prints the CPU model and load first.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}
M=models/default
grep -m1 'model name' /proc/cpuinfo; uptime
"$B/bin/bench_sampling" --rows 16 --rounds 9
"$B/bin/bench_serving" --model $M --mode sampling --threads 2 --repeats 5 --concurrency 16 --prompt-len 32 \
  --gen-tokens 32
"$B/bin/bench_serving" --model $M --mode latency --threads 2 --repeats 3 --context 24 --candidates 12,12 \
  --cand-len 2,4 --interval-ms 800 --count 25 --warmup 3 --bg-streams 8 --bg-prompt 64 --bg-tokens 64 \
  --bg-temperature 0.7 --max-running 64 --step-tokens 512 --complex-max-wait-ms 2000 --deadline-ms 600 \
  --scenarios alone/realtime,load/realtime
"$B/bin/bench_serving" --model $M --mode overload --threads 2 --context 24 --candidates 12,12 --cand-len 2,4 \
  --bg-prompt 64 --bg-tokens 32 --max-running 64 --step-tokens 512 --complex-max-wait-ms 2000 --deadline-ms 600 \
  --overload-factor 2 --overload-seconds 30
uptime
