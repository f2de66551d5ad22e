"""Medians over rounds of the runs in a folder of run.sh's files (MODEL-SIDE-ROUND.json; llama.cpp's side is
llama-bench's JSON): decode tokens/s per batch, batch-1 over bench_membw's bound (whole run and paired), and
each side over the first one (base, else pf).  python3 summary.py FOLDER"""
import glob
import json
import os
import re
import statistics
import sys

med = statistics.median
out = sys.argv[1]
runs = {}  # (model, side) -> [json]
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    model, side, _ = re.match(r"(.+)-([a-z]+)-(\d+)\.json$", os.path.basename(path)).groups()
    with open(path) as f:
        runs.setdefault((model, side), []).append(json.load(f))
for model in sorted({m for m, _ in runs}):
    sides = [s for s in ("base", "pf", "main", "llama") if (model, s) in runs]
    rows = {}
    for s in sides:
        rs = runs[(model, s)]
        if s == "llama":
            rows[s] = {"1": med([r[0]["avg_ts"] for r in rs]), "rounds b1": [round(r[0]["avg_ts"], 1) for r in rs]}
            continue
        batches = [b for b in ("1", "4", "16") if b in rs[0]["decode"]]
        d = {b: med([r["decode"][b]["tokens_per_s"] for r in rs]) for b in batches}
        d["b1/bound"] = med([r["batch1_ratio_to_bound"] for r in rs])
        d["b1/bound paired"] = med([r["batch1_paired"]["ratio_median"] for r in rs])
        d["rounds b1"] = [round(r["decode"]["1"]["tokens_per_s"], 1) for r in rs]
        rows[s] = d
    print(f"## {model}")
    for s, d in rows.items():
        print(f"{s:6}", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()})
    ref = rows[sides[0]]
    for s in [s for s in sides[1:] if s != "llama"]:
        print(f"{s} / {sides[0]}", {b: round(rows[s][b] / ref[b], 3) for b in ("1", "4", "16") if b in rows[s] and b in ref})
    if "llama" in rows:
        for s in sides:
            if s != "llama":
                print(f"{s} / llama b1", round(rows[s]["1"] / rows["llama"]["1"], 3))
