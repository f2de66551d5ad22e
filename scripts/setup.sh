#!/usr/bin/env bash
# Installs everything inferd needs on a fresh Debian 12 machine, builds it, and generates the default
# model. Idempotent: each step is skipped when its result is already there. Called first by run.sh and test.sh.
#   INFERD_BUILD_DIR   build directory (default: build)
#   INFERD_SKIP_BUILD  set to 1 to install only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${INFERD_BUILD_DIR:-build}
log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# 1. Debian packages.
mapfile -t PKGS < <(grep -vE '^\s*(#|$)' scripts/apt-packages.txt)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# 2. Project virtualenv with the pinned wheels (libtorch comes from the torch wheel).
REQ_HASH=$(sha256sum scripts/requirements.txt | cut -c1-16)
if [ ! -f .venv/.requirements-$REQ_HASH ]; then
  log "creating .venv (torch wheel and its CUDA runtime libraries: a few GB the first time)"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r scripts/requirements.txt
  touch .venv/.requirements-$REQ_HASH
else
  log ".venv up to date"
fi

# 3. ccache shared across clones of this repository (CI builds a fresh clone in another folder).
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_BASEDIR=$ROOT
export CCACHE_NOHASHDIR=1
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
command -v ccache >/dev/null && ccache --max-size=20G >/dev/null

# 4. Build.
if [ "${INFERD_SKIP_BUILD:-0}" != 1 ]; then
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    log "configuring $BUILD_DIR"
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  log "building (ninja -C $BUILD_DIR)"
  cmake --build "$BUILD_DIR" -j"$(nproc)"
fi

# 5. Default model: a small random-weight DeepseekV3ForCausalLM with a byte-level BPE tokenizer.
if [ -f tools/make_default_model.py ]; then
  .venv/bin/python tools/make_default_model.py --out models/default
fi
log "done"
