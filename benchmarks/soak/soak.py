#!/usr/bin/env python3
"""Soak: the real inferd under mixed traffic at a fraction of its measured capacity, every request accounted for.

Starts the daemon itself (grpc and metrics on free loopback ports), measures capacity with a closed loop of
--concurrency clients sending the mix for --capacity-seconds, then sends the mix open-loop (Poisson arrivals)
at --load x capacity for --duration seconds. The mix: Recommend (4 candidates), greedy and sampled unary
Generate, GenerateStream, a stream cancelled after its first delta, a Generate with a deadline it may miss,
and Feedback naming an earlier request. Every request ends in exactly one recorded outcome; an outcome the mix
does not allow (anything but OK, CANCELLED for cancels, DEADLINE_EXCEEDED for deadline requests,
RESOURCE_EXHAUSTED refusals) counts as unexpected. Resident memory (VmRSS, and the part in glibc's non-main
malloc arenas from /proc/PID/smaps) is sampled every --sample-seconds.

Usage (benchmarks/soak/RESULTS.md):
  .venv/bin/python benchmarks/soak/soak.py --inferd build/bin/inferd --model build/e2e-model \
      --proto-dir proto --duration 600 --load 0.9 --out /tmp/soak.json
  --rate R skips the capacity phase and sends R requests/s; --env K=V sets daemon environment variables;
  --malloc-stats also samples glibc's malloc statistics inside the daemon (malloc_stats.c, LD_PRELOAD).
Exit status 0 when nothing was lost and nothing unexpected came back.
"""

import argparse
import importlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests/e2e/python"))
import edge_client_test as support  # noqa: E402  (free_port, generate_stubs, wait_serving)

ARENA_ALIGN = 64 << 20  # glibc non-main arena heaps: HEAP_MAX_SIZE-aligned mappings of at most 64 MiB

KINDS = (  # (name, weight, outcomes allowed besides OK and RESOURCE_EXHAUSTED)
    ("recommend", 40, ()),
    ("generate_greedy", 15, ()),
    ("generate_sampled", 15, ()),
    ("stream", 15, ()),
    ("cancel", 5, ("CANCELLED",)),
    ("deadline", 5, ("DEADLINE_EXCEEDED",)),
    ("feedback", 5, ()),
)
ALLOWED = {name: set(extra) | {"OK", "RESOURCE_EXHAUSTED"} for name, _, extra in KINDS}
WORDS = ("tent", "stove", "lamp", "boots", "socks", "mug", "knife", "pan", "jacket", "map", "rope", "bag")


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def memory(pid):
    """(VmRSS bytes, RSS bytes in non-main malloc arena heaps, threads) of `pid`."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    arena = 0
    start = end = None
    named = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(\S*)", line)
            if m:
                start, end, named = int(m.group(1), 16), int(m.group(2), 16), bool(m.group(3))
                continue
            if line.startswith("Rss:") and start is not None and not named:
                # An arena heap: the first mapping of a 64 MiB-aligned reservation (read-write part).
                if start % ARENA_ALIGN == 0 and end - start <= ARENA_ALIGN:
                    arena += int(line.split()[1]) * 1024
    return rss, arena, threads


class Client:
    def __init__(self, grpc, pb, rpc, addr, seed):
        self.grpc, self.pb = grpc, pb
        self.stub = rpc.InferenceStub(grpc.insecure_channel(addr))
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.recent_ids = []

    def text(self, n):
        with self.lock:
            return " ".join(self.rng.choice(WORDS) for _ in range(n))

    def remember(self, request_id):
        with self.lock:
            self.recent_ids.append(request_id)
            del self.recent_ids[:-64]

    def one(self, kind, seq):
        """Runs one request of `kind`; returns the gRPC code name."""
        pb = self.pb
        rid = f"soak-{seq}"
        try:
            if kind == "recommend":
                cands = [pb.Candidate(item_id=i + 1, text=" " + self.text(2)) for i in range(4)]
                self.stub.Recommend(pb.RecommendRequest(context="Customer bought " + self.text(6), candidates=cands,
                                                        top_k=2, request_id=rid), timeout=30)
                self.remember(rid)
            elif kind in ("generate_greedy", "generate_sampled", "deadline"):
                s = pb.SamplingParams(max_tokens=16, ignore_eos=True)
                if kind == "generate_sampled":
                    s = pb.SamplingParams(max_tokens=16, ignore_eos=True, temperature=0.8, top_p=0.9, seed=seq)
                if kind == "deadline":
                    s = pb.SamplingParams(max_tokens=64, ignore_eos=True)
                timeout = 0.15 if kind == "deadline" else 60
                self.stub.Generate(pb.GenerateRequest(prompt="Describe " + self.text(8), sampling=s, request_id=rid),
                                   timeout=timeout)
                self.remember(rid)
            elif kind in ("stream", "cancel"):
                s = pb.SamplingParams(max_tokens=24, ignore_eos=True)
                call = self.stub.GenerateStream(pb.GenerateRequest(prompt="Write about " + self.text(8), sampling=s,
                                                                   request_id=rid), timeout=60)
                for _ in call:
                    if kind == "cancel":
                        call.cancel()
                        break
                if kind == "cancel":
                    return "CANCELLED"
            elif kind == "feedback":
                with self.lock:
                    target = self.rng.choice(self.recent_ids) if self.recent_ids else "soak-none"
                self.stub.Feedback(pb.FeedbackRequest(request_id=target, click=True), timeout=10)
            return "OK"
        except self.grpc.RpcError as e:
            return e.code().name


def pick(rng):
    total = sum(w for _, w, _ in KINDS)
    x = rng.uniform(0, total)
    for name, w, _ in KINDS:
        if x < w:
            return name
        x -= w
    return KINDS[-1][0]


def measure_capacity(client, concurrency, seconds):
    stop = time.monotonic() + seconds
    done = [0]
    lock = threading.Lock()

    def worker(w):
        rng = random.Random(1000 + w)
        seq = w * 10_000_000
        while time.monotonic() < stop:
            seq += 1
            client.one(pick(rng), seq)
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0] / (time.monotonic() - t0)


def scrape(metrics_addr):
    with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=10) as r:
        return r.read().decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inferd", required=True, type=os.path.abspath)
    ap.add_argument("--model", required=True, type=os.path.abspath)
    ap.add_argument("--proto-dir", default=os.path.join(ROOT, "proto"))
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--load", type=float, default=0.9)
    ap.add_argument("--rate", type=float, default=0, help="requests/s; skips the capacity phase")
    ap.add_argument("--capacity-seconds", type=float, default=60)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--sample-seconds", type=float, default=5)
    ap.add_argument("--warmup-seconds", type=float, default=120, help="memory bound measured after this")
    ap.add_argument("--env", action="append", default=[], help="K=V for the daemon")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--malloc-stats", action="store_true",
                    help="sample malloc_info/mallinfo2 in the daemon every --sample-seconds (malloc_stats.c)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    import grpc  # noqa: PLC0415

    work = tempfile.mkdtemp(prefix="inferd-soak-")
    support.generate_stubs(args.proto_dir, os.path.join(work, "stubs"))
    pb = importlib.import_module("inferd.v1.inferd_pb2")
    rpc = importlib.import_module("inferd.v1.inferd_pb2_grpc")
    addr, maddr = f"127.0.0.1:{support.free_port()}", f"127.0.0.1:{support.free_port()}"
    cfg = os.path.join(work, "soak.yaml")
    with open(cfg, "w") as f:
        f.write(f"""server: {{grpc_address: "{addr}", drain_grace_seconds: 5}}
metrics: {{address: "{maddr}"}}
models:
  - {{name: default, path: {args.model}, scheduler: {{realtime_deadline_ms: 10000}}}}
""")
    env = dict(os.environ)
    for kv in args.env:
        k, v = kv.split("=", 1)
        env[k] = v
    mstats = os.path.join(work, "malloc.jsonl")
    if args.malloc_stats:
        lib = os.path.join(work, "libmalloc_stats.so")
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", lib,
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "malloc_stats.c"), "-lpthread"],
                       check=True)
        env["LD_PRELOAD"] = lib + (":" + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
        env["INFERD_MALLOC_STATS"] = mstats
        env["INFERD_MALLOC_STATS_MS"] = str(int(args.sample_seconds * 1000))
    log = open(os.path.join(work, "inferd.log"), "w")
    proc = subprocess.Popen([args.inferd, "--config", cfg], stdout=log, stderr=subprocess.STDOUT, env=env)

    class D:  # what support.wait_serving needs
        pass

    d = D()
    d.proc = proc
    d.text = lambda: open(os.path.join(work, "inferd.log")).read()
    result = {"env": args.env, "load": args.load, "duration_s": args.duration}
    try:
        client = Client(grpc, pb, rpc, addr, args.seed)
        support.wait_serving(grpc, client.stub.Generate,
                             pb.GenerateRequest(prompt="probe", sampling=pb.SamplingParams(max_tokens=1)), addr, d)
        result["rss_serving_bytes"] = memory(proc.pid)[0]
        if args.rate > 0:
            rate = args.rate
        else:
            cap = measure_capacity(client, args.concurrency, args.capacity_seconds)
            result["capacity_rps"] = cap
            rate = cap * args.load
            print(f"capacity {cap:.2f} req/s (closed loop, {args.concurrency} clients); soak at {rate:.2f} req/s",
                  flush=True)
        result["rate_rps"] = rate

        records = []  # (kind, start offset s, latency s, code)
        rec_lock = threading.Lock()
        samples = []
        submitted = [0]
        stop_sampling = threading.Event()

        sample_t0 = time.monotonic()

        def sampler():
            t0 = sample_t0
            while not stop_sampling.is_set():
                rss, arena, threads = memory(proc.pid)
                samples.append({"t": time.monotonic() - t0, "rss": rss, "arena": arena, "threads": threads})
                stop_sampling.wait(args.sample_seconds)

        def run(kind, seq, t_start, offset):
            code = client.one(kind, seq)
            with rec_lock:
                records.append((kind, offset, time.monotonic() - t_start, code))

        st = threading.Thread(target=sampler)
        st.start()
        rng = random.Random(args.seed)
        pool = ThreadPoolExecutor(max_workers=256)
        t0 = time.monotonic()
        next_t = t0
        seq = 0
        while True:
            next_t += rng.expovariate(rate)
            if next_t - t0 >= args.duration:
                break
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            seq += 1
            submitted[0] += 1
            pool.submit(run, pick(rng), seq, time.monotonic(), next_t - t0)
        pool.shutdown(wait=True)
        stop_sampling.set()
        st.join()

        counts = {}
        unexpected = {}
        for kind, _, _, code in records:
            counts.setdefault(kind, {}).setdefault(code, 0)
            counts[kind][code] += 1
            if code not in ALLOWED[kind]:
                unexpected[f"{kind}:{code}"] = unexpected.get(f"{kind}:{code}", 0) + 1
        malloc_samples = []
        if args.malloc_stats and os.path.exists(mstats):
            with open(mstats) as f:
                for line in f:
                    s = json.loads(line)
                    s["t"] = round(s.pop("mono") - sample_t0, 3)
                    malloc_samples.append(s)
        minutes = int(args.duration // 60)
        per_minute = []
        for m in range(max(minutes, 1)):
            lo, hi = m * 60, (m + 1) * 60
            row = {"minute": m + 1}
            for group, kinds in (("recommend", ("recommend",)),
                                 ("generate", ("generate_greedy", "generate_sampled", "stream"))):
                lat = [r[2] for r in records if r[0] in kinds and r[3] == "OK" and lo <= r[1] < hi]
                row[f"{group}_n"] = len(lat)
                row[f"{group}_p50_ms"] = round(1000 * percentile(lat, 50), 1) if lat else None
                row[f"{group}_p99_ms"] = round(1000 * percentile(lat, 99), 1) if lat else None
            mem = [s["rss"] for s in samples if lo <= s["t"] < hi]
            arena = [s["arena"] for s in samples if lo <= s["t"] < hi]
            row["rss_max_mib"] = round(max(mem) / 2**20, 1) if mem else None
            row["arena_max_mib"] = round(max(arena) / 2**20, 1) if arena else None
            mal = [s for s in malloc_samples if lo <= s["t"] < hi]
            if mal:
                last = mal[-1]
                row["main_heap_mib"] = round(last["main_system"] / 2**20, 1)
                row["main_heap_allocated_mib"] = round((last["main_system"] - last["main_free"]) / 2**20, 1)
                row["arenas_mib"] = round(last["arenas_system"] / 2**20, 1)
                row["arenas_allocated_mib"] = round((last["arenas_system"] - last["arenas_free"]) / 2**20, 1)
                row["mmapped_mib"] = round(last["mmapped"] / 2**20, 1)
                row["in_use_mib"] = round(last["in_use"] / 2**20, 1)
            per_minute.append(row)
        after = [s["rss"] for s in samples if s["t"] >= args.warmup_seconds]
        at_warm = [s["rss"] for s in samples if s["t"] < args.warmup_seconds]
        result.update({
            "submitted": submitted[0],
            "recorded": len(records),
            "lost": submitted[0] - len(records),
            "outcomes": counts,
            "unexpected": unexpected,
            "per_minute": per_minute,
            "rss_after_warmup_min_mib": round(min(after) / 2**20, 1) if after else None,
            "rss_after_warmup_max_mib": round(max(after) / 2**20, 1) if after else None,
            "rss_warmup_max_mib": round(max(at_warm) / 2**20, 1) if at_warm else None,
            "rss_end_mib": round(samples[-1]["rss"] / 2**20, 1) if samples else None,
            "threads_end": samples[-1]["threads"] if samples else None,
            "samples": samples,
            "malloc_samples": malloc_samples,
        })
        try:
            text = scrape(maddr)
            result["server_requests_total"] = sum(
                float(v) for v in re.findall(r"^inferd_requests_total\{[^}]*\} (\S+)$", text, re.M))
        except OSError as e:
            result["server_requests_total"] = f"scrape failed: {e}"
        try:
            result["loadavg"] = open("/proc/loadavg").read().split()[:3]
        except OSError:
            pass
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        result["daemon_exit"] = proc.returncode
        log.close()
        shutil.rmtree(work, ignore_errors=True)

    brief = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(brief, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if result.get("lost", 1) == 0 and not result.get("unexpected") else 1


if __name__ == "__main__":
    sys.exit(main())
