#!/usr/bin/env bash
# Latency-throughput sweeps through gRPC (see README.md): starts inferd on a free loopback port over
# BUILD/e2e-model (the toy DeepseekV3, bf16, CPU), runs loadgen's open-loop rate sweep for the realtime-only
# and the mixed scenario, alternating the two (A B A B ...), and plots both.
# Usage: benchmarks/loadgen/run.sh [BUILD_DIR] [RATES] [DURATION_S] [ROUNDS] [OUT_DIR]
# NICE=-15 runs the daemon and loadgen at that nice level, ahead of other work sharing the cores.
set -euo pipefail
RUN="nice -n ${NICE:-0}"
BUILD=${1:-build}
RATES=${2:-1,2,3,4}
DURATION=${3:-30}
ROUNDS=${4:-2}
OUT=${5:-benchmarks/loadgen/results}
HERE=$(dirname "$0")
MODEL=$(realpath "$BUILD/e2e-model")
WORK=$(mktemp -d /tmp/inferd-loadgen-XXXXXX)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/inferd.yaml" <<YAML
server: {grpc_address: "127.0.0.1:$PORT"}
metrics: {enabled: false}
models:
  - {name: default, path: $MODEL}
YAML
$RUN "$BUILD/bin/inferd" -c "$WORK/inferd.yaml" --log-level warn > "$WORK/inferd.log" 2>&1 & PID=$!
for _ in $(seq 600); do "$BUILD/bin/inferctl" health --address "127.0.0.1:$PORT" >/dev/null 2>&1 && break; sleep 0.2; done
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD), NICE=${NICE:-0}"
for round in $(seq "$ROUNDS"); do
  for s in realtime mixed; do
    $RUN "$BUILD/bin/loadgen" --quiet --target "127.0.0.1:$PORT" --scenario "$HERE/scenarios/$s.yaml" --rates "$RATES" \
      --duration "$DURATION" --warmup 5 --out "$OUT/$s-$round.json"
  done
done
echo "# loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
.venv/bin/python "$HERE/summarize.py" "$OUT" "$ROUNDS"
.venv/bin/python "$HERE/plot.py" --out "$OUT/curves.png" --labels "realtime alone,mixed" \
  "$OUT/realtime-$ROUNDS.json" "$OUT/mixed-$ROUNDS.json" --title "inferd gRPC, default model, last round"
