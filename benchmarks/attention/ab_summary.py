# Medians per side of benchmarks/attention/ab_model.sh's JSON files and B / A.
#   ab_summary.py OUT_DIR
import glob, json, os, statistics, sys
out = sys.argv[1]
rows = {}  # (measurement) -> side -> [values]
for f in sorted(glob.glob(os.path.join(out, "*-*-*.json"))):
    side, rnd, rest = os.path.basename(f)[:-5].split("-", 2)
    d = json.load(open(f))
    if rest.endswith("-decode"):
        model = rest[: -len("-decode")]
        for b, v in d.get("decode", {}).items():
            rows.setdefault(f"{model} decode b{b}", {}).setdefault(side, []).append(v["tokens_per_s"])
    else:
        for p, v in d.get("prefill", {}).items():
            rows.setdefault(f"{rest} prefill {p}", {}).setdefault(side, []).append(p and v["tokens_per_s"])
print("| measurement | A tokens/s (median) | B tokens/s (median) | B / A | per round A; B |")
print("| --- | --- | --- | --- | --- |")
for k, v in rows.items():
    a, b = v.get("A", []), v.get("B", [])
    if not a or not b:
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    per = ", ".join(f"{x:.1f}" for x in a) + "; " + ", ".join(f"{x:.1f}" for x in b)
    print(f"| {k} | {ma:.2f} | {mb:.2f} | **{mb / ma:.2f}** | {per} |")
