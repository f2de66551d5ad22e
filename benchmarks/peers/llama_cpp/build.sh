#!/usr/bin/env bash
# Builds llama.cpp's llama-bench, llama-batched-bench and llama-server from the llama.cpp that PyPI's
# llama-cpp-python source distribution vendors (CPU only, -march=native, Release, no CUDA, no curl, no
# OpenSSL, no web UI download), and installs the Python requirements of its convert_hf_to_gguf.py
# (scripts/requirements-peers.txt) into the project .venv.
#
#   benchmarks/peers/llama_cpp/build.sh [PREFIX]      PREFIX defaults to build/peers/llama.cpp
#
# Result under PREFIX:
#   bin/llama-bench bin/llama-batched-bench bin/llama-server    (statically linked against ggml/llama)
#   src/                       the vendored llama.cpp tree (convert_hf_to_gguf.py, gguf-py/)
#   VERSION                    llama-cpp-python version, llama.cpp build number and commit
#
# Prerequisites: cmake >= 3.14, ninja, a C++17 compiler, ccache (optional), network access to PyPI, and
# the project .venv (scripts/setup.sh). Environment: NICE (default 5), JOBS (default 2), PYTHON (default
# .venv/bin/python). Not part of CI: no ctest test needs llama.cpp.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
PREFIX=${1:-$ROOT/build/peers/llama.cpp}
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
NICE=${NICE:-5}
JOBS=${JOBS:-2}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}

WORK=$PREFIX/work
mkdir -p "$WORK"
SDIST=$WORK/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz
if [[ ! -f $SDIST ]]; then
  "$PYTHON" -m pip download --no-binary :all: --no-deps \
    "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$WORK"
fi
if [[ ! -d $PREFIX/src ]]; then
  rm -rf "$WORK/unpack"
  mkdir -p "$WORK/unpack"
  tar -xzf "$SDIST" -C "$WORK/unpack"
  mv "$WORK/unpack/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp" "$PREFIX/src"
  rm -rf "$WORK/unpack"
fi

# One patch, for the bench shape moe-700m: the vendored loader reads a DeepseekV2's q_lora_rank key unless its
# layer count is one of the released Lite models' (26, 27, 48), so a 12-layer checkpoint without query LoRA
# (q_lora_rank null: the converter writes no key) fails with "key not found ... q_lora_rank". Reading the key
# as optional leaves n_lora_q = 0, which the vendored tensor creation and graph already treat as "no query
# LoRA" (wq instead of wq_a / wq_b). Released checkpoints load as before.
DS2=$PREFIX/src/src/models/deepseek2.cpp
if grep -q 'ml.get_key(LLM_KV_ATTENTION_Q_LORA_RANK, hparams.n_lora_q);' "$DS2"; then
  sed -i 's/ml.get_key(LLM_KV_ATTENTION_Q_LORA_RANK, hparams.n_lora_q);/ml.get_key(LLM_KV_ATTENTION_Q_LORA_RANK, hparams.n_lora_q, false);  \/\/ inferd bench patch/' "$DS2"
fi
grep -q 'n_lora_q, false);  // inferd bench patch' "$DS2" || { echo "build.sh: the q_lora_rank patch did not apply to $DS2" >&2; exit 1; }

LAUNCHER=()
if command -v ccache >/dev/null; then
  LAUNCHER=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# The sdist carries no git history: the build number and commit come from its own metadata when present.
nice -n "$NICE" cmake -S "$PREFIX/src" -B "$WORK/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON -DGGML_CPU=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF \
  -DGGML_BACKEND_DL=OFF -DGGML_CCACHE=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  "${LAUNCHER[@]}"
nice -n "$NICE" cmake --build "$WORK/build" -j "$JOBS" \
  --target llama-bench llama-batched-bench llama-server

mkdir -p "$PREFIX/bin"
for t in llama-bench llama-batched-bench llama-server; do
  install -m 755 "$WORK/build/bin/$t" "$PREFIX/bin/$t"
done

"$PYTHON" -m pip install -q -r "$ROOT/scripts/requirements-peers.txt"

{
  echo "llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (PyPI sdist), patched: q_lora_rank optional (see build.sh)"
  "$PREFIX/bin/llama-bench" --version 2>&1 | grep -i "version" || true
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(lscpu | sed -n 's/^Model name: *//p')"
} > "$PREFIX/VERSION"
cat "$PREFIX/VERSION"
echo "llama.cpp tools in $PREFIX/bin"
