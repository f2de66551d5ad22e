#!/usr/bin/env bash
# Prepares .gpu/ (ignored by git, carried to the GPU machine) for tools/gpu_check.sh, on the development
# machine: the header-only libraries and googletest sources the engine-only build needs (Debian packages,
# downloaded with apt-get and unpacked with dpkg -x), the model tests' checkpoints with their transformers
# reference logits (generated here, as CI does), and the real-DeepSeek shape files of ../shared/bench-models.
#
#   tools/gpu_prepare.sh [BUILD_DIR]      BUILD_DIR holds testmodels/ (default build; generated if missing)
#
# Then, with the device tool: run(command="tools/gpu_check.sh", carry=[".gpu"], timeout_s=600).
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build}
GPU=.gpu
PACKAGES="libfmt-dev libspdlog-dev nlohmann-json3-dev googletest"

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"

rm -rf "$GPU/debs" "$GPU/root"
mkdir -p "$GPU/debs" "$GPU/root" "$GPU/bench-models"
(cd "$GPU/debs" && apt-get download $PACKAGES)
for deb in "$GPU"/debs/*.deb; do dpkg -x "$deb" "$GPU/root"; done
rm -rf "$GPU/debs" "$GPU/root/usr/share/doc"

if [ ! -f "$BUILD/testmodels/llama_gqa/reference.json" ]; then
  .venv/bin/python tools/make_test_checkpoints.py --out "$BUILD/testmodels"
fi
rm -rf "$GPU/testmodels"
cp -r "$BUILD/testmodels" "$GPU/testmodels"
for m in deepseek-coder-1.3b deepseek-v2-lite-4l deepseek-v3-arch-2k; do
  cp "../shared/bench-models/$m-shape.json" "$GPU/bench-models/"
done
du -sh "$GPU"
echo "gpu_prepare: $GPU ready; carry it: run(command=\"tools/gpu_check.sh\", carry=[\".gpu\"])"
