#!/usr/bin/env bash
# HTTP against gRPC (see RESULTS.md): starts one inferd with both front ends on free loopback ports over the
# default model (BUILD_DIR/e2e-model) and runs bench_http's two modes.
# Usage: benchmarks/http/run.sh [BUILD_DIR] [COUNT] [ROUNDS]
set -euo pipefail
BUILD=${1:-build}
COUNT=${2:-1000}
ROUNDS=${3:-3}
BIN=$BUILD/bin
MODEL=$(realpath "$BUILD/e2e-model")
WORK=$(mktemp -d /tmp/inferd-bench-http-XXXXXX)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GP=$(free_port); HP=$(free_port)
cat > "$WORK/inferd.yaml" <<YAML
server: {grpc_address: "127.0.0.1:$GP"}
http: {enabled: true, address: "127.0.0.1:$HP"}
metrics: {enabled: false}
models:
  - {name: m, path: $MODEL, classes: [realtime, complex], scheduler: {realtime_deadline_ms: 10000}}
YAML
"$BIN/inferd" -c "$WORK/inferd.yaml" --log-level warn > "$WORK/inferd.log" 2>&1 & PID=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$HP/ready" >/dev/null && break; sleep 0.2; done
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN/bench_http" --mode overhead --grpc "127.0.0.1:$GP" --http-port "$HP" --count "$COUNT"
"$BIN/bench_http" --mode stream --grpc "127.0.0.1:$GP" --http-port "$HP" --streams 16 --tokens 64 --rounds "$ROUNDS"
echo "# loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
