#!/usr/bin/env python3
"""First Recommend after a quiet reload against the next ones, with the daemon's step and freeing log lines.

Usage: probe_first_after_reload.py [--inferd build/bin/inferd] [--model models/default] [--reloads 10]
       [--pre none|sleep|freed|generate] [--steps]
"""
import os, sys, time, re, tempfile, importlib, argparse
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e", "python"))
import bench_lifecycle as bl
import edge_client_test as support
import lifecycle_client_test as lifecycle
import grpc
ap = argparse.ArgumentParser()
ap.add_argument("--inferd", default="build/bin/inferd")
ap.add_argument("--model", default="models/default")
ap.add_argument("--reloads", type=int, default=3)
ap.add_argument("--n", type=int, default=6)
ap.add_argument("--warmup", default="true")
ap.add_argument("--steps", action="store_true")
ap.add_argument("--pre", default="")
a = ap.parse_args()
support.ARGS = argparse.Namespace(inferd=os.path.abspath(a.inferd), proto_dir="proto")
work = tempfile.mkdtemp(prefix="probe-")
lifecycle.generate_stubs("proto", os.path.join(work, "stubs"))
mods = (grpc,) + tuple(importlib.import_module(m) for m in (
    "inferd.v1.inferd_pb2", "inferd.v1.inferd_pb2_grpc", "inferd.v1.control_pb2", "inferd.v1.control_pb2_grpc"))
addr = f"127.0.0.1:{support.free_port()}"
cfg = f"""server: {{grpc_address: "{addr}", drain_grace_seconds: 1}}
metrics: {{address: "127.0.0.1:{support.free_port()}"}}
control: {{enabled: true, allowed_addresses: [127.0.0.1], drain_timeout_seconds: 30, reload_priority: normal}}
models:
  - name: m
    path: {os.path.abspath(a.model)}
    kv_cache: {{memory_bytes: 64MiB}}
    scheduler: {{realtime_deadline_ms: 10000}}
    warmup: {{enabled: {a.warmup}}}
"""
d = support.Daemon("probe", cfg, work)
d.start()
try:
    assert d.wait_log(r"inferd \S+ SERVING", timeout=300), d.text()[-2000:]
    c = bl.Client(*mods, addr)
    def series(label):
        import datetime
        lat = []
        for _ in range(a.n):
            t = datetime.datetime.now(datetime.UTC).strftime("%H:%M:%S.%f")[:-3]
            lat.append(c.recommend() * 1e3)
            if len(lat) == 1: sent = t
        print("  first sent", sent)
        import statistics
        r = lat[0] / statistics.median(lat[1:])
        ratios.append(r)
        c.wait_freed()
        rss = [l for l in open(f"/proc/{d.proc.pid}/status") if l.startswith("VmRSS")][0].split()[1]
        print(label, f"rss {int(rss) >> 10} MiB ratio {r:.2f} |", " ".join(f"{x:.1f}" for x in lat), flush=True)
    ratios = []
    series("start ")
    for i in range(a.reloads):
        c.control.ReloadPool(c.cpb.ReloadPoolRequest(pool="m", path=""), timeout=900)
        if a.pre == "sleep":
            time.sleep(1.0)
        elif a.pre == "freed":
            c.wait_freed()
        elif a.pre == "generate":
            t = time.perf_counter(); c.generate(); print("  generate first", f"{(time.perf_counter()-t)*1e3:.1f}")
        series(f"reload{i}")
    import statistics
    print("median ratio after reloads", f"{statistics.median(ratios[1:]):.2f}", "within 1.2:", sum(r <= 1.2 for r in ratios[1:]), "of", len(ratios) - 1)
    for line in (d.text().splitlines() if a.steps else []):
        if "freed" in line or "switched" in line or ("serving step 2:" in line) or ("serving step 1:" in line):
            print(line[11:200])
    if a.steps:
        for line in d.text().splitlines():
            if "serving step" in line and "finished" in line or "prefill" in line and "serving step" in line:
                print(line[24:])
finally:
    d.stop()
