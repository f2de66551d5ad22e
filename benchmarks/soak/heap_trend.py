#!/usr/bin/env python3
"""Trend of resident memory and of glibc's main heap in a soak.py --malloc-stats result.

For each series (VmRSS; the main heap's bytes held from the kernel, free inside it, and allocated; the other
arenas' bytes held) it prints the per-minute means, the largest value and when it was first reached, and the
least-squares slope of the per-minute means over the last --window-minutes minutes with its 95% confidence
interval (Student t, n-2 degrees of freedom). Per-minute means rather than the raw samples: samples a few
seconds apart are strongly correlated, which would make the interval of a fit to them too narrow.

Usage (benchmarks/soak/RESULTS.md):
  python3 benchmarks/soak/heap_trend.py /tmp/soak-long.json --window-minutes 20 --out /tmp/trend.json
"""

import argparse
import json
import math
import sys

# Two-sided 95% quantiles of Student's t for n-2 degrees of freedom (n = number of per-minute means).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
       20: 2.086, 22: 2.074, 24: 2.064, 26: 2.056, 28: 2.048, 30: 2.042, 40: 2.021, 60: 2.000}
MIB = 2**20


def t95(df):
    keys = sorted(k for k in T95 if k <= df)
    return T95[keys[-1]] if keys else T95[1]


def fit(xs, ys):
    """Least-squares slope of ys on xs and the half-width of its 95% interval."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    resid = [y - (my + slope * (x - mx)) for x, y in zip(xs, ys)]
    se = math.sqrt(sum(r * r for r in resid) / (n - 2) / sxx) if n > 2 else float("inf")
    return slope, t95(n - 2) * se


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("result", help="soak.py --out file of a --malloc-stats run")
    ap.add_argument("--window-minutes", type=int, default=20)
    ap.add_argument("--out", default="", help="also write the figures as JSON")
    args = ap.parse_args()
    r = json.load(open(args.result))
    duration = r["duration_s"]
    series = {
        "rss": [(s["t"], s["rss"]) for s in r["samples"]],
        "main_held": [(s["t"], s["main_system"]) for s in r["malloc_samples"]],
        "main_free": [(s["t"], s["main_free"]) for s in r["malloc_samples"]],
        "main_allocated": [(s["t"], s["main_system"] - s["main_free"]) for s in r["malloc_samples"]],
        "arenas_held": [(s["t"], s["arenas_system"]) for s in r["malloc_samples"]],
    }
    minutes = int(duration // 60)
    out = {"window_minutes": args.window_minutes, "minutes": minutes, "series": {}}
    print(f"{'series':16} {'max MiB':>8} {'first at s':>10} {'slope MiB/min (last %d min)' % args.window_minutes:>28}"
          f" {'95% CI':>18}")
    for name, pts in series.items():
        pts = [(t, v) for t, v in pts if 0 <= t < duration]
        if not pts:
            continue
        means = []
        for m in range(minutes):
            vals = [v for t, v in pts if m * 60 <= t < (m + 1) * 60]
            means.append(sum(vals) / len(vals) / MIB if vals else None)
        top = max(v for _, v in pts)
        first_top = min(t for t, v in pts if v == top)
        win = [(m + 1, v) for m, v in enumerate(means) if v is not None and m >= minutes - args.window_minutes]
        slope, half = fit([m for m, _ in win], [v for _, v in win])
        out["series"][name] = {
            "per_minute_mean_mib": [round(v, 1) if v is not None else None for v in means],
            "max_mib": round(top / MIB, 1), "max_first_at_s": round(first_top, 1),
            "slope_mib_per_min": round(slope, 3), "slope_ci95_mib_per_min": round(half, 3),
        }
        print(f"{name:16} {top / MIB:8.1f} {first_top:10.0f} {slope:28.3f} "
              f"[{slope - half:+.3f}, {slope + half:+.3f}]")
    print("per-minute means, MiB:")
    names = list(out["series"])
    print("min  " + " ".join(f"{n:>14}" for n in names))
    for m in range(minutes):
        print(f"{m + 1:3}  " + " ".join(
            f"{out['series'][n]['per_minute_mean_mib'][m]:14.1f}" if out['series'][n]['per_minute_mean_mib'][m]
            is not None else f"{'-':>14}" for n in names))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
