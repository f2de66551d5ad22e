#!/usr/bin/env bash
# Page cache of the checkpoint in 4 KiB folios (small: dropped, then faulted page by page with MADV_RANDOM)
# against 2 MiB folios (huge: dropped, then faulted with MADV_HUGEPAGE), then the same bench_model run.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../../../.."
OUT=${1:-build/page-cache-folios}
T=$OUT/tools; mkdir -p "$T"
for t in hugeread smallread; do gcc -O2 -o "$T/$t" "$HERE/$t.c"; done
drop() { python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)" "$1"; }
for r in 1 2 3; do
  for m in dense-270m moe-700m; do
    f=build/bench-models/$m/model.safetensors
    sides="small huge"; [ $((r % 2)) = 0 ] && sides="huge small"
    for s in $sides; do
      drop $f
      if [ $s = huge ]; then "$T"/hugeread $f > $OUT/$m-$s-$r.cache; else "$T"/smallread $f > /dev/null; "$T"/hugeread $f > $OUT/$m-$s-$r.cache; fi
      OMP_WAIT_POLICY=PASSIVE build/bin/bench_model --model build/bench-models/$m --dtype bf16 --threads 2 --prompts 16 \
        --batches 1,4 --context 64 --decode-steps 32 --repeats 5 --json $OUT/$m-$s-$r.json > $OUT/$m-$s-$r.log 2>&1
      echo "round $r $m $s $(grep FilePmd $OUT/$m-$s-$r.cache) done $(date -u +%T) loadavg $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $OUT/log.txt
    done
  done
done
echo ALLDONE >> $OUT/log.txt
