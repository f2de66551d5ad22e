#!/usr/bin/env bash
# inferd against llama.cpp on the same bench checkpoint (dense-270m or moe-700m, bf16, 2 threads), the two
# sides alternating A B A B ... so that the machine's drift hits both; medians over rounds and ratios
# inferd / llama.cpp (summarize_llama_vs_inferd.py).
#
#   benchmarks/peers/llama_vs_inferd.sh [BUILD_DIR] [LLAMA_PREFIX] [ROUNDS] [OUT]
#     defaults: build, build/peers/llama.cpp, 4, build/peers/results
#
# Phase "engine" (each round: bench_membw, llama.cpp, inferd, bench_membw):
#   llama.cpp: llama-bench prefill (-p 128,512 -n 0) and batch-1 decode (-p 0 -n STEPS -d CONTEXT),
#              llama-batched-bench decode at 4,16,64 sequences (-npp CONTEXT -ntg STEPS), all with -t THREADS and
#              memory mapping off (-lm none: this llama.cpp's replacement for -mmp 0 / --no-mmap);
#   inferd:    bench_model --prompts 128,512 --batches 1,4,16,64 --context CONTEXT --decode-steps STEPS.
# Phase "serving" (each round, each concurrency: llama-server then inferd, the order flipping every round):
#   serve_client.py, closed loop, streamed, PROMPT prompt tokens and GEN generated tokens (greedy, EOS
#   ignored, every prompt different), against llama-server's /completion and inferd's GenerateStream over
#   gRPC; both servers up for the whole phase, one serving at a time.
#
# Environment: PHASES ("engine serving"), MODEL (dense-270m), MODELS (build/bench-models), THREADS (2),
# STEPS (16), CONTEXT (64: tokens per sequence before the timed decode steps), REPEATS (3: llama-bench -r and bench_model --repeats within a round; batch 1 takes at least 5),
# FIRST_ROUND (1: a larger value resumes an interrupted engine phase, keeping the earlier rounds' files),
# SERVE_ROUNDS (ROUNDS), CONC (1,4,16), DURATION (20 s per point), WARMUP (3 s), PROMPT (128), GEN (32), NICE (0),
# INFERD_OMP_WAIT_POLICY (PASSIVE: OMP_WAIT_POLICY for inferd's processes only, as scripts/run.sh sets it).
# Prerequisites: cmake --build BUILD_DIR --target bench_model bench_membw inferd inferctl; the llama.cpp
# tools from benchmarks/peers/llama_cpp/build.sh LLAMA_PREFIX; the project .venv (scripts/setup.sh) with
# scripts/requirements-peers.txt (build.sh installs it). Needs about 3 GB of free disk under MODELS.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
LLAMA=${2:-build/peers/llama.cpp}
ROUNDS=${3:-4}
OUT=${4:-build/peers/results}
MODEL=${MODEL:-dense-270m}
MODELS=${MODELS:-build/bench-models}
THREADS=${THREADS:-2}
STEPS=${STEPS:-16}
CONTEXT=${CONTEXT:-64}
REPEATS=${REPEATS:-3}
FIRST_ROUND=${FIRST_ROUND:-1}
PHASES=${PHASES:-"engine serving"}
SERVE_ROUNDS=${SERVE_ROUNDS:-$ROUNDS}
CONC=${CONC:-1,4,16}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
PROMPT=${PROMPT:-128}
GEN=${GEN:-32}
PY=${PYTHON:-.venv/bin/python}
RUN="nice -n ${NICE:-0}"
# inferd's side runs as scripts/run.sh starts the daemon (libgomp's workers passive; llama.cpp keeps its default).
RUN_INFERD="env OMP_WAIT_POLICY=${INFERD_OMP_WAIT_POLICY:-PASSIVE} $RUN"
CKPT=$MODELS/$MODEL
GGUF=$MODELS/$MODEL-bf16.gguf
NEED=("$BUILD/bin/bench_membw" "$LLAMA/bin/llama-bench")
[[ " $PHASES " == *" engine "* ]] && NEED+=("$BUILD/bin/bench_model" "$LLAMA/bin/llama-batched-bench")
[[ " $PHASES " == *" serving "* ]] && NEED+=("$BUILD/bin/inferd" "$BUILD/bin/inferctl" "$LLAMA/bin/llama-server")
for b in "${NEED[@]}"; do
  [[ -x $b ]] || { echo "llama_vs_inferd.sh: $b missing (see the prerequisites in this script's header)" >&2; exit 2; }
done
mkdir -p "$MODELS" "$OUT"
(( FIRST_ROUND > 1 )) || : > "$OUT/machine.txt"

# Checkpoint, tokenizer (the converter needs one) and the GGUF made by llama.cpp's own converter.
"$PY" benchmarks/model/make_bench_checkpoint.py --shape "../shared/bench-models/$MODEL-shape.json" --out "$CKPT" --dtype bf16
[[ -f $CKPT/tokenizer.json ]] || "$PY" benchmarks/peers/llama_cpp/make_bench_tokenizer.py "$CKPT"
if [[ ! -f $GGUF || $GGUF -ot $CKPT/model.safetensors ]]; then
  "$PY" benchmarks/peers/llama_cpp/convert_bench.py "$LLAMA/src" "$CKPT" --outtype bf16 --outfile "$GGUF.tmp" > "$OUT/convert.log" 2>&1 \
    || { tail -20 "$OUT/convert.log" >&2; exit 1; }
  mv "$GGUF.tmp" "$GGUF"
fi

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
membw() {  # prints "one_thread_median threads_median" (GB/s), bench_membw's 1 GiB read, 10 passes each
  local one two
  one=$("$BUILD/bin/bench_membw" --threads 1 --iters 10 | sed -n 's/.*median \([0-9.]*\) GB.*/\1/p')
  two=$("$BUILD/bin/bench_membw" --threads "$THREADS" --iters 10 | sed -n 's/.*median \([0-9.]*\) GB.*/\1/p')
  echo "$one $two"
}
{
  echo "date_utc $(date -u +%FT%TZ)"
  echo "cpu $(lscpu | sed -n 's/^Model name: *//p')"
  echo "cores $(nproc)"
  echo "inferd_commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include kernels || echo '+dirty')"
  echo "llama_cpp $(head -1 "$LLAMA/VERSION" 2>/dev/null) / $("$LLAMA/bin/llama-bench" --version 2>&1 | grep -m1 -i version)"
  echo "model $MODEL bf16, threads $THREADS, engine rounds $ROUNDS (context $CONTEXT, steps $STEPS, repeats $REPEATS), serving rounds $SERVE_ROUNDS (concurrency $CONC, $DURATION s, prompt $PROMPT, generated $GEN), phases $PHASES"
  echo "loadavg_start $(loadavg)"
} >> "$OUT/machine.txt"
cat "$OUT/machine.txt"

if [[ " $PHASES " == *" engine "* ]]; then
  for r in $(seq "$FIRST_ROUND" "$ROUNDS"); do
    echo "== engine round $r/$ROUNDS, loadavg $(loadavg)"
    echo "$(loadavg) $(membw)" > "$OUT/engine-r$r-before.txt"
    $RUN "$LLAMA/bin/llama-bench" -m "$GGUF" -t "$THREADS" -lm none -p 128,512 -n 0 -r "$REPEATS" -o json \
      > "$OUT/engine-r$r-llama-pp.json" 2> "$OUT/engine-r$r-llama.log"
    $RUN "$LLAMA/bin/llama-bench" -m "$GGUF" -t "$THREADS" -lm none -p 0 -n "$STEPS" -d "$CONTEXT" -r "$((REPEATS > 5 ? REPEATS : 5))" -o json \
      > "$OUT/engine-r$r-llama-tg.json" 2>> "$OUT/engine-r$r-llama.log"
    $RUN "$LLAMA/bin/llama-batched-bench" -m "$GGUF" -t "$THREADS" -tb "$THREADS" -lm none -c $((64 * (CONTEXT + STEPS) + 512)) \
      -b 2048 -ub 512 -npp "$CONTEXT" -ntg "$STEPS" -npl 4,16,64 --output-format jsonl 2>> "$OUT/engine-r$r-llama.log" \
      | grep '^{' > "$OUT/engine-r$r-llama-batched.jsonl"
    $RUN_INFERD "$BUILD/bin/bench_model" --model "$CKPT" --dtype bf16 --threads "$THREADS" --prompts 128,512 \
      --batches 1,4,16,64 --context "$CONTEXT" --decode-steps "$STEPS" --repeats "$REPEATS" --json "$OUT/engine-r$r-inferd.json" \
      > "$OUT/engine-r$r-inferd.log" 2>&1
    echo "$(loadavg) $(membw)" > "$OUT/engine-r$r-after.txt"
  done
fi
if [[ " $PHASES " == *" serving "* ]]; then
  WORK=$(mktemp -d /tmp/inferd-llama-peers-XXXXXX)
  PIDS=()
  trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  MAXC=$(tr ',' '\n' <<< "$CONC" | sort -n | tail -1)
  LPORT=$(free_port); IPORT=$(free_port)
  VOCAB=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$CKPT/config.json")
  cat > "$WORK/inferd.yaml" <<YAML
server: {grpc_address: "127.0.0.1:$IPORT"}
metrics: {enabled: false}
models:
  - {name: default, path: $(realpath "$CKPT"), dtype: bf16, num_threads: $THREADS, scheduler: {realtime_deadline_ms: 600000}}
YAML
  $RUN_INFERD "$BUILD/bin/inferd" -c "$WORK/inferd.yaml" --log-level warn > "$OUT/serving-inferd.log" 2>&1 & PIDS+=($!)
  # One slot per client, each with room for PROMPT + GEN tokens; the default batch sizes.
  $RUN "$LLAMA/bin/llama-server" -m "$GGUF" --host 127.0.0.1 --port "$LPORT" -t "$THREADS" -tb "$THREADS" \
    -lm none -np "$MAXC" -c $((MAXC * (PROMPT + GEN + 32))) > "$OUT/serving-llama.log" 2>&1 & PIDS+=($!)
  # Both servers are ready before the first point (inferd's warm-up takes minutes on a loaded 2-core machine).
  deadline=$((SECONDS + 900))
  until "$BUILD/bin/inferctl" health --address "127.0.0.1:$IPORT" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || { echo "inferd not serving; see $OUT/serving-inferd.log" >&2; exit 1; }; sleep 1
  done
  until curl -sf "http://127.0.0.1:$LPORT/health" >/dev/null; do
    (( SECONDS < deadline )) || { echo "llama-server not ready; see $OUT/serving-llama.log" >&2; exit 1; }; sleep 1
  done
  for r in $(seq "$SERVE_ROUNDS"); do
    order="llama inferd"
    (( r % 2 == 0 )) && order="inferd llama"
    for c in ${CONC//,/ }; do
      for sys in $order; do
        port=$LPORT; [[ $sys == inferd ]] && port=$IPORT
        echo "== serving round $r/$SERVE_ROUNDS concurrency $c $sys, loadavg $(loadavg)"
        echo "$(loadavg) $(membw)" > "$OUT/serving-$sys-c$c-r$r-before.txt"
        $RUN "$PY" benchmarks/peers/serve_client.py --backend "$sys" --target "127.0.0.1:$port" --concurrency "$c" \
          --duration "$DURATION" --warmup "$WARMUP" --prompt-tokens "$PROMPT" --max-tokens "$GEN" --vocab "$VOCAB" \
          --seed "$r" --out "$OUT/serving-$sys-c$c-r$r.json" > /dev/null
      done
    done
  done
fi

echo "loadavg_end $(loadavg)" >> "$OUT/machine.txt"
"$PY" benchmarks/peers/summarize_llama_vs_inferd.py "$OUT" | tee "$OUT/summary.md"
