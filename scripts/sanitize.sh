#!/usr/bin/env bash
# Sanitizer and fuzz builds of every target that does not need libtorch, built and tested (docs/hardening.md):
#   build-asan: clang, ASan + UBSan (any finding aborts), libFuzzer targets; ctest runs the unit tests and
#               each fuzz target for INFERD_FUZZ_SECONDS (default 10) from its seed corpus.
#   build-tsan: clang, ThreadSanitizer (suppressions for Debian's uninstrumented gRPC in scripts/tsan.supp);
#               ctest runs the unit tests and the TSan canary.
# Called by scripts/test.sh after the main suite unless INFERD_RUN_SANITIZERS=0. Extra arguments go to ctest.
#   INFERD_SANITIZE_BUILDS  which builds (default "asan tsan")
# Prints each build's configure+build and test wall time and its ccache hits.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
log() { printf '[sanitize %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_BASEDIR=$ROOT
export CCACHE_NOHASHDIR=1
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
COMMON=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
        -DINFERD_WITH_TORCH=OFF -DINFERD_BUILD_BENCHMARKS=OFF)
# Reports go to stderr and fail the test; leaks count in the ASan build.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/scripts/tsan.supp}

# ccache's hits and misses of one build, from its own stats log (the shared cache's counters mix builds).
ccache_summary() {
  command -v ccache >/dev/null && [ -f "$1" ] || { echo "no ccache stats"; return; }
  CCACHE_STATSLOG=$1 ccache --show-log-stats | awk '/^ *(Hits|Misses):/ {printf "%s %s/%s  ", $1, $2, $4}'
}

# The tokenizer's reference comparisons and inferctl are not built here (tests/tokenizer/CMakeLists.txt,
# src/ctl/CMakeLists.txt): nothing in these builds would run them.
for kind in ${INFERD_SANITIZE_BUILDS:-asan tsan}; do
  dir=build-$kind
  case $kind in
    asan) flags=(-DINFERD_SANITIZE=ON -DINFERD_FUZZ=ON "-DINFERD_FUZZ_SECONDS=${INFERD_FUZZ_SECONDS:-10}") ;;
    tsan) flags=(-DINFERD_TSAN=ON) ;;
    *) echo "unknown sanitizer build $kind" >&2; exit 2 ;;
  esac
  stats=$ROOT/$dir/ccache-stats.log
  mkdir -p "$dir"
  rm -f "$stats"
  start=$(date +%s)
  log "configuring and building $dir"
  cmake -S . -B "$dir" "${COMMON[@]}" "${flags[@]}" >/dev/null
  CCACHE_STATSLOG=$stats cmake --build "$dir" -j"$(nproc)"
  built=$(date +%s)
  log "$dir: configure + build $((built - start)) s; ccache: $(ccache_summary "$stats")"
  ctest --test-dir "$dir" --output-on-failure --timeout 900 -j"$(nproc)" "$@"
  log "$dir: build $((built - start)) s, tests $(($(date +%s) - built)) s"
done
