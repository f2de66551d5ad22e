# Groups a decode-only perf profile's self samples: attention kernel, GEMM/GEMV, the in-process bandwidth
# probe (excluded from the shares), the rest. Usage: summarize.py PERF_DATA
import re, subprocess, sys
out = subprocess.run(["perf", "report", "-i", sys.argv[1], "--no-children", "-g", "none", "--sort", "symbol",
                      "--stdio", "--percent-limit", "0"], capture_output=True, text=True).stdout
groups = {"attention": 0.0, "gemm/gemv": 0.0, "bandwidth probe": 0.0, "kernel [k]": 0.0, "other": 0.0}
top = {k: [] for k in groups}
for line in out.splitlines():
    m = re.match(r"\s+([\d.]+)%\s+\[(.)\]\s+(.*)", line)
    if not m:
        continue
    pct, kind, sym = float(m.group(1)), m.group(2), m.group(3).strip()
    if "MeasureReadBandwidth" in sym:
        g = "bandwidth probe"
    elif kind == "k":
        g = "kernel [k]"
    elif re.search(r"PagedDecode|Avx512Ops::|Avx2Ops::|ScalarOps::|_path::|ExpSum|ScoreTile|PvBlock|PvHeads|DecodeItem|RangeOn", sym):
        g = "attention"
    elif re.search(r"Gemv|Gemm|Avx512<|Avx2<|PackW|RunBlocked|Reduce512|ReduceAvx2|gemm|Kernel<", sym):
        g = "gemm/gemv"
    else:
        g = "other"
    groups[g] += pct
    top[g].append((pct, sym[:110]))
model = sum(v for k, v in groups.items() if k != "bandwidth probe")
for k, v in groups.items():
    share = "" if k == "bandwidth probe" else f"  ({100 * v / model:.1f}% of the model's samples)"
    print(f"{k:16s} {v:6.2f}%{share}")
    for pct, sym in sorted(top[k], reverse=True)[:6]:
        print(f"      {pct:6.2f}%  {sym}")
