#!/usr/bin/env python3
"""Runs llama.cpp's own convert_hf_to_gguf.py on a bench checkpoint, with one change: a BPE tokenizer whose
pre-tokenizer hash is not in the converter's list of released tokenizers gets llama.cpp's "default"
pre-tokenizer instead of NotImplementedError.

Why: the converter takes DeepseekV2 checkpoints (moe-700m) only through its GPT-2-style BPE path, which
identifies the pre-tokenizer by hashing the token ids of a fixed text; a tokenizer made for a random-weight
bench checkpoint (make_bench_tokenizer.py) can never match a released one. The benchmarks feed token ids, so
the pre-tokenizer never runs; every tensor, hyperparameter and the vocabulary go through the converter
unchanged. Checkpoints whose hash the converter knows convert exactly as without this wrapper.

Usage:
    python benchmarks/peers/llama_cpp/convert_bench.py LLAMA_SRC CHECKPOINT_DIR [convert_hf_to_gguf.py args...]
    e.g. ... convert_bench.py build/peers/llama.cpp/src build/bench-models/moe-700m --outtype bf16 --outfile X.gguf
"""

import logging
import runpy
import sys
from pathlib import Path


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    src = Path(sys.argv[1]).resolve()
    script = src / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise SystemExit(f"convert_bench.py: {script} not found (LLAMA_SRC must be llama.cpp's source tree)")
    sys.path.insert(0, str(src / "gguf-py"))
    sys.path.insert(0, str(src))
    import conversion.base as base  # llama.cpp's converter package, the same module the script imports

    original = base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer):
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            logging.getLogger("convert_bench").warning(
                "pre-tokenizer hash not in llama.cpp's list (a bench tokenizer): using \"default\"")
            return "default"

    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    sys.argv = [str(script)] + sys.argv[2:]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
