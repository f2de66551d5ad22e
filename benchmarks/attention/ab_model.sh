#!/usr/bin/env bash
# A B A B of bench_model: decode at batch 16 and 64 over a shared 512-token context (dense-270m, moe-700m),
# and moe-700m's 512-token prefill in chunks of 128 (start_pos > 0 for 3 of 4 chunks) and in one chunk.
#   benchmarks/attention/ab_model.sh A_BENCH_MODEL B_BENCH_MODEL OUT [ROUNDS]     (from the repository root; checkpoints
#   under build/bench-models, see benchmarks/model/run.sh)
set -euo pipefail
A=$1; B=$2; OUT=$3; ROUNDS=${4:-2}
mkdir -p "$OUT"
lscpu | grep 'Model name' | tee "$OUT/machine.txt"
for r in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    bin=$A; [ "$side" = B ] && bin=$B
    for m in dense-270m moe-700m; do
      echo "# round $r $side $m decode $(date -u +%T) loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
      "$bin" --model build/bench-models/$m --dtype bf16 --threads 2 --prompts "" --batches 16,64 --context 512 \
          --share-context 1 --decode-steps 8 --repeats 2 --membw-bytes 67108864 \
          --json "$OUT/$side-$r-$m-decode.json" 2>/dev/null | grep -E "decode batch|loadavg"
    done
    echo "# round $r $side moe-700m prefill $(date -u +%T) loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
    "$bin" --model build/bench-models/moe-700m --dtype bf16 --threads 2 --prompts 512 --batches "" \
        --prefill-chunk 128 --repeats 1 --membw-bytes 67108864 --json "$OUT/$side-$r-moe-chunk128.json" 2>/dev/null \
        | grep -E "prefill|loadavg"
    "$bin" --model build/bench-models/moe-700m --dtype bf16 --threads 2 --prompts 512 --batches "" \
        --repeats 1 --membw-bytes 67108864 --json "$OUT/$side-$r-moe-whole.json" 2>/dev/null | grep -E "prefill|loadavg"
  done
done
