#!/usr/bin/env bash
# Edge/central latency benchmarks (see RESULTS.md): starts a central and an edge inferd on loopback over the
# default model (BUILD_DIR/e2e-model), runs bench_edge's three modes, kills the central daemon for the
# "down" run. Usage: benchmarks/edge/run.sh [BUILD_DIR] [COUNT]
# Environment: NICE=-15 runs daemons and client at that nice level (ahead of other work sharing the cores);
# PIN=1 puts the central daemon on CPU 1 and the edge and the client on CPU 0, one engine thread each, so
# that the central daemon's forward passes do not compete with the edge's (the "down vs up" comparison).
# PERF=1 adds perf stat counts per RPC (context switches, migrations, CPU ms) of the edge and the client
# to the cache mode.
set -euo pipefail
BUILD=${1:-build}
COUNT=${2:-1000}
BIN=$BUILD/bin
NICE=${NICE:-0}
PIN=${PIN:-0}
if [ "$PIN" = 1 ]; then
  ON_CENTRAL="taskset -c 1"; ON_EDGE="taskset -c 0"; THREADS=", num_threads: 1"
else
  ON_CENTRAL=""; ON_EDGE=""; THREADS=""
fi
RUN="nice -n $NICE"
MODES=${MODES:-hop cache realtime}  # a subset runs only those
has() { [[ " $MODES " == *" $1 "* ]]; }
MODEL=$(realpath "$BUILD/e2e-model")
WORK=$(mktemp -d /tmp/inferd-bench-edge-XXXXXX)
trap 'kill $EDGE_PID $CENTRAL_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CP=$(free_port); EP=$(free_port)
cat > "$WORK/central.yaml" <<YAML
server: {grpc_address: "127.0.0.1:$CP"}
metrics: {enabled: false}
models:
  - {name: full, path: $MODEL, classes: [realtime, complex], scheduler: {realtime_deadline_ms: 10000}$THREADS}
YAML
cat > "$WORK/edge.yaml" <<YAML
server: {grpc_address: "127.0.0.1:$EP"}
metrics: {enabled: false}
models:
  - {name: light, path: $MODEL, classes: [realtime], scheduler: {realtime_deadline_ms: 10000}$THREADS}
upstreams:
  - {name: central, targets: ["127.0.0.1:$CP"], classes: [complex], models: [full]}
cache: {enabled: true, ttl_ms: 600000}
YAML
wait_serving() { for _ in $(seq 600); do "$BIN/inferctl" health --address "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
$RUN $ON_CENTRAL "$BIN/inferd" -c "$WORK/central.yaml" --log-level warn > "$WORK/central.log" 2>&1 & CENTRAL_PID=$!
wait_serving "127.0.0.1:$CP"
$RUN $ON_EDGE "$BIN/inferd" -c "$WORK/edge.yaml" --log-level warn > "$WORK/edge.log" 2>&1 & EDGE_PID=$!
wait_serving "127.0.0.1:$EP"
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg), NICE=$NICE PIN=$PIN"
has hop && $RUN $ON_EDGE "$BIN/bench_edge" --mode hop --edge "127.0.0.1:$EP" --central "127.0.0.1:$CP" --count "$COUNT"
if has cache; then
  # PERF=1: context switches, migrations and CPU time of the edge daemon and of the client over the whole
  # cache run (2 * (COUNT + 50 warm-up) RPCs: a hit and a bare Feedback each round), from perf stat.
  if [ "${PERF:-0}" = 1 ]; then
    perf stat -x, -e context-switches,cpu-migrations,task-clock -p "$EDGE_PID" -o "$WORK/perf-edge.txt" & PERF_PID=$!
    sleep 0.5
    CLIENT_PERF="perf stat -x, -e context-switches,cpu-migrations,task-clock -o $WORK/perf-client.txt"
  else
    CLIENT_PERF=""
  fi
  $RUN $ON_EDGE $CLIENT_PERF "$BIN/bench_edge" --mode cache --edge "127.0.0.1:$EP" --count "$COUNT"
  if [ "${PERF:-0}" = 1 ]; then
    kill -INT $PERF_PID; wait $PERF_PID || true
    RPCS=$((2 * (COUNT + 50)))
    for side in edge client; do
      awk -F, -v rpcs=$RPCS -v side=$side '$3 ~ /context-switches|cpu-migrations|task-clock/ {
        printf "# perf %s: %s %.4g %s per RPC\n", side, $3, $1 / rpcs, $2 }' "$WORK/perf-$side.txt"
    done
  fi
fi
# ROUNDS alternating up/down rounds (the central daemon restarted for each "up"), COUNT/2 requests each.
if has realtime; then
  for round in $(seq "${ROUNDS:-1}"); do
    if [ "$round" -gt 1 ]; then
      $RUN $ON_CENTRAL "$BIN/inferd" -c "$WORK/central.yaml" --log-level warn >> "$WORK/central.log" 2>&1 & CENTRAL_PID=$!
      wait_serving "127.0.0.1:$CP"
      sleep 3  # the edge's health checks re-admit the replica, the breaker closes on its probe
    fi
    $RUN $ON_EDGE "$BIN/bench_edge" --mode realtime --edge "127.0.0.1:$EP" --count "$((COUNT / 2))" --label up
    kill -9 $CENTRAL_PID; wait $CENTRAL_PID 2>/dev/null || true
    $RUN $ON_EDGE "$BIN/bench_edge" --mode realtime --edge "127.0.0.1:$EP" --count "$((COUNT / 2))" --label down
  done
fi
echo "# loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
