"""Summary of benchmarks/model/ab_isa.sh: per model, medians over rounds of bench_model's tokens/s for sides
A and B (files OUT/MODEL-SIDE-ROUND.json), B / A, the paired batch-1 / bound ratio, and aggregate decode at
batch 16 and 64 over prefill 512."""
import glob
import json
import os
import re
import statistics
import sys


def main(out):
    runs = {}  # model -> side -> [json]
    for path in sorted(glob.glob(os.path.join(out, "*-*-*.json"))):
        m = re.match(r"(.+)-([A-Z])-(\d+)\.json$", os.path.basename(path))
        if not m:
            continue
        with open(path) as f:
            runs.setdefault(m.group(1), {}).setdefault(m.group(2), []).append(json.load(f))
    for model, sides in sorted(runs.items()):
        tags = sorted(sides)
        rows = {}
        for t in tags:
            for j in sides[t]:
                for p, v in j["prefill"].items():
                    rows.setdefault(f"prefill {p}", {}).setdefault(t, []).append(v["tokens_per_s"])
                for b, v in sorted(j["decode"].items(), key=lambda kv: int(kv[0])):
                    rows.setdefault(f"decode batch {b}", {}).setdefault(t, []).append(v["tokens_per_s"])
                rows.setdefault("batch 1 / bound (paired)", {}).setdefault(t, []).append(j["batch1_paired"]["ratio_median"])
        print(f"## {model}\n")
        print("| measurement | " + " | ".join(f"{t}: median (runs)" for t in tags) + f" | {tags[-1]} / {tags[0]} |")
        print("| --- |" + " --- |" * (len(tags) + 1))
        med = {k: {t: statistics.median(v[t]) for t in tags if t in v} for k, v in rows.items()}
        for k, v in rows.items():
            cells = " | ".join(f"{med[k][t]:.2f} ({', '.join(f'{x:.2f}' for x in v[t])})" for t in tags if t in v)
            print(f"| {k} | {cells} | {med[k][tags[-1]] / med[k][tags[0]]:.2f} |")
        for b in ("16", "64"):
            key = f"decode batch {b}"
            if key in med and "prefill 512" in med:
                print(f"\naggregate decode batch {b} / prefill 512: " +
                      ", ".join(f"{t} {med[key][t] / med['prefill 512'][t]:.2f}" for t in tags))
        print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/amx-ab")
