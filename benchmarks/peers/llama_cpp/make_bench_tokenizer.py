#!/usr/bin/env python3
"""Writes tokenizer.json and tokenizer_config.json into a bench checkpoint folder, with exactly the
checkpoint's vocab_size tokens, so that llama.cpp's convert_hf_to_gguf.py and inferd both load it.

Usage:
    python benchmarks/peers/llama_cpp/make_bench_tokenizer.py DIR      (DIR holds config.json)

The benchmarks feed token ids, so the tokenizer only has to be valid, not trained. Layout (ids):
    0 <unk>, 1 <s>, 2 </s>                        special (bos 1, eos 2 as the bench shapes' config.json)
    3 .. 258   <0x00> .. <0xFF>                   byte-fallback tokens (llama.cpp's "llama" vocab needs them)
    259 .. 514 the 256 symbols of byte-level BPE (GPT-2's byte-to-unicode alphabet)
    515 ..     two-symbol merges "a b" in alphabet order, until vocab_size tokens
Model BPE with byte_fallback, pre-tokenizer and decoder ByteLevel (the decoder wrapped in a one-element
Sequence): the converter takes its Llama-HF path for that (LlamaHfVocab: BPE + byte_fallback + Sequence
decoder; no pre-tokenizer hash lookup), and inferd's tokenizer supports each piece.
"""

import json
import os
import sys

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

SPECIALS = ["<unk>", "<s>", "</s>"]


def build(vocab_size):
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    alphabet.sort()
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for a in alphabet:
        vocab[a] = len(vocab)
    merges = []
    need = vocab_size - len(vocab)
    if need < 0 or need > len(alphabet) ** 2:
        raise SystemExit(f"vocab_size {vocab_size}: must be between {len(vocab)} and {len(vocab) + len(alphabet) ** 2}")
    for a in alphabet:
        for b in alphabet:
            if len(merges) == need:
                break
            merges.append((a, b))
            vocab[a + b] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.Sequence([decoders.ByteLevel()])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    assert tok.get_vocab_size() == vocab_size, (tok.get_vocab_size(), vocab_size)
    return tok


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    vocab_size = int(config["vocab_size"])
    if config.get("bos_token_id", 1) != 1 or config.get("eos_token_id", 2) != 2:
        raise SystemExit(f"{out}/config.json: expected bos_token_id 1 and eos_token_id 2")
    build(vocab_size).save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
                   "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False,
                   "model_max_length": int(config.get("max_position_embeddings", 4096))}, f, indent=2)
    print(f"{out}: tokenizer with {vocab_size} tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
