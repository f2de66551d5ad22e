#!/usr/bin/env python3
"""Markdown tables from llama_vs_inferd.sh's output folder: medians over rounds, ratios inferd / llama.cpp.

Usage: summarize_llama_vs_inferd.py OUT

Engine: llama-bench avg_ts (prefill: n_prompt 128/512; batch-1 decode: n_gen at depth 64),
llama-batched-bench speed_tg (aggregate decode tokens/s at 4/16/64 sequences), bench_model's
prefill/decode tokens_per_s. Batch-1 decode as a fraction of the bound: tokens/s x bytes read per token
(bench_model's weights.bytes_per_token_batch1, the same bf16 weights for both engines) / read bandwidth,
where the bandwidth of a round is the mean of bench_membw before and after it (the higher of the 1-thread
and THREADS-thread medians, as bench_model uses); median over rounds.

Serving: serve_client.py's JSON per (system, concurrency, round): requests/s, generated tokens/s, TTFT and
latency p50/p99; medians over rounds, ratios inferd / llama.cpp (for latencies below 1 = inferd faster).
A point with errors is listed and left out of the medians.
"""

import glob
import json
import os
import re
import statistics
import sys


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def ratio(a, b):
    return None if a is None or not b else a / b


def read_bw(path):
    fields = open(path).read().split()
    return max(float(fields[3]), float(fields[4])), " ".join(fields[:3])


def engine(out):
    rounds = sorted(int(m.group(1)) for p in glob.glob(os.path.join(out, "engine-r*-inferd.json"))
                    if (m := re.search(r"engine-r(\d+)-inferd.json$", p)))
    if not rounds:
        return []
    rows = {}  # key -> {"llama": [...], "inferd": [...]}
    frac = {"llama": [], "inferd": []}
    bws, loads = [], []
    bytes_per_token = None

    def put(key, side, v):
        rows.setdefault(key, {"llama": [], "inferd": []})[side].append(v)

    for r in rounds:
        p = os.path.join(out, f"engine-r{r}")
        inf = json.load(open(p + "-inferd.json"))
        bytes_per_token = inf["weights"]["bytes_per_token_batch1"]
        for n in ("128", "512"):
            put(f"prefill {n}", "inferd", inf["prefill"][n]["tokens_per_s"])
        for n in ("1", "4", "16", "64"):
            put(f"decode batch {n}", "inferd", inf["decode"][n]["tokens_per_s"])
        for e in json.load(open(p + "-llama-pp.json")):
            put(f"prefill {e['n_prompt']}", "llama", e["avg_ts"])
        for e in json.load(open(p + "-llama-tg.json")):
            put("decode batch 1", "llama", e["avg_ts"])
        for line in open(p + "-llama-batched.jsonl"):
            e = json.loads(line)
            put(f"decode batch {e['pl']}", "llama", e["speed_tg"])
        bw0, l0 = read_bw(p + "-before.txt")
        bw1, l1 = read_bw(p + "-after.txt")
        bw = 0.5 * (bw0 + bw1)
        bws.append(bw)
        loads.append(f"{l0.split()[0]}-{l1.split()[0]}")
        frac["inferd"].append(rows["decode batch 1"]["inferd"][-1] * bytes_per_token / (bw * 1e9))
        frac["llama"].append(rows["decode batch 1"]["llama"][-1] * bytes_per_token / (bw * 1e9))

    lines = [f"### Engine: tokens/s, median of {len(rounds)} alternating rounds", "",
             "| measurement | llama.cpp | inferd | **inferd / llama.cpp** | inferd per round | llama.cpp per round |",
             "| --- | ---: | ---: | ---: | --- | --- |"]
    order = ["prefill 128", "prefill 512", "decode batch 1", "decode batch 4", "decode batch 16", "decode batch 64"]
    for key in order:
        if key not in rows:
            continue
        lm, im = med(rows[key]["llama"]), med(rows[key]["inferd"])
        lines.append(f"| {key} | {fmt(lm)} | {fmt(im)} | **{fmt(ratio(im, lm), 2)}** | "
                     f"{', '.join(fmt(v) for v in rows[key]['inferd'])} | {', '.join(fmt(v) for v in rows[key]['llama'])} |")
    pre = med(rows["prefill 512"]["inferd"]) if "prefill 512" in rows else None
    lines += ["", f"Read bandwidth per round (GB/s, bench_membw, mean of before and after): "
              f"{', '.join(fmt(b, 2) for b in bws)}; median {fmt(med(bws), 2)}. "
              f"Load average per round (1-min, before-after): {', '.join(loads)}.",
              f"Bytes read per batch-1 token: {bytes_per_token / 1e9:.3f} GB; bound = bandwidth / bytes per token "
              f"= {med(bws) * 1e9 / bytes_per_token:.1f} tokens/s at the median bandwidth.", "",
              "| batch-1 decode / bound (median of per-round ratios) | llama.cpp | inferd |", "| --- | ---: | ---: |",
              f"| fraction | {fmt(med(frac['llama']), 2)} | {fmt(med(frac['inferd']), 2)} |", ""]
    if pre:
        lines.append("inferd aggregate decode / inferd prefill 512 (same rounds): " + ", ".join(
            f"batch {n} {fmt(med(rows[f'decode batch {n}']['inferd']) / pre, 2)}" for n in ("16", "64")) + ".")
        lines.append("")
    return lines


def serving(out):
    files = glob.glob(os.path.join(out, "serving-*-c*-r*.json"))
    if not files:
        return []
    pts = {}  # (concurrency, system) -> list of results
    bad = []
    for f in files:
        m = re.search(r"serving-(llama|inferd)-c(\d+)-r(\d+)\.json$", f)
        if not m:
            continue
        d = json.load(open(f))
        if d["errors"] or not d["tokens_per_s"]:
            bad.append(f"{os.path.basename(f)}: {d['errors']} errors {d.get('error_samples')}")
            continue
        pts.setdefault((int(m.group(2)), m.group(1)), []).append(d)
    metrics = [("requests/s", lambda d: d["requests_per_s"], 2), ("generated tokens/s", lambda d: d["tokens_per_s"], 1),
               ("TTFT p50 ms", lambda d: d["ttft_ms"]["p50"], 0), ("TTFT p99 ms", lambda d: d["ttft_ms"]["p99"], 0),
               ("latency p50 ms", lambda d: d["latency_ms"]["p50"], 0),
               ("latency p99 ms", lambda d: d["latency_ms"]["p99"], 0)]
    any_d = next(iter(pts.values()))[0] if pts else None
    head = (f"prompt {any_d['prompt_tokens']} tokens, {any_d['max_tokens']} generated, {any_d['duration_s']:.0f} s "
            f"per point") if any_d else ""
    lines = [f"### Serving: llama-server (HTTP /completion, streamed) and inferd (gRPC GenerateStream), closed loop, "
             f"{head}; medians over rounds", "",
             "| concurrency | measurement | llama.cpp | inferd | **inferd / llama.cpp** | rounds |",
             "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for c in sorted({c for c, _ in pts}):
        lr, ir = pts.get((c, "llama"), []), pts.get((c, "inferd"), [])
        for name, get, digits in metrics:
            lm, im = med([get(d) for d in lr]), med([get(d) for d in ir])
            lines.append(f"| {c} | {name} | {fmt(lm, digits)} | {fmt(im, digits)} | **{fmt(ratio(im, lm), 2)}** | "
                         f"{len(lr)}/{len(ir)} |")
    loads = sorted(d["loadavg_before"].split()[0] for v in pts.values() for d in v)
    if loads:
        lines += ["", f"Load average (1-min) at the start of the points: {loads[0]} to {loads[-1]}."]
    if bad:
        lines += ["", "Points with errors (left out):"] + [f"- {b}" for b in sorted(bad)]
    lines.append("")
    return lines


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    lines = []
    machine = os.path.join(out, "machine.txt")
    if os.path.exists(machine):
        lines += ["```", open(machine).read().rstrip(), "```", ""]
    lines += engine(out)
    lines += serving(out)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
