#!/usr/bin/env python3
"""Markdown table of loadgen sweeps run.sh wrote: per offered rate, the medians over rounds of the realtime
class's achieved requests/s, goodput, p50 and p99, alone and in the mixed scenario, and the ratio of the
mixed p99 to the p99 alone (the goal: at most 1.5), plus the complex class in the mixed scenario.

Usage: summarize.py DIR ROUNDS
"""

import json
import statistics
import sys


def load(d, name, rounds):
    return [json.load(open(f"{d}/{name}-{r}.json"))["runs"] for r in range(1, rounds + 1)]


def med(runs_by_round, i, cls, *path):
    vals = []
    for runs in runs_by_round:
        v = runs[i]["classes"][cls]
        for p in path:
            v = v[p]
        vals.append(v)
    return statistics.median(vals)


def main():
    d, rounds = sys.argv[1], int(sys.argv[2])
    alone, mixed = load(d, "realtime", rounds), load(d, "mixed", rounds)
    rt, cx = "realtime_recommend", "complex_generate"
    print(f"Medians over {rounds} alternating rounds; latencies in ms.\n")
    print("| offered /s | alone rps | alone goodput | alone p50 | alone p99 | mixed rps | mixed goodput | mixed p50 "
          "| mixed p99 | **p99 mixed / alone** | complex rps | complex TTFT p50 | complex ITL p50 | errors (mixed) |")
    print("| ---: " * 14 + "|")
    for i, run in enumerate(alone[0]):
        a99 = med(alone, i, rt, "latency_ms", "p99")
        m99 = med(mixed, i, rt, "latency_ms", "p99")
        errs = {}
        for runs in mixed:
            for c in runs[i]["classes"].values():
                for k, v in c["errors"].items():
                    errs[k] = errs.get(k, 0) + v
        print(f"| {run['rate_per_s']:g} | {med(alone, i, rt, 'requests_per_s'):.2f} | "
              f"{med(alone, i, rt, 'goodput_per_s'):.2f} | {med(alone, i, rt, 'latency_ms', 'p50'):.0f} | {a99:.0f} | "
              f"{med(mixed, i, rt, 'requests_per_s'):.2f} | {med(mixed, i, rt, 'goodput_per_s'):.2f} | "
              f"{med(mixed, i, rt, 'latency_ms', 'p50'):.0f} | {m99:.0f} | **{m99 / a99 if a99 else float('nan'):.2f}** | "
              f"{med(mixed, i, cx, 'requests_per_s'):.2f} | {med(mixed, i, cx, 'ttft_ms', 'p50'):.0f} | "
              f"{med(mixed, i, cx, 'itl_ms', 'p50'):.1f} | {errs or '-'} |")


if __name__ == "__main__":
    main()
