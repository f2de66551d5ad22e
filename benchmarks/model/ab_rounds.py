# Per-round table of an ab.sh output folder: prefill 512, decode batches, and b16 / b64 over prefill 512 of
# the same run, per model, build and round (ab_summary.py gives the medians). Usage: ab_rounds.py OUT_DIR
import glob, json, os, sys
rows = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "[AB]-*", "*.json"))):
    side, rnd = os.path.basename(os.path.dirname(path)).split("-")
    d = json.load(open(path))
    p = d["prefill"].get("512", {}).get("tokens_per_s", float("nan"))
    dec = {int(k): v["tokens_per_s"] for k, v in d["decode"].items()}
    rows.append((os.path.basename(path)[:-5], int(rnd), side, p, dec, d["membw"].get("gbps", float("nan"))
                 if isinstance(d.get("membw"), dict) else float("nan"), d["loadavg_start"], d["loadavg_end"]))
batches = sorted({b for r in rows for b in r[4]})
print("| model | round | build | prefill 512 | " + " | ".join(f"b{b}" for b in batches) +
      " | b16 / p512 | b64 / p512 | loadavg start-end |")
print("| --- " * (7 + len(batches)) + "|")
for m, rnd, side, p, dec, bw, l0, l1 in sorted(rows):
    cells = " | ".join(f"{dec.get(b, float('nan')):.2f}" for b in batches)
    f = lambda b: f"{dec[b] / p:.2f}" if b in dec else "-"
    ls = lambda l: l.split()[0] if isinstance(l, str) else f"{l[0]:.1f}" if isinstance(l, list) else str(l)
    print(f"| {m} | {rnd} | {side} | {p:.1f} | {cells} | {f(16)} | {f(64)} | {ls(l0)}-{ls(l1)} |")
