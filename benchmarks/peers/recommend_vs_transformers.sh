#!/usr/bin/env bash
# Recommend through gRPC: inferd against a transformers scoring service (transformers_recommend.py, per
# candidate and batched), same checkpoint (BUILD/e2e-model, bf16, 2 threads), same loadgen scenario
# (recommend_throughput.yaml), closed loop at each concurrency, the three servers alternating per round.
# Usage: benchmarks/peers/recommend_vs_transformers.sh [BUILD_DIR] [CONCURRENCIES] [DURATION_S] [ROUNDS] [OUT]
# NICE=-15 runs servers and loadgen ahead of other work sharing the cores.
set -euo pipefail
BUILD=${1:-build}
CONC=${2:-1,4,8}
DURATION=${3:-20}
ROUNDS=${4:-2}
OUT=${5:-benchmarks/peers/results}
RUN="nice -n ${NICE:-0}"
HERE=$(dirname "$0")
MODEL=$(realpath "$BUILD/e2e-model")
WORK=$(mktemp -d /tmp/inferd-peers-XXXXXX)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A PORT
PORT[inferd]=$(free_port); PORT[tf_batched]=$(free_port); PORT[tf_per_candidate]=$(free_port)
cat > "$WORK/inferd.yaml" <<YAML
server: {grpc_address: "127.0.0.1:${PORT[inferd]}"}
metrics: {enabled: false}
models:
  - {name: default, path: $MODEL, num_threads: 2, scheduler: {realtime_deadline_ms: 600000}}
YAML
$RUN "$BUILD/bin/inferd" -c "$WORK/inferd.yaml" --log-level warn > "$WORK/inferd.log" 2>&1 & PIDS+=($!)
for mode in batched per_candidate; do
  $RUN .venv/bin/python "$HERE/transformers_recommend.py" --model "$MODEL" --port "${PORT[tf_$mode]}" \
    --proto-dir proto --mode $mode --threads 2 > "$WORK/tf_$mode.log" 2>&1 & PIDS+=($!)
done
for _ in $(seq 600); do "$BUILD/bin/inferctl" health --address "127.0.0.1:${PORT[inferd]}" >/dev/null 2>&1 && break; sleep 0.2; done
for m in batched per_candidate; do
  for _ in $(seq 600); do grep -q "on 127.0.0.1" "$WORK/tf_$m.log" && break; sleep 0.2; done
done
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD), NICE=${NICE:-0}"
for round in $(seq "$ROUNDS"); do
  for c in ${CONC//,/ }; do
    for sys in inferd tf_batched tf_per_candidate; do
      $RUN "$BUILD/bin/loadgen" --quiet --target "127.0.0.1:${PORT[$sys]}" \
        --scenario benchmarks/loadgen/scenarios/recommend_throughput.yaml --concurrency "$c" \
        --duration "$DURATION" --warmup 3 --out "$OUT/$sys-c$c-r$round.json"
    done
  done
done
echo "# loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
.venv/bin/python - "$OUT" "$ROUNDS" "$CONC" <<'PY'
import json, statistics, sys
out, rounds, conc = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
def m(sys_, c, *path):
    vals = []
    for r in range(1, rounds + 1):
        v = json.load(open(f"{out}/{sys_}-c{c}-r{r}.json"))["runs"][0]["classes"]["recommend"]
        for p in path:
            v = v[p]
        vals.append(v)
    return statistics.median(vals)
print(f"Medians over {rounds} rounds (the three servers alternating); latency in ms.\n")
print("| concurrency | inferd rps | inferd p50 | inferd p99 | tf batched rps | p50 | p99 | tf per-candidate rps | p50 | p99 | **inferd / tf batched rps** | **inferd / tf per-candidate rps** |")
print("| ---: " * 12 + "|")
for c in conc:
    i, b, p = (m(s, c, "requests_per_s") for s in ("inferd", "tf_batched", "tf_per_candidate"))
    row = [c, f"{i:.2f}", f"{m('inferd', c, 'latency_ms', 'p50'):.0f}", f"{m('inferd', c, 'latency_ms', 'p99'):.0f}",
           f"{b:.2f}", f"{m('tf_batched', c, 'latency_ms', 'p50'):.0f}", f"{m('tf_batched', c, 'latency_ms', 'p99'):.0f}",
           f"{p:.2f}", f"{m('tf_per_candidate', c, 'latency_ms', 'p50'):.0f}", f"{m('tf_per_candidate', c, 'latency_ms', 'p99'):.0f}",
           f"**{i / b:.2f}**", f"**{i / p:.2f}**"]
    print("| " + " | ".join(map(str, row)) + " |")
PY
