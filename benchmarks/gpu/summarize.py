#!/usr/bin/env python3
"""Summary table of one tools/gpu_check.sh run: decode tokens/s at each batch, prefill tokens/s, and the
batch-1 fraction of the device-to-device copy bandwidth measured in the same run.

    python3 benchmarks/gpu/summarize.py --d2d d2d.json --bench a.json b.json ... [--out summary.md]

Batch-1 fraction = decode tokens/s x weight bytes read per batch-1 token (bench_model's
weights.bytes_per_token_batch1: every weight once, routed experts at top_k / n_experts) / copy bandwidth
(bytes read + written per second). Goal on deepseek-coder-1.3b: >= 0.8.
"""
import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d2d", required=True)
    ap.add_argument("--bench", nargs="*", default=[])
    ap.add_argument("--out")
    a = ap.parse_args()
    with open(a.d2d) as f:
        d2d = json.load(f)
    bw = d2d["read_plus_write_bytes_per_s"]
    lines = [f"device {d2d['device']}; device-to-device copy {bw / 1e12:.3f} TB/s (read + write, median)", "",
             "| model | dtype | prefill tok/s (prompt) | decode tok/s b1 | b16 | b64 | b1 ms/step | b1 fraction of copy bw |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for path in a.bench:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            r = json.load(f)
        pre = ", ".join(f"{v['tokens_per_s']:.0f} ({k})" for k, v in r.get("prefill", {}).items())
        dec = r.get("decode", {})
        get = lambda b: f"{dec[b]['tokens_per_s']:.1f}" if b in dec else "-"
        frac = "-"
        ms = "-"
        if "1" in dec:
            frac = f"{dec['1']['tokens_per_s'] * r['weights']['bytes_per_token_batch1'] / bw:.3f}"
            ms = f"{dec['1']['median_step_ms']:.2f}"
        name = os.path.basename(r["model"].rstrip("/"))
        lines.append(f"| {name} | {r['dtype']} | {pre} | {get('1')} | {get('16')} | {get('64')} | {ms} | {frac} |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
