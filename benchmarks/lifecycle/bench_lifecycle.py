#!/usr/bin/env python3
"""Model lifecycle benchmark: an independent Python grpcio client against the real inferd on loopback.

Per round, two daemons in turn over the same checkpoint, models[].warmup on and off (the order alternates by
round: on, off, off, on, ...). For each:
  first:   the first Recommend (8 candidates) and the first Generate (8 tokens) after SERVING, against the median
           of the same request repeated (steady state), as ratios first / median;
  p99:     realtime Recommends (a context of their own each) every 20 ms, closed loop: p99 in steady state, and p99 of those sent while a
           ReloadPool runs (from the request until the replaced model is freed), as a ratio;
  reload:  per quiet ReloadPool (alternating --model and --model-b): switch_seconds (request to switch-over, as
           the daemon measures it), the first Recommend and Generate after it against the steady medians, and the
           load throughput (tensor bytes / (open + copy) from ListPools' phases) against the read bandwidth of
           the same files through read() from the warm page cache, measured just before, as a ratio.

Usage: bench_lifecycle.py --inferd build/bin/inferd --model DIR [--model-b DIR] --proto-dir proto
       [--rounds 2] [--reloads 2] [--repeats 15] [--kv 64MiB] [--json out.json] [--modes on,off]
       [--reload-priority low|idle|normal] [--reload-warmup-threads N] [--first-after switch|freed]
       [--memory-reloads N] [--idle-probe S]
  --first-after freed: the first Recommend after a quiet reload is sent once the replaced model is freed, not
           right after the switch (an experiment: is it the freeing that slows the first request down?).
  --idle-probe S: after the steady requests, --after-repeats Recommends each sent after S idle seconds, against
           the steady median (no reload: does an idle pause alone slow the next request down?).
  --memory-reloads N: after the quiet reloads, N more in a row (alternating --model-b and --model) under the
           realtime loop; after each, once the replaced model is freed: VmRSS and VmLck of the daemon and
           malloc's statistics the daemon logs when it frees a generation (in use, free but retained, mmapped).
"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e", "python"))
import edge_client_test as support  # noqa: E402  (free_port, Daemon)
import lifecycle_client_test as lifecycle  # noqa: E402  (generate_stubs with control.proto)

CONTEXT = "Customer bought a tent, a sleeping bag and trail shoes last week; recommend the next item:"
CANDIDATES = [" a stove", " a lamp", " a rope", " boots", " a map", " a compass", " a water filter", " a jacket"]
PROMPT = "Write a short product description for a lightweight two-person tent:"


def p99(values):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))] if v else float("nan")


def faults(pid):
    """Minor and major page faults of `pid` so far (/proc/PID/stat fields 10 and 12)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[7]), int(fields[9])


def proc_status(pid):
    """VmRSS and VmLck of `pid` in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmLck"):
                out[key] = int(rest.split()[0]) << 10
    return out


MALLOC_LINE = re.compile(r"generation (\d+) freed[^;]*; malloc: ([\d.]+) MiB in use, ([\d.]+) MiB free \(arena "
                         r"([\d.]+) MiB, mmap ([\d.]+) MiB\)")


def malloc_after_free(log_text, generation):
    """The daemon's malloc figures (MiB) logged once `generation` was freed, or None (an older binary)."""
    for m in MALLOC_LINE.finditer(log_text):
        if int(m.group(1)) == generation:
            return {"in_use": float(m.group(2)), "free_retained": float(m.group(3)), "arena": float(m.group(4)),
                    "mmap": float(m.group(5))}
    return None


def phases_of(checkpoint):
    """ListPools' load phases of one checkpoint: {phase name: seconds}."""
    return {p.name: p.seconds for p in checkpoint.phases}


def load_bandwidth(nbytes, phases):
    """Tensor bytes per second of open + copy."""
    return nbytes / (phases["open"] + phases["copy"])


def read_bandwidth(dir_):
    """Bytes/s of read() over the checkpoint's *.safetensors (second of two passes: from the page cache)."""
    files = [os.path.join(dir_, f) for f in sorted(os.listdir(dir_)) if f.endswith(".safetensors")]
    buf = bytearray(64 << 20)
    view = memoryview(buf)
    best = None
    for _ in range(2):
        total, t0 = 0, time.perf_counter()
        for path in files:
            with open(path, "rb", buffering=0) as f:
                while True:
                    n = f.readinto(view)
                    if not n:
                        break
                    total += n
        dt = time.perf_counter() - t0
        best = total / dt
    return best, total


class Client:
    def __init__(self, grpc, pb, rpc, cpb, crpc, addr):
        ch = grpc.insecure_channel(addr)
        # Connected before any request is timed: a product service keeps its channel, so the first request
        # after SERVING measures the daemon, not the client's TCP and HTTP/2 set-up.
        grpc.channel_ready_future(ch).result(timeout=30)
        self.pb, self.cpb = pb, cpb
        self.stub = rpc.InferenceStub(ch)
        self.control = crpc.ControlStub(ch)
        self.n = 0

    def recommend(self):
        # A context of its own each time: every Recommend prefills it (no prefix-cache hits in steady state that
        # the first request after a load could not have).
        self.n += 1
        req = self.pb.RecommendRequest(context=f"Order {self.n}. " + CONTEXT, latency_budget_ms=10000,
                                       encoding=self.pb.RESPONSE_ENCODING_PLAIN,
                                       candidates=[self.pb.Candidate(item_id=i, text=t) for i, t in enumerate(CANDIDATES)])
        t0 = time.perf_counter()
        self.stub.Recommend(req, timeout=60)
        return time.perf_counter() - t0

    def generate(self):
        s = self.pb.SamplingParams(max_tokens=8, ignore_eos=True, temperature=0.0)
        self.n += 1
        t0 = time.perf_counter()
        self.stub.Generate(self.pb.GenerateRequest(prompt=f"Item {self.n}. " + PROMPT, sampling=s), timeout=60)
        return time.perf_counter() - t0

    def pool(self):
        return self.control.ListPools(self.cpb.ListPoolsRequest(), timeout=10).pools[0]

    def wait_freed(self):
        until = time.time() + 120
        while self.pool().draining_generations != 0:
            if time.time() > until:
                raise RuntimeError("replaced model never freed")
            time.sleep(0.02)


def steady(client, repeats):
    rec, gen = [], []
    for _ in range(repeats):
        rec.append(client.recommend())
        gen.append(client.generate())
    return statistics.median(rec), statistics.median(gen)


class RealtimeLoop(threading.Thread):
    """Recommends every 20 ms; (send time, latency) of each."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client, self.samples, self.stop, self.errors = client, [], threading.Event(), 0

    def run(self):
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                self.samples.append((t, self.client.recommend()))
            except Exception:  # noqa: BLE001  (counted: a reload must fail nothing)
                self.errors += 1
            self.stop.wait(0.02)


def realtime_p99_during_reload(args, c, out):
    """Realtime Recommends every 20 ms: p99 steady and during a ReloadPool of the same checkpoint."""
    loop = RealtimeLoop(c)
    loop.start()
    time.sleep(args.steady_seconds)
    t_reload = time.perf_counter()
    r = c.control.ReloadPool(c.cpb.ReloadPoolRequest(pool="m", path=""), timeout=900)
    c.wait_freed()
    t_freed = time.perf_counter()
    time.sleep(0.2)
    loop.stop.set()
    loop.join()
    steady_lat = [lat for t, lat in loop.samples if t < t_reload]
    during = [lat for t, lat in loop.samples if t_reload <= t <= t_freed]
    out.update(p99_steady=p99(steady_lat), p99_during_reload=p99(during), n_steady=len(steady_lat),
               n_during=len(during), p99_ratio=p99(during) / p99(steady_lat), loop_errors=loop.errors,
               loaded_reload_switch_seconds=r.switch_seconds)


def run_daemon(args, mods, warmup, work):
    # Only when asked: a binary from before these keys rejects them.
    reload_keys = "".join(f", {k}: {v}" for k, v in (("reload_priority", args.reload_priority),
                                                      ("reload_warmup_threads", args.reload_warmup_threads)) if v)
    addr = f"127.0.0.1:{support.free_port()}"
    metrics = f"127.0.0.1:{support.free_port()}"
    cfg = f"""server: {{grpc_address: "{addr}", drain_grace_seconds: 1}}
metrics: {{address: "{metrics}"}}
control: {{enabled: true, allowed_addresses: [127.0.0.1], drain_timeout_seconds: 30{reload_keys}}}
models:
  - name: m
    path: {os.path.abspath(args.model)}
    kv_cache: {{memory_bytes: {args.kv}}}
    scheduler: {{realtime_deadline_ms: 10000}}
    warmup: {{enabled: {"true" if warmup else "false"}}}
"""
    d = support.Daemon("bench-" + ("on" if warmup else "off"), cfg, work)
    t0 = time.perf_counter()
    d.start()
    try:
        if not d.wait_log(r"inferd \S+ SERVING", timeout=900):
            raise RuntimeError("never SERVING:\n" + d.text()[-3000:])
        start_s = time.perf_counter() - t0
        c = Client(*mods, addr)
        out = {"warmup": warmup, "start_seconds": start_s}
        first_rec = c.recommend()
        first_gen = c.generate()
        med_rec, med_gen = steady(c, args.repeats)
        out.update(first_recommend=first_rec, first_generate=first_gen, median_recommend=med_rec,
                   median_generate=med_gen, first_recommend_ratio=first_rec / med_rec,
                   first_generate_ratio=first_gen / med_gen)
        if args.idle_probe:
            # The same Recommend after the client and the pool were idle for --idle-probe seconds (no reload): is
            # a first request slow because of the reload, or because the machine went idle before it?
            idle = []
            for _ in range(args.after_repeats):
                time.sleep(args.idle_probe)
                idle.append(c.recommend())
                c.generate()
            out["idle_recommend_ratio"] = statistics.median(idle) / med_rec
            out["idle_recommends"] = idle
        first = c.pool().checkpoint
        out["phases"] = phases_of(first)
        out["residency"] = first.residency
        if args.no_p99:
            out.update(p99_steady=float("nan"), p99_during_reload=float("nan"), n_steady=0, n_during=0,
                       p99_ratio=float("nan"), loop_errors=0, loaded_reload_switch_seconds=float("nan"))
        else:
            realtime_p99_during_reload(args, c, out)
        # Quiet reloads.
        reloads = []
        paths = [args.model_b or args.model, args.model]
        for i in range(args.reloads):
            path = os.path.abspath(paths[i % 2])
            bw, nbytes = read_bandwidth(path)
            t0 = time.perf_counter()
            r = c.control.ReloadPool(c.cpb.ReloadPoolRequest(pool="m", path=path), timeout=900)
            client_switch = time.perf_counter() - t0
            if args.first_after == "freed":
                c.wait_freed()
            f0 = faults(d.proc.pid)
            rec = c.recommend()
            f1 = faults(d.proc.pid)
            gen = c.generate()
            c.wait_freed()
            # Page faults of the first Recommend against those of the next one (same shape, fresh context).
            f2 = faults(d.proc.pid)
            c.recommend()
            f3 = faults(d.proc.pid)
            # The same requests repeated right after (fresh contexts: no prefix-cache or response-cache hits),
            # so the first one is compared with the machine as it is now, not as it was at start-up.
            now_rec, now_gen = steady(c, args.after_repeats)
            ph = phases_of(r.pool.checkpoint)
            load_bw = load_bandwidth(nbytes, ph)
            reloads.append({"switch_seconds": r.switch_seconds, "client_switch_seconds": client_switch,
                            "first_recommend_ratio": rec / med_rec, "first_generate_ratio": gen / med_gen,
                            "first_recommend": rec, "after_median_recommend": now_rec,
                            "first_recommend_faults": [f1[0] - f0[0], f1[1] - f0[1]],
                            "next_recommend_faults": [f3[0] - f2[0], f3[1] - f2[1]],
                            "first_recommend_ratio_after": rec / now_rec, "first_generate_ratio_after": gen / now_gen,
                            "read_bandwidth": bw, "load_bandwidth": load_bw, "load_ratio": load_bw / bw,
                            "bytes": nbytes, "phases": ph})
        out["reloads"] = reloads
        if args.memory_reloads:
            out["memory"] = memory_reloads(args, c, d)
        return out
    finally:
        d.stop()


def memory_reloads(args, c, d):
    """args.memory_reloads reloads in a row under the realtime loop; VmRSS, VmLck, malloc after each."""
    pid = d.proc.pid
    c.wait_freed()
    time.sleep(1.0)
    rows = [dict(reload=0, generation=c.pool().checkpoint.generation, **proc_status(pid))]
    loop = RealtimeLoop(c)
    loop.start()
    paths = [args.model_b or args.model, args.model]
    try:
        for i in range(args.memory_reloads):
            r = c.control.ReloadPool(c.cpb.ReloadPoolRequest(pool="m", path=os.path.abspath(paths[i % 2])),
                                     timeout=900)
            c.wait_freed()
            time.sleep(1.0)
            gen = r.pool.checkpoint.generation
            row = dict(reload=i + 1, generation=gen, switch_seconds=r.switch_seconds, **proc_status(pid))
            row["malloc"] = malloc_after_free(d.text(), gen - 1)
            rows.append(row)
            m = row["malloc"] or {}
            print(f"  memory reload {i + 1}: VmRSS {row['VmRSS'] / 2**20:.1f} MiB, VmLck {row['VmLck'] / 2**20:.1f}"
                  f" MiB; malloc in use {m.get('in_use', float('nan')):.1f} MiB, free retained "
                  f"{m.get('free_retained', float('nan')):.1f} MiB, arena {m.get('arena', float('nan')):.1f} MiB,"
                  f" mmap {m.get('mmap', float('nan')):.1f} MiB; switch {r.switch_seconds:.2f}s", flush=True)
    finally:
        loop.stop.set()
        loop.join()
    print(f"  memory: VmRSS before {rows[0]['VmRSS'] / 2**20:.1f} MiB, after each "
          f"{[round(x['VmRSS'] / 2**20, 1) for x in rows[1:]]} MiB; VmLck before {rows[0]['VmLck'] / 2**20:.1f}, "
          f"after {[round(x['VmLck'] / 2**20, 1) for x in rows[1:]]} MiB; realtime errors {loop.errors}",
          flush=True)
    return {"rows": rows, "errors": loop.errors, "requests": len(loop.samples)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inferd", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--model-b", default="")
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reloads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--steady-seconds", type=float, default=10.0)
    ap.add_argument("--after-repeats", type=int, default=5, help="Recommend/Generate pairs after each reload")
    ap.add_argument("--kv", default="64MiB")
    ap.add_argument("--json", default="")
    ap.add_argument("--modes", default="on,off", help="warm-up modes to run per round: on,off | on | off")
    ap.add_argument("--reload-priority", default="", help="control.reload_priority (default: the daemon's)")
    ap.add_argument("--reload-warmup-threads", default="", help="control.reload_warmup_threads")
    ap.add_argument("--first-after", default="switch", choices=("switch", "freed"),
                    help="send the first Recommend after a quiet reload right after the switch or once freed")
    ap.add_argument("--idle-probe", type=float, default=0.0,
                    help="also time Recommends sent after this many idle seconds (no reload), against the median")
    ap.add_argument("--no-p99", action="store_true", help="skip the realtime p99 during a reload")
    ap.add_argument("--memory-reloads", type=int, default=0, help="reloads in a row with VmRSS/VmLck/malloc")
    args = ap.parse_args()
    support.ARGS = args
    import importlib  # noqa: PLC0415

    import grpc  # noqa: PLC0415

    work = tempfile.mkdtemp(prefix="inferd-bench-lc-")
    lifecycle.generate_stubs(args.proto_dir, os.path.join(work, "stubs"))
    mods = (grpc,) + tuple(importlib.import_module(m) for m in (
        "inferd.v1.inferd_pb2", "inferd.v1.inferd_pb2_grpc", "inferd.v1.control_pb2", "inferd.v1.control_pb2_grpc"))
    runs = []
    for r in range(args.rounds):
        modes = [m == "on" for m in args.modes.split(",")]
        for warm in (modes if r % 2 == 0 else modes[::-1]):
            res = run_daemon(args, mods, warm, work)
            res["round"] = r
            runs.append(res)
            rl = res["reloads"]
            print(f"round {r} warmup {'on ' if warm else 'off'}: start {res['start_seconds']:.2f}s, first/median "
                  f"Recommend {res['first_recommend_ratio']:.2f} ({res['first_recommend'] * 1e3:.1f} / "
                  f"{res['median_recommend'] * 1e3:.1f} ms), Generate {res['first_generate_ratio']:.2f} "
                  f"({res['first_generate'] * 1e3:.1f} / {res['median_generate'] * 1e3:.1f} ms); realtime p99 "
                  f"{res['p99_steady'] * 1e3:.1f} ms steady (n={res['n_steady']}), {res['p99_during_reload'] * 1e3:.1f}"
                  f" ms during reload (n={res['n_during']}, ratio {res['p99_ratio']:.2f}, errors {res['loop_errors']});"
                  f" residency {res['residency']}", flush=True)
            if "idle_recommend_ratio" in res:
                print(f"  Recommend after {args.idle_probe:.1f} s idle / steady median: "
                      f"{res['idle_recommend_ratio']:.2f} (" +
                      ", ".join(f"{v * 1e3:.1f}" for v in res["idle_recommends"]) + " ms)", flush=True)
            for i, x in enumerate(rl):
                print(f"  reload {i}: switch {x['switch_seconds']:.2f}s, first/median Recommend "
                      f"{x['first_recommend_ratio']:.2f}, Generate {x['first_generate_ratio']:.2f}; against the "
                      f"median right after: Recommend {x['first_recommend_ratio_after']:.2f} "
                      f"({x['first_recommend'] * 1e3:.1f} / {x['after_median_recommend'] * 1e3:.1f} ms), Generate "
                      f"{x['first_generate_ratio_after']:.2f}; load "
                      f"{x['load_bandwidth'] / 2**20:.0f} MiB/s vs read {x['read_bandwidth'] / 2**20:.0f} MiB/s "
                      f"(ratio {x['load_ratio']:.2f}; open {x['phases']['open']:.3f}s copy {x['phases']['copy']:.3f}s"
                      f" of {x['bytes'] / 2**20:.0f} MiB)", flush=True)
    for warm in (True, False):
        rl = [x for res in runs if res["warmup"] == warm for x in res["reloads"]]
        if not rl:
            continue
        for key, what in (("first_recommend_ratio_after", "first Recommend after a reload / median right after"),
                          ("first_generate_ratio_after", "first Generate after a reload / median right after"),
                          ("first_recommend_ratio", "first Recommend after a reload / steady median at start"),
                          ("load_ratio", "load / read bandwidth"), ("switch_seconds", "switch_seconds")):
            v = sorted(x[key] for x in rl)
            print(f"warmup {'on ' if warm else 'off'} {what}: median {statistics.median(v):.2f}, min {v[0]:.2f}, "
                  f"max {v[-1]:.2f} (n = {len(v)})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
