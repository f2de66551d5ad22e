# Groups a decode-only perf profile's self samples: attention kernel, GEMM/GEMV, the in-process bandwidth
# probe (excluded from the shares: every sample of a thread that ever ran the probe, its page faults
# included), kernel time of the model's threads, the rest. Usage: summarize.py PERF_DATA
import collections, re, subprocess, sys
out = subprocess.run(["perf", "script", "-i", sys.argv[1], "-F", "tid,ip,sym", "--no-inline"], capture_output=True,
                     text=True).stdout
samples = []  # (tid, leaf symbol, is kernel)
tid, leaf = None, None
for line in out.splitlines():
    if not line.strip():
        continue
    if not line.startswith("\t") and not line.startswith(" "):
        tid, leaf = line.split()[0], None
        continue
    if leaf is None:
        parts = line.strip().split(None, 1)
        leaf = parts[1] if len(parts) > 1 else "[unknown]"
        samples.append((tid, leaf, parts[0].startswith("ffffffff")))
probe_tids = {t for t, s, k in samples if "MeasureReadBandwidth" in s}
groups = collections.OrderedDict((k, collections.Counter()) for k in
                                 ["attention", "gemm/gemv", "kernel [k]", "pool", "row kernels", "torch / other",
                                  "bandwidth probe"])
for t, s, k in samples:
    if t in probe_tids:
        g = "bandwidth probe"
    elif k:
        g = "kernel [k]"
    elif re.search(r"PagedDecode|Avx512Ops::|Avx2Ops::|ScalarOps::|_path::|ExpSum|ScoreTile|PvBlock|PvHeads|DecodeItem|RangeOn", s):
        g = "attention"
    elif re.search(r"Gemv|Gemm|Avx512<|Avx2<|PackW|RunBlocked|Reduce512|ReduceAvx2|gemm|Kernel<", s):
        g = "gemm/gemv"
    elif re.search(r"Pool|ParallelChunks", s):
        g = "pool"
    elif re.search(r"kernels::cpu::", s):
        g = "row kernels"
    else:
        g = "torch / other"
    groups[g][s[:110]] += 1
model = sum(sum(c.values()) for g, c in groups.items() if g != "bandwidth probe")
total = len(samples)
print(f"{total} samples, {model} of the model's threads, {len(probe_tids)} probe threads")
for g, c in groups.items():
    n = sum(c.values())
    share = "" if g == "bandwidth probe" else f"  ({100 * n / max(1, model):.1f}% of the model's samples)"
    print(f"{g:16s} {100 * n / max(1, total):6.2f}%{share}")
    for sym, k in c.most_common(6):
        print(f"      {100 * k / max(1, model):6.2f}%  {sym}")
