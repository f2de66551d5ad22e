#!/usr/bin/env python3
"""Device-to-device copy bandwidth of the current CUDA device (the ceiling batch-1 decode is held against).

    python3 benchmarks/gpu/d2d_bandwidth.py [--gib 4] [--repeats 20] [--json OUT]

Copies a --gib GiB buffer into another with torch (cudaMemcpyAsync device to device), timed with CUDA events
after 3 warm-ups; reports the median of --repeats copies as bytes read + bytes written per second (the
convention of the H200's 4.8 TB/s datasheet figure and of KINDS.md's 4.3 TB/s reading). Exits 2 without a
CUDA device.
"""
import argparse
import json
import statistics
import sys

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("d2d_bandwidth: no CUDA device", file=sys.stderr)
        return 2
    n = int(a.gib * (1 << 30))
    src = torch.empty(n, dtype=torch.uint8, device="cuda")
    src.fill_(1)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    secs = []
    for _ in range(a.repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        secs.append(start.elapsed_time(end) / 1e3)
    med = statistics.median(secs)
    result = {
        "device": torch.cuda.get_device_name(),
        "bytes_copied": n,
        "median_s": med,
        "read_plus_write_bytes_per_s": 2 * n / med,
        "seconds": secs,
    }
    print(f"{result['device']}: {2 * n / med / 1e12:.3f} TB/s (read + write), {a.gib} GiB copy, "
          f"median of {a.repeats}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
