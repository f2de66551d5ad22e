"""Summary of benchmarks/model/ab.sh: per model and build, medians over rounds of bench_model's medians,
B / A ratios, batch-1 tokens/s over bandwidth / bytes per token, and aggregate decode over prefill-512."""
import glob
import json
import os
import statistics
import sys


def load(out):
    runs = {}  # (side, model) -> [result json]
    for path in sorted(glob.glob(os.path.join(out, "*-*", "*.json"))):
        side = os.path.basename(os.path.dirname(path)).split("-")[0]
        model = os.path.basename(path)[: -len(".json")]
        with open(path) as f:
            runs.setdefault((side, model), []).append(json.load(f))
    return runs


def med(values):
    return statistics.median(values) if values else float("nan")


def main(out):
    runs = load(out)
    models = sorted({m for _, m in runs})
    cols = [("prefill", "128"), ("prefill", "512"), ("decode", "1"), ("decode", "4"), ("decode", "16"),
            ("decode", "64")]
    print("| model | build | rounds | " + " | ".join(f"{k} {v}" for k, v in cols) +
          " | GB/s | b1 / bound | b16 / prefill512 | b64 / prefill512 |")
    print("| --- " * (len(cols) + 7) + "|")
    for model in models:
        table = {}
        for side in ("A", "B"):
            rs = runs.get((side, model), [])
            if not rs:
                continue
            vals = {c: med([r[c[0]][c[1]]["tokens_per_s"] for r in rs if c[1] in r.get(c[0], {})]) for c in cols}
            gbps = med([r["membw"]["gbps_used"] for r in rs])
            bound = med([r["membw"]["gbps_used"] * 1e9 / r["weights"]["bytes_per_token_batch1"] for r in rs])
            table[side] = vals
            p512 = vals[("prefill", "512")]
            print(f"| {model} | {side} | {len(rs)} | " + " | ".join(f"{vals[c]:.1f}" for c in cols) +
                  f" | {gbps:.2f} | {vals[('decode', '1')] / bound:.2f} | {vals[('decode', '16')] / p512:.2f} |"
                  f" {vals[('decode', '64')] / p512:.2f} |")
        if "A" in table and "B" in table:
            print(f"| {model} | B / A | | " + " | ".join(f"{table['B'][c] / table['A'][c]:.2f}" for c in cols) +
                  " | | | | |")
    # llama.cpp batch-1 decode (ab.sh with LLAMA_BENCH), one llama-bench run per round.
    llama = []
    for path in sorted(glob.glob(os.path.join(out, "llama-*.json"))):
        with open(path) as f:
            llama += [r["avg_ts"] for r in json.load(f) if r.get("n_gen", 0) > 0]
    if llama:
        print(f"\nllama.cpp batch-1 decode: median {med(llama):.2f} tokens/s over {len(llama)} rounds "
              f"({', '.join(f'{v:.2f}' for v in llama)})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/bench-ab")
