#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for SECONDS each, one after another, and prints a markdown
# table (executions, corpus files and bytes before/after, CPU seconds, crashes) for docs/hardening.md.
#   tools/fuzz_run.sh [SECONDS per target, default 600] [BUILD_DIR, default build-asan] [target ...]
# The corpus grows in BUILD_DIR/fuzz_corpus/<target> (seeded from tests/fuzz/corpus/<target>); crash
# inputs land in BUILD_DIR/fuzz_corpus/crash-<target>-*; logs in BUILD_DIR/fuzz_logs/.
# The tokenizer targets read $INFERD_FUZZ_TOKENIZER_DIR (default ../shared/testdata/deepseek-v3-tokenizer).
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-600}
BUILD=${2:-build-asan}
shift 2 2>/dev/null || shift $#
TARGETS=("$@")
if ((${#TARGETS[@]} == 0)); then
  for f in "$BUILD"/fuzz/fuzz_*; do TARGETS+=("$(basename "$f" | sed 's/^fuzz_//')"); done
fi
mkdir -p "$BUILD/fuzz_logs"
export INFERD_FUZZ_TOKENIZER_DIR=${INFERD_FUZZ_TOKENIZER_DIR:-$(cd .. && pwd)/shared/testdata/deepseek-v3-tokenizer}
corpus_stats() { find "$1" -type f | wc -l | tr -d ' '; du -sb "$1" | cut -f1; }
echo "| target | seconds | executions | exec/s | corpus files before -> after | corpus bytes after | CPU s (user+sys) | peak RSS MB | crashes |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
status=0
for t in "${TARGETS[@]}"; do
  bin="$BUILD/fuzz/fuzz_$t"
  work="$BUILD/fuzz_corpus/$t"
  log="$BUILD/fuzz_logs/$t.log"
  mkdir -p "$work"
  read -r before_files _ < <(corpus_stats "$work" | paste -sd' ')
  /usr/bin/time -f "cpu %U %S" -o "$BUILD/fuzz_logs/$t.time" \
    env ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$BUILD/fuzz_corpus/crash-$t-" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  # libFuzzer merges nothing into the seeds dir; new units are in $work.
  read -r after_files after_bytes < <(corpus_stats "$work" | paste -sd' ')
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  rss=$(awk '/stat::peak_rss_mb/ {print $2}' "$log")
  cpu=$(awk '/^cpu/ {printf "%.0f", $2 + $3}' "$BUILD/fuzz_logs/$t.time")
  crashes=$(find "$BUILD/fuzz_corpus" -maxdepth 1 -name "crash-$t-*" | wc -l | tr -d ' ')
  [ "$rc" -ne 0 ] && status=1
  echo "| $t | $SECONDS_EACH | ${execs:-?} | $(( ${execs:-0} / SECONDS_EACH )) | $before_files -> $after_files | $after_bytes | ${cpu:-?} | ${rss:-?} | $crashes (rc $rc) |"
done
exit $status
