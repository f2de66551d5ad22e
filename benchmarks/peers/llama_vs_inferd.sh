#!/usr/bin/env bash
# Raw engine numbers, inferd against llama.cpp, on the same bench checkpoint (dense-270m, bf16, 2 threads),
# the two sides alternating A B A B ... so that the machine's drift hits both; medians over rounds and
# ratios inferd / llama.cpp (summarize_llama_vs_inferd.py).
#
#   benchmarks/peers/llama_vs_inferd.sh [BUILD_DIR] [LLAMA_PREFIX] [ROUNDS] [OUT]
#     defaults: build, build/peers/llama.cpp, 4, build/peers/results
#
# Each round: bench_membw, llama.cpp, inferd, bench_membw:
#   llama.cpp: llama-bench prefill (-p 128,512 -n 0) and batch-1 decode (-p 0 -n STEPS -d CONTEXT),
#              llama-batched-bench decode at 4,16,64 sequences (-npp CONTEXT -ntg STEPS), all with -t THREADS and
#              memory mapping off (-lm none: this llama.cpp's replacement for -mmp 0 / --no-mmap);
#   inferd:    bench_model --prompts 128,512 --batches 1,4,16,64 --context CONTEXT --decode-steps STEPS.
#
# Environment: MODEL (dense-270m), MODELS (build/bench-models), THREADS (2),
# STEPS (16), CONTEXT (64: tokens per sequence before the timed decode steps), REPEATS (3: llama-bench -r and bench_model --repeats within a round; batch 1 takes at least 5),
# FIRST_ROUND (1: a larger value resumes an interrupted run, keeping the earlier rounds' files), NICE (0).
# Prerequisites: cmake --build BUILD_DIR --target bench_model bench_membw; the llama.cpp
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
PY=${PYTHON:-.venv/bin/python}
RUN="nice -n ${NICE:-0}"
CKPT=$MODELS/$MODEL
GGUF=$MODELS/$MODEL-bf16.gguf
for b in "$BUILD/bin/bench_model" "$BUILD/bin/bench_membw" "$LLAMA/bin/llama-bench" "$LLAMA/bin/llama-batched-bench"; do
  [[ -x $b ]] || { echo "llama_vs_inferd.sh: $b missing (see the prerequisites in this script's header)" >&2; exit 2; }
done
mkdir -p "$MODELS" "$OUT"
(( FIRST_ROUND > 1 )) || : > "$OUT/machine.txt"

# Checkpoint, tokenizer (the converter needs one) and the GGUF made by llama.cpp's own converter.
"$PY" benchmarks/model/make_bench_checkpoint.py --shape "../shared/bench-models/$MODEL-shape.json" --out "$CKPT" --dtype bf16
[[ -f $CKPT/tokenizer.json ]] || "$PY" benchmarks/peers/llama_cpp/make_bench_tokenizer.py "$CKPT"
if [[ ! -f $GGUF || $GGUF -ot $CKPT/model.safetensors ]]; then
  "$PY" "$LLAMA/src/convert_hf_to_gguf.py" "$CKPT" --outtype bf16 --outfile "$GGUF.tmp" > "$OUT/convert.log" 2>&1 \
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
  echo "model $MODEL bf16, threads $THREADS, engine rounds $ROUNDS (context $CONTEXT, steps $STEPS, repeats $REPEATS)"
  echo "loadavg_start $(loadavg)"
} >> "$OUT/machine.txt"
cat "$OUT/machine.txt"

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
    $RUN "$BUILD/bin/bench_model" --model "$CKPT" --dtype bf16 --threads "$THREADS" --prompts 128,512 \
      --batches 1,4,16,64 --context "$CONTEXT" --decode-steps "$STEPS" --repeats "$REPEATS" --json "$OUT/engine-r$r-inferd.json" \
      > "$OUT/engine-r$r-inferd.log" 2>&1
    echo "$(loadavg) $(membw)" > "$OUT/engine-r$r-after.txt"
done

echo "loadavg_end $(loadavg)" >> "$OUT/machine.txt"
"$PY" benchmarks/peers/summarize_llama_vs_inferd.py "$OUT" | tee "$OUT/summary.md"
