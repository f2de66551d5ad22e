#!/usr/bin/env python3
"""Latency-versus-throughput curves from loadgen sweeps: one PNG, a panel per class, p50 and p99 latency
(ms, log scale) against achieved requests/s in the order of the offered rates, one line per input file
(label = file name or --labels).

Usage: plot.py --out curves.png sweep_a.json [sweep_b.json ...] [--labels A,B] [--title TEXT]
"""

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--labels", default="")
    ap.add_argument("--title", default="")
    ap.add_argument("sweeps", nargs="+")
    a = ap.parse_args()
    labels = a.labels.split(",") if a.labels else [os.path.splitext(os.path.basename(s))[0] for s in a.sweeps]
    data = [json.load(open(s)) for s in a.sweeps]
    classes = []
    for d in data:
        for r in d["runs"]:
            for c in r["classes"]:
                if c not in classes:
                    classes.append(c)
    fig, axes = plt.subplots(1, len(classes), figsize=(6 * len(classes), 4.5), squeeze=False)
    for ax, cls in zip(axes[0], classes):
        for d, label in zip(data, labels):
            pts = [(r["classes"][cls]["requests_per_s"], r["classes"][cls]["latency_ms"]["p50"],
                    r["classes"][cls]["latency_ms"]["p99"]) for r in d["runs"] if cls in r["classes"]
                   and r["classes"][cls]["ok"] > 0]
            if not pts:
                continue
            x = [p[0] for p in pts]
            line, = ax.plot(x, [p[2] for p in pts], marker="o", label=f"{label} p99")
            ax.plot(x, [p[1] for p in pts], marker="x", linestyle="--", color=line.get_color(), label=f"{label} p50")
        ax.set_yscale("log")
        ax.set_xlabel("achieved requests/s")
        ax.set_ylabel("latency (ms)")
        ax.set_title(cls)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    cpu = data[0].get("cpu", "")
    fig.suptitle((a.title + "\n" if a.title else "") + cpu, fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(a.out)


if __name__ == "__main__":
    main()
