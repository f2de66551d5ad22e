#!/usr/bin/env python3
"""Encode throughput (MB/s, one thread) of the `tokenizers` library on the benchmark corpus.

Usage: bench_reference.py --model DIR --corpus corpus.json [--seconds S] [--ids out.json]
Each document is encoded separately with Tokenizer.encode(doc, add_special_tokens=False) (single-threaded).
"""
import argparse
import json
import time

from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--ids")
    args = ap.parse_args()
    docs = json.load(open(args.corpus))
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(args.model + "/tokenizer.json")
    load_s = time.perf_counter() - t0
    first = [tok.encode(d, add_special_tokens=False).ids for d in docs]  # warm-up and cross-check ids
    passes = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < args.seconds or passes < 1:
        for d in docs:
            tok.encode(d, add_special_tokens=False)
        passes += 1
        elapsed = time.perf_counter() - start
    print(json.dumps({"impl": "tokenizers", "docs": len(docs), "bytes": nbytes,
                      "tokens": sum(len(i) for i in first), "passes": passes, "seconds": round(elapsed, 3),
                      "mb_per_s": round(nbytes * passes / elapsed / 1e6, 3), "load_s": round(load_s, 3)}))
    if args.ids:
        json.dump(first, open(args.ids, "w"))


if __name__ == "__main__":
    main()
