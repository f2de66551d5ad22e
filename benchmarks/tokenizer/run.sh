#!/usr/bin/env bash
# Encode throughput, one thread: inferd vs the `tokenizers` library, same corpus, same machine, one run.
# Usage: benchmarks/tokenizer/run.sh [BUILD_DIR] [MODEL_DIR]
#   BUILD_DIR  defaults to build (must contain bin/bench_tokenizer: cmake --build BUILD_DIR --target bench_tokenizer)
#   MODEL_DIR  defaults to ../shared/testdata/deepseek-v3-tokenizer
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
model="${2:-$root/../shared/testdata/deepseek-v3-tokenizer}"
py="${INFERD_PYTHON:-$root/.venv/bin/python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1

# The test corpus of tools/tokenizer_reference.py (valid UTF-8 items only; every item one document).
"$py" - "$work/corpus.json" <<PYEOF
import json, sys
sys.path.insert(0, "$root/tools")
from tokenizer_reference import build_corpus
docs, natural = [], []
for name, raw in build_corpus():
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        continue
    docs.append(text)
    # Natural text: no code point sweeps, fuzz or synthetic long runs.
    if not name.startswith(("cp", "fuzz", "long_3", "long_4", "long_5")):
        natural.append(text)
json.dump(docs, open(sys.argv[1], "w"))
json.dump(natural, open(sys.argv[1].replace("corpus", "natural"), "w"))
PYEOF

status=0
for corpus in corpus natural; do
  echo "== $corpus =="
  ours=$("$build/bin/bench_tokenizer" --model "$model" --corpus "$work/$corpus.json" --ids "$work/ours.json")
  theirs=$("$py" "$root/benchmarks/tokenizer/bench_reference.py" --model "$model" --corpus "$work/$corpus.json" \
           --ids "$work/theirs.json")
  echo "$ours"
  echo "$theirs"
  "$py" - "$work" "$ours" "$theirs" <<'PYEOF' || status=1
import json, sys
w, ours, theirs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
same = json.load(open(w + "/ours.json")) == json.load(open(w + "/theirs.json"))
print("ids identical: %s" % same)
print("inferd %.2f MB/s, tokenizers %.2f MB/s, ratio %.2fx (%d docs, %.2f MB)" % (
    ours["mb_per_s"], theirs["mb_per_s"], ours["mb_per_s"] / theirs["mb_per_s"], ours["docs"], ours["bytes"] / 1e6))
sys.exit(0 if same else 1)
PYEOF
done
exit $status
