#!/usr/bin/env bash
# Edge/central latency benchmarks (see RESULTS.md): starts a central and an edge inferd on loopback over the
# default model (BUILD_DIR/e2e-model), runs bench_edge's three modes, kills the central daemon for the
# "down" run. Usage: benchmarks/edge/run.sh [BUILD_DIR] [COUNT]
set -euo pipefail
BUILD=${1:-build}
COUNT=${2:-1000}
BIN=$BUILD/bin
MODEL=$(realpath "$BUILD/e2e-model")
WORK=$(mktemp -d /tmp/inferd-bench-edge-XXXXXX)
trap 'kill $EDGE_PID $CENTRAL_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CP=$(free_port); EP=$(free_port)
cat > "$WORK/central.yaml" <<YAML
server: {grpc_address: "127.0.0.1:$CP"}
metrics: {enabled: false}
models:
  - {name: full, path: $MODEL, classes: [realtime, complex]}
YAML
cat > "$WORK/edge.yaml" <<YAML
server: {grpc_address: "127.0.0.1:$EP"}
metrics: {enabled: false}
models:
  - {name: light, path: $MODEL, classes: [realtime]}
upstreams:
  - {name: central, targets: ["127.0.0.1:$CP"], classes: [complex], models: [full]}
cache: {enabled: true, ttl_ms: 600000}
YAML
wait_serving() { for _ in $(seq 600); do "$BIN/inferctl" health --address "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
"$BIN/inferd" -c "$WORK/central.yaml" --log-level warn > "$WORK/central.log" 2>&1 & CENTRAL_PID=$!
wait_serving "127.0.0.1:$CP"
"$BIN/inferd" -c "$WORK/edge.yaml" --log-level warn > "$WORK/edge.log" 2>&1 & EDGE_PID=$!
wait_serving "127.0.0.1:$EP"
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN/bench_edge" --mode hop --edge "127.0.0.1:$EP" --central "127.0.0.1:$CP" --count "$COUNT"
"$BIN/bench_edge" --mode cache --edge "127.0.0.1:$EP" --count "$COUNT"
"$BIN/bench_edge" --mode realtime --edge "127.0.0.1:$EP" --count "$((COUNT / 2))" --label up
kill -9 $CENTRAL_PID; wait $CENTRAL_PID 2>/dev/null || true
"$BIN/bench_edge" --mode realtime --edge "127.0.0.1:$EP" --count "$((COUNT / 2))" --label down
echo "# loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
