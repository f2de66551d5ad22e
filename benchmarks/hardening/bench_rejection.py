#!/usr/bin/env python3
"""Time to refuse an over-cap Recommend, as a client on loopback sees it (an upper bound on the server's
time), for two inferd binaries side by side: requests alternate between a baseline daemon and the candidate
daemon, both serving the same model with the same config. Prints one row per case: median and p90 ms of
each, and the ratio of medians.

Usage: bench_rejection.py --baseline /work/main/build/bin/inferd --candidate build/bin/inferd \
         --model build/e2e-model --proto-dir proto [--reps 15]
"""

import argparse
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/e2e/python"))
import edge_client_test as support  # noqa: E402  (free_port, generate_stubs, wait_serving, Daemon)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--baseline", required=True)
    p.add_argument("--candidate", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--proto-dir", required=True)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--timeout", type=float, default=120, help="seconds per call")
    args = p.parse_args()
    args.model = os.path.abspath(args.model)
    import grpc  # noqa: PLC0415

    work = tempfile.mkdtemp(prefix="inferd-bench-rej-")
    support.generate_stubs(args.proto_dir, os.path.join(work, "stubs"))
    pb = importlib.import_module("inferd.v1.inferd_pb2")
    rpc = importlib.import_module("inferd.v1.inferd_pb2_grpc")
    daemons, stubs = {}, {}
    try:
        for name, binary in (("baseline", args.baseline), ("candidate", args.candidate)):
            addr = f"127.0.0.1:{support.free_port()}"
            support.ARGS = argparse.Namespace(inferd=binary)
            d = support.Daemon(name, f"""server: {{grpc_address: "{addr}", max_message_bytes: 8MiB}}
metrics: {{address: "127.0.0.1:{support.free_port()}"}}
logging: {{level: warn}}
models:
  - {{name: m, path: {args.model}, num_threads: 1}}
""", work)
            d.start()
            daemons[name] = d
            stub = rpc.InferenceStub(grpc.insecure_channel(addr, options=[
                ("grpc.max_send_message_length", 8 << 20), ("grpc.max_receive_message_length", 8 << 20)]))
            probe = pb.RecommendRequest(context="probe", candidates=[pb.Candidate(item_id=1, text=" x")])
            support.wait_serving(grpc, stub.Recommend, probe, addr, d)
            stubs[name] = stub

        def rec(text, n=1):
            return pb.RecommendRequest(context="The user looked at running shoes.",
                                       candidates=[pb.Candidate(item_id=i + 1, text=text) for i in range(n)])

        cases = [
            ("valid 1 candidate (runs the model)", rec(" trail shoes")),
            ("5k-token candidate (25 KB)", rec(" word" * 5000)),
            ("20k-token candidate (100 KB)", rec(" word" * 20000)),
            ("3.9 MB candidate", rec(" word" * 780000)),
            ("64 candidates x 300 tokens (96 KB, 19.2k tokens)", rec(" word" * 300, 64)),
        ]
        print(f"| case | baseline median ms | baseline p90 | candidate median ms | candidate p90 | "
              f"candidate / baseline | candidate code |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for label, req in cases:
            times = {"baseline": [], "candidate": []}
            codes = {}
            for _ in range(args.reps):
                for name in ("baseline", "candidate"):
                    t0 = time.perf_counter()
                    try:
                        stubs[name].Recommend(req, timeout=args.timeout)
                        codes[name] = "OK"
                    except grpc.RpcError as e:
                        codes[name] = e.code().name  # DEADLINE_EXCEEDED: the time is a lower bound
                    times[name].append((time.perf_counter() - t0) * 1000)
            b, c = statistics.median(times["baseline"]), statistics.median(times["candidate"])
            q = lambda v: sorted(v)[max(0, int(len(v) * 0.9) - 1)]  # noqa: E731
            print(f"| {label} | {b:.1f} | {q(times['baseline']):.1f} | {c:.1f} | {q(times['candidate']):.1f} | "
                  f"{c / b:.3f} | {codes['candidate']} (baseline {codes['baseline']}) |")
    finally:
        for d in daemons.values():
            d.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
