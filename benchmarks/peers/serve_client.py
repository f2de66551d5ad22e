#!/usr/bin/env python3
"""Closed-loop streamed generation against llama-server (HTTP, /completion with server-sent events) or
inferd (gRPC, inferd.v1.Inference/GenerateStream), with the same prompts on both.

Usage:
    serve_client.py --backend llama|inferd --target 127.0.0.1:PORT --concurrency C --duration S
                    [--warmup 3] [--prompt-tokens 128] [--max-tokens 32] [--vocab 32256] [--seed 1]
                    [--proto-dir proto] [--out FILE]

C threads each send one request at a time, back to back, until --warmup + --duration seconds have passed
(a request in flight then still finishes). Request k of thread t has --prompt-tokens token ids
drawn from [100, vocab) by a generator seeded with (seed, t, k), so both backends see the same prompts
in the same order; greedy, --max-tokens generated tokens with end-of-sequence ignored, no prompt cache
reuse (every prompt differs). TTFT = time from sending to the first streamed token; latency = time to
the last message. Output JSON: requests, errors, requests_per_s (requests completed inside the measured
window, the --duration seconds after the warm-up, per second), tokens_per_s (tokens streamed inside that
window per second, whenever their request was sent, so a request longer than the window still counts),
ttft_ms and latency_ms as p50/p90/p99/max of the requests sent inside the window, the load average before
and after. Exit status 1 on any error or when no token arrived inside the window.
"""

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e", "python"))


def prompt_ids(seed, thread, k, n, vocab):
    rng = random.Random((seed * 1000003 + thread) * 1000003 + k)
    return [rng.randrange(100, vocab) for _ in range(n)]


class LlamaServer:
    """POST /completion with stream=true; each `data: {...}` event carries one token's content."""

    def __init__(self, target):
        host, port = target.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def connect(self):
        return None  # one HTTP connection per request: llama-server closes a connection after a streamed response

    def run(self, _, ids, max_tokens):
        body = json.dumps({"prompt": ids, "n_predict": max_tokens, "stream": True, "temperature": 0.0,
                           "top_k": 1, "ignore_eos": True, "cache_prompt": False, "samplers": ["top_k"]})
        start = time.perf_counter()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        try:
            return self._stream(conn, body, start)
        finally:
            conn.close()

    def _stream(self, conn, body, start):
        conn.request("POST", "/completion", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            msg = resp.read()[:200]
            raise RuntimeError(f"HTTP {resp.status}: {msg!r}")
        first, tokens, arrivals = None, 0, []
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            ev = json.loads(line[6:])
            if ev.get("stop"):
                tokens = int(ev.get("tokens_predicted", tokens))
                break
            now = time.perf_counter()
            if first is None:
                first = now
            tokens += 1
            arrivals.append((now, 1))
        end = time.perf_counter()
        resp.read()
        return first - start if first else end - start, end - start, tokens, arrivals


class Inferd:
    def __init__(self, target, proto_dir):
        import edge_client_test as support  # noqa: PLC0415  (generate_stubs)

        support.generate_stubs(proto_dir, tempfile.mkdtemp(prefix="serve-client-stubs-"))
        import grpc  # noqa: PLC0415
        from inferd.v1 import inferd_pb2 as pb, inferd_pb2_grpc as pb_grpc  # noqa: PLC0415

        self.pb = pb
        self.stub = pb_grpc.InferenceStub(grpc.insecure_channel(target))

    def connect(self):
        return None

    def run(self, _conn, ids, max_tokens):
        pb = self.pb
        req = pb.GenerateRequest(prompt_token_ids=pb.TokenIds(ids=ids),
                                 sampling=pb.SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True))
        start = time.perf_counter()
        first, tokens, arrivals = None, 0, []
        for delta in self.stub.GenerateStream(req, timeout=600):
            if not delta.tokens:
                continue
            now = time.perf_counter()
            if first is None:
                first = now
            tokens += len(delta.tokens)
            arrivals.append((now, len(delta.tokens)))
        end = time.perf_counter()
        return first - start if first else end - start, end - start, tokens, arrivals


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["llama", "inferd"], required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=32256)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--proto-dir", default="proto")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.concurrency < 1 or a.duration <= 0 or a.prompt_tokens < 1 or a.max_tokens < 1 or a.vocab <= 100:
        ap.error("--concurrency, --duration, --prompt-tokens, --max-tokens must be positive; --vocab > 100")

    backend = LlamaServer(a.target) if a.backend == "llama" else Inferd(a.target, a.proto_dir)
    load_before = loadavg()
    t0 = time.perf_counter()
    measure_from, stop_at = t0 + a.warmup, t0 + a.warmup + a.duration
    lock = threading.Lock()
    done, errors, arrivals = [], [], []  # arrivals: (perf_counter, tokens) of every streamed delta

    def worker(t):
        conn = backend.connect()
        k = 0
        while True:
            sent = time.perf_counter()
            if sent >= stop_at:
                break
            ids = prompt_ids(a.seed, t, k, a.prompt_tokens, a.vocab)
            k += 1
            try:
                ttft, latency, tokens, got = backend.run(conn, ids, a.max_tokens)
            except Exception as e:  # noqa: BLE001  (counted and reported by kind)
                with lock:
                    errors.append(f"{type(e).__name__}: {str(e)[:120]}")
                if conn is not None:
                    conn.close()
                    conn = backend.connect()
                continue
            with lock:
                arrivals.extend(got)
                done.append((sent, sent + latency, ttft, latency, tokens))

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(a.concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # Throughput counts what arrived inside the window [measure_from, stop_at) whenever its request was sent, so
    # requests longer than the window still count their share; latencies are of the requests sent inside it.
    window = stop_at - measure_from
    inside = lambda t: measure_from <= t < stop_at  # noqa: E731
    window_tokens = sum(n for t, n in arrivals if inside(t))
    completed = [d for d in done if inside(d[1])]
    timed = [d for d in done if inside(d[0])]
    ttfts = [d[2] * 1e3 for d in timed]
    lats = [d[3] * 1e3 for d in timed]
    result = {
        "backend": a.backend, "target": a.target, "concurrency": a.concurrency, "duration_s": a.duration,
        "warmup_s": a.warmup, "prompt_tokens": a.prompt_tokens, "max_tokens": a.max_tokens, "seed": a.seed,
        "requests": len(done), "requests_timed": len(timed), "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "window_s": window, "requests_per_s": len(completed) / window, "tokens_per_s": window_tokens / window,
        "generated_tokens_per_request": (sum(d[4] for d in done) / len(done)) if done else 0,
        "ttft_ms": {p: pct(ttfts, q) for p, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "latency_ms": {p: pct(lats, q) for p, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "loadavg_before": load_before, "loadavg_after": loadavg(),
    }
    text = json.dumps(result, indent=2)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 1 if errors or not window_tokens else 0


if __name__ == "__main__":
    sys.exit(main())
