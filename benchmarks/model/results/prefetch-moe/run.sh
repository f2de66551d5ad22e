#!/usr/bin/env bash
# The loop behind abc/, pf-main/ and pf-main2/ (RESULTS.md, "prefetch distance"): per round and model, each side
# once, the order rotating by one side a round; bench_membw (2 threads) before each model's round.
#
#   run.sh OUT "SIDES" "MODELS" ROUNDS        BATCHES (1,4,16), REPEATS (5)
#   abc:      run.sh abc "base main llama" "moe-700m dense-270m" 3
#   pf-main:  run.sh pf-main "base pf main" moe-700m 3
#   pf-main2: BATCHES=1,4 REPEATS=7 run.sh pf-main2 "pf main" moe-700m 5
#
# Run from the repository root of /work/main. A side other than llama is the git worktree /work/SIDE with
# `cmake --build build --target bench_model` done: base = main at dabfae0, pf = dabfae0 plus kernels/cpu/gemv.cpp
# of the commit that adds this folder, main = that commit. llama: llama-bench from
# benchmarks/peers/llama_cpp/build.sh /work/peers/llama.cpp. Checkpoints and GGUFs in build/bench-models from
# benchmarks/peers/llama_vs_inferd.sh. Summary: python3 summary.py OUT.
set -u
OUT=$1
read -r -a SIDES <<< "$2"
MODELS_LIST=$3
ROUNDS=$4
M=build/bench-models
L=/work/peers/llama.cpp/bin
mkdir -p "$OUT"
la() { cut -d' ' -f1-3 /proc/loadavg; }
for r in $(seq 1 "$ROUNDS"); do
  for m in $MODELS_LIST; do
    echo "# round $r $m $(date -u +%T) membw2 $(build/bin/bench_membw --threads 2 --iters 10 | sed -n 's/.*median \([0-9.]*\) GB.*/\1/p') loadavg $(la)" | tee -a "$OUT/log.txt"
    for i in $(seq 0 $((${#SIDES[@]} - 1))); do
      s=${SIDES[$(((i + r - 1) % ${#SIDES[@]}))]}
      if [ "$s" = llama ]; then
        $L/llama-bench -m $M/$m-bf16.gguf -t 2 -lm none -p 0 -n 32 -d 64 -r 5 -o json > "$OUT/$m-llama-$r.json" 2>> "$OUT/llama.log"
      else
        OMP_WAIT_POLICY=PASSIVE "/work/$s/build/bin/bench_model" --model $M/$m --dtype bf16 --threads 2 --prompts 16 \
          --batches "${BATCHES:-1,4,16}" --context 64 --decode-steps 32 --repeats "${REPEATS:-5}" \
          --json "$OUT/$m-$s-$r.json" > "$OUT/$m-$s-$r.log" 2>&1
      fi
      echo "  $s done $(date -u +%T) loadavg $(la)" | tee -a "$OUT/log.txt"
    done
  done
done
