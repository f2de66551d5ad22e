#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite. Extra arguments go to ctest, e.g. scripts/test.sh -L foundation
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Tests that need a GPU report themselves as skipped on machines without one.
ctest --test-dir build --output-on-failure --timeout 900 -j"$(nproc)" "$@"
