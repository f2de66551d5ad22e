#!/usr/bin/env bash
# Sets up, builds and starts inferd on its default model and config (configs/inferd.yaml).
# Extra arguments go to inferd, e.g. scripts/run.sh --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/bin/inferd --config configs/inferd.yaml "$@"
