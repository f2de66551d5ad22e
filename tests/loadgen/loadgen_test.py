#!/usr/bin/env python3
"""loadgen against stand-in servers (Python grpcio with stubs generated from proto/ at test time), so its
accounting is checked against counts the test controls: every request a server answers is counted once,
by class and code; a server that never answers makes every request in flight at the end "lost" and the run
exit 3; a bad scenario is rejected naming the key.

Usage: loadgen_test.py --loadgen build/bin/loadgen --proto-dir proto --scenarios benchmarks/loadgen/scenarios
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e", "python"))
import edge_client_test as support  # noqa: E402  (free_port, generate_stubs)

ARGS = None


class StandIn:
    """Inference service answering Recommend OK (or never, with hang=True), Generate with `tokens` tokens
    in one response, GenerateStream with one delta per token, and refusing every 5th Recommend with
    RESOURCE_EXHAUSTED (refuse_every)."""

    def __init__(self, pb, pb_grpc, hang=False, refuse_every=0):
        import grpc  # noqa: PLC0415

        self.grpc, self.pb = grpc, pb
        self.hang, self.refuse_every = hang, refuse_every
        self.lock = threading.Lock()
        self.recommends = self.refused = self.generates = self.streams = 0
        self.release = threading.Event()
        outer = self

        class Servicer(pb_grpc.InferenceServicer):
            def Recommend(self, request, context):
                with outer.lock:
                    outer.recommends += 1
                    n = outer.recommends
                if outer.hang:
                    outer.release.wait(60)
                    context.abort(grpc.StatusCode.UNAVAILABLE, "released")
                if outer.refuse_every and n % outer.refuse_every == 0:
                    with outer.lock:
                        outer.refused += 1
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "refused by the stand-in")
                resp = pb.RecommendResponse()
                for c in request.candidates[: request.top_k or None]:
                    resp.plain.items.add(item_id=c.item_id, sum_logprob=-1.0, mean_logprob=-1.0, num_tokens=1)
                resp.usage.prompt_tokens = 10
                return resp

            def Generate(self, request, context):
                with outer.lock:
                    outer.generates += 1
                resp = pb.GenerateResponse()
                resp.usage.generated_tokens = request.sampling.max_tokens
                return resp

            def GenerateStream(self, request, context):
                with outer.lock:
                    outer.streams += 1
                for i in range(request.sampling.max_tokens):
                    time.sleep(0.002)
                    yield pb.GenerateDelta(tokens=[pb.TokenInfo(token_id=100 + i)])
                yield pb.GenerateDelta(usage=pb.Usage(generated_tokens=request.sampling.max_tokens))

        self.port = support.free_port()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
        pb_grpc.add_InferenceServicer_to_server(Servicer(), self.server)
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.server.start()

    def stop(self):
        self.release.set()
        self.server.stop(0)


def run_loadgen(*args):
    p = subprocess.run([ARGS.loadgen, "--quiet", *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


class LoadgenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="loadgen-test-")
        support.generate_stubs(ARGS.proto_dir, os.path.join(cls.tmp, "stubs"))
        from inferd.v1 import inferd_pb2, inferd_pb2_grpc  # noqa: PLC0415

        cls.pb, cls.pb_grpc = inferd_pb2, inferd_pb2_grpc

    def scenario(self, text):
        path = os.path.join(self.tmp, f"s{time.monotonic_ns()}.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_every_answer_is_counted_once_by_class_and_code(self):
        server = StandIn(self.pb, self.pb_grpc, refuse_every=5)
        try:
            rc, out, err = run_loadgen("--target", f"127.0.0.1:{server.port}", "--scenario",
                                       os.path.join(ARGS.scenarios, "mixed.yaml"), "--concurrency", "4",
                                       "--duration", "2", "--warmup", "0")
            self.assertEqual(rc, 0, err)
            run = json.loads(out)["runs"][0]
            self.assertEqual(run["mode"], "closed")
            self.assertEqual(run["lost"], 0)
            rec, gen = run["classes"]["realtime_recommend"], run["classes"]["complex_generate"]
            # Requests issued and answered within the run: what the server saw, no more, no less.
            self.assertEqual(rec["sent"], server.recommends)
            self.assertEqual(gen["sent"], server.streams)
            self.assertEqual(rec["errors"].get("RESOURCE_EXHAUSTED", 0), server.refused)
            self.assertEqual(rec["ok"], server.recommends - server.refused)
            self.assertEqual(gen["ok"], server.streams)
            self.assertGreater(rec["sent"], 5 * gen["sent"] // 2)  # weights 0.9 / 0.1
            self.assertEqual(rec["latency_ms"]["count"], rec["ok"])
            # Streams: one TTFT per stream, one inter-token gap per token after the first.
            self.assertEqual(gen["ttft_ms"]["count"], gen["ok"])
            self.assertGreater(gen["itl_ms"]["count"], 0)
            self.assertGreaterEqual(gen["itl_ms"]["p50"], 1.0)  # the stand-in sleeps 2 ms per token
            self.assertGreater(gen["tokens_per_s"], 0)
        finally:
            server.stop()

    def test_open_loop_rate_is_poisson_at_the_target(self):
        server = StandIn(self.pb, self.pb_grpc)
        try:
            scenario = self.scenario("classes: [{name: r, rpc: recommend, candidates: 2}]\n")
            rc, out, err = run_loadgen("--target", f"127.0.0.1:{server.port}", "--scenario", scenario,
                                       "--rates", "20,60", "--duration", "3", "--warmup", "0")
            self.assertEqual(rc, 0, err)
            runs = json.loads(out)["runs"]
            self.assertEqual([r["rate_per_s"] for r in runs], [20, 60])
            for r in runs:
                sent = r["classes"]["r"]["sent"]
                expected = r["rate_per_s"] * r["measured_s"]
                # Poisson: within 4 standard deviations of the mean.
                self.assertLess(abs(sent - expected), 4 * expected ** 0.5 + 1, r)
            self.assertEqual(sum(r["classes"]["r"]["sent"] for r in runs), server.recommends)
        finally:
            server.stop()

    def test_requests_never_answered_are_lost_and_fail_the_run(self):
        server = StandIn(self.pb, self.pb_grpc, hang=True)
        try:
            scenario = self.scenario("classes: [{name: r, rpc: recommend, candidates: 2}]\n")
            rc, out, err = run_loadgen("--target", f"127.0.0.1:{server.port}", "--scenario", scenario,
                                       "--concurrency", "3", "--duration", "1", "--warmup", "0", "--drain-s", "1")
            self.assertEqual(rc, 3, err)
            self.assertIn("3 request(s) lost", err)
            run = json.loads(out)["runs"][0]
            self.assertEqual(run["lost"], 3)
            self.assertEqual(run["classes"]["r"]["lost"], 3)
            self.assertEqual(run["classes"]["r"]["errors"], {})  # lost is not also counted as an error
        finally:
            server.stop()

    def test_bad_scenario_names_the_key(self):
        scenario = self.scenario("classes: [{name: r, rpc: recommend, candidatez: 2}]\n")
        rc, _, err = run_loadgen("--target", "127.0.0.1:1", "--scenario", scenario, "--rate", "1")
        self.assertEqual(rc, 2)
        self.assertIn("classes[0].candidatez: unknown key", err)
        scenario = self.scenario("classes: [{name: r, rpc: rank}]\n")
        rc, _, err = run_loadgen("--target", "127.0.0.1:1", "--scenario", scenario, "--rate", "1")
        self.assertEqual(rc, 2)
        self.assertIn("classes[0].rpc: one of recommend, generate, generate_stream, found 'rank'", err)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--loadgen", required=True)
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--scenarios", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
