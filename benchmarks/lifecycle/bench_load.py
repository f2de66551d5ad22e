#!/usr/bin/env python3
"""Load throughput A/B: two inferd binaries (a baseline and a new loader) over the same checkpoint, side by side.

Per round, each binary in turn (A B, then B A, ...): a daemon with warm-up off and Control on, then --reloads
quiet ReloadPools (alternating --model and --model-b). For each load (the start-up one and every reload): the
load throughput, checkpoint tensor bytes / (open + copy) from ListPools' phases, against the read bandwidth of
the same *.safetensors files through read() into a reused 64 MiB buffer from the warm page cache, measured
just before that load in the same run (bench_lifecycle.read_bandwidth), as a ratio (goal: at least 0.8).

Usage: bench_load.py --inferd-a OLD --inferd-b NEW --model DIR [--model-b DIR] --proto-dir proto
       [--rounds 2] [--reloads 3] [--kv 64MiB] [--json out.json] [--reload-priority-b normal]
       [--reload-priority-a normal]
"""

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e", "python"))
import bench_lifecycle as bl  # noqa: E402
import edge_client_test as support  # noqa: E402
import lifecycle_client_test as lifecycle  # noqa: E402


def run_binary(args, mods, inferd, label, work):
    grpc, pb, rpc, cpb, crpc = mods
    addr = f"127.0.0.1:{support.free_port()}"
    # A's only when asked (A may predate the key). A quiet reload has nothing to yield to: compare the loaders at
    # the same priority (--reload-priority-a normal for an A that has the key, whose default is low).
    prio = args.reload_priority_b if label == "B" else args.reload_priority_a
    extra = f", reload_priority: {prio}" if prio else ""
    cfg = f"""server: {{grpc_address: "{addr}", drain_grace_seconds: 1}}
metrics: {{address: "127.0.0.1:{support.free_port()}"}}
control: {{enabled: true, allowed_addresses: [127.0.0.1], drain_timeout_seconds: 30{extra}}}
models:
  - name: m
    path: {os.path.abspath(args.model)}
    kv_cache: {{memory_bytes: {args.kv}}}
    warmup: {{enabled: false}}
"""
    support.ARGS.inferd = inferd
    d = support.Daemon("load-" + label, cfg, work)
    bw, nbytes = bl.read_bandwidth(os.path.abspath(args.model))
    d.start()
    loads = []
    try:
        if not d.wait_log(r"inferd \S+ SERVING", timeout=900):
            raise RuntimeError("never SERVING:\n" + d.text()[-3000:])
        c = bl.Client(grpc, pb, rpc, cpb, crpc, addr)
        ph = bl.phases_of(c.pool().checkpoint)
        loads.append({"kind": "start", "read_bandwidth": bw, "bytes": nbytes, "phases": ph})
        paths = [args.model_b or args.model, args.model]
        for i in range(args.reloads):
            path = os.path.abspath(paths[i % 2])
            bw, nbytes = bl.read_bandwidth(path)
            r = c.control.ReloadPool(c.cpb.ReloadPoolRequest(pool="m", path=path), timeout=900)
            c.wait_freed()
            loads.append({"kind": "reload", "read_bandwidth": bw, "bytes": nbytes,
                          "phases": bl.phases_of(r.pool.checkpoint), "switch_seconds": r.switch_seconds})
    finally:
        d.stop()
    for x in loads:
        x["load_bandwidth"] = bl.load_bandwidth(x["bytes"], x["phases"])
        x["ratio"] = x["load_bandwidth"] / x["read_bandwidth"]
    return loads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inferd-a", required=True, help="baseline binary")
    ap.add_argument("--inferd-b", required=True, help="new binary")
    ap.add_argument("--model", required=True)
    ap.add_argument("--model-b", default="")
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reloads", type=int, default=3)
    ap.add_argument("--kv", default="64MiB")
    ap.add_argument("--json", default="")
    ap.add_argument("--reload-priority-b", default="normal", help="B's control.reload_priority ('' = its default)")
    ap.add_argument("--reload-priority-a", default="", help="A's control.reload_priority ('' = its default: a "
                    "binary from before the key rejects it; one with it defaults to low)")
    args = ap.parse_args()
    support.ARGS = argparse.Namespace(inferd=args.inferd_a)
    import grpc  # noqa: PLC0415

    work = tempfile.mkdtemp(prefix="inferd-bench-load-")
    lifecycle.generate_stubs(args.proto_dir, os.path.join(work, "stubs"))
    mods = (grpc,) + tuple(importlib.import_module(m) for m in (
        "inferd.v1.inferd_pb2", "inferd.v1.inferd_pb2_grpc", "inferd.v1.control_pb2", "inferd.v1.control_pb2_grpc"))
    runs = {"A": [], "B": []}
    for r in range(args.rounds):
        for label in (("A", "B") if r % 2 == 0 else ("B", "A")):
            inferd = args.inferd_a if label == "A" else args.inferd_b
            loads = run_binary(args, mods, inferd, label, work)
            runs[label].extend(loads)
            for x in loads:
                print(f"round {r} {label} {x['kind']:6}: load {x['load_bandwidth'] / 2**20:7.0f} MiB/s vs read "
                      f"{x['read_bandwidth'] / 2**20:6.0f} MiB/s, ratio {x['ratio']:.2f} (open {x['phases']['open']:.3f}s"
                      f" copy {x['phases']['copy']:.3f}s of {x['bytes'] / 2**20:.0f} MiB"
                      + (f", switch {x['switch_seconds']:.2f}s" if "switch_seconds" in x else "") + ")", flush=True)
    for label in ("A", "B"):
        xs = runs[label]
        print(f"{label}: median load {statistics.median(x['load_bandwidth'] for x in xs) / 2**20:.0f} MiB/s, "
              f"median read {statistics.median(x['read_bandwidth'] for x in xs) / 2**20:.0f} MiB/s, median ratio "
              f"{statistics.median(x['ratio'] for x in xs):.2f}, min ratio {min(x['ratio'] for x in xs):.2f} "
              f"(n = {len(xs)}); median open + copy {statistics.median(x['phases']['open'] + x['phases']['copy'] for x in xs):.3f}s"
              + (f", median switch {statistics.median(x['switch_seconds'] for x in xs if 'switch_seconds' in x):.2f}s"
                 if any("switch_seconds" in x for x in xs) else ""), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
