#!/usr/bin/env bash
# Sets up, builds and starts inferd on its default model and config (configs/inferd.yaml).
# Extra arguments go to inferd, e.g. scripts/run.sh --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# libgomp (libtorch's OpenMP) reads its wait policy once, at load: passive workers sleep after a parallel region
# instead of spinning on the core the ops pool's GEMM needs (prefill 128 1.30x; benchmarks/model/RESULTS.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
exec build/bin/inferd --config configs/inferd.yaml "$@"
