#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite, then the sanitizer and fuzz builds of the torch-free targets
# (scripts/sanitize.sh: ASan+UBSan with the fuzz targets, and TSan; docs/hardening.md has the timings);
# INFERD_RUN_SANITIZERS=0 skips those. Extra arguments go to every ctest run, e.g. scripts/test.sh -L foundation
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Tests that need a GPU report themselves as skipped on machines without one.
ctest --test-dir build --output-on-failure --timeout 900 -j"$(nproc)" "$@"
if [ "${INFERD_RUN_SANITIZERS:-1}" != 0 ]; then
  scripts/sanitize.sh "$@"
fi
