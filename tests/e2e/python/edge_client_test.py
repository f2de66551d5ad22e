#!/usr/bin/env python3
"""An independent client of the edge/central topology: Python grpcio with stubs generated from proto/ at
test time (not our C++ client code; no health stubs, whose `grpc` package name the real one shadows). Starts a central and an edge inferd on free loopback ports and checks:
a forwarded Generate equals the central daemon's own answer, a realtime Recommend is served from the edge
cache, a client cancel reaches the central daemon, and a dead central daemon is a fast UNAVAILABLE naming it
while local realtime work still succeeds.

Usage: edge_client_test.py --inferd build/bin/inferd --model build/e2e-model --proto-dir proto
"""

import argparse
import importlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

ARGS = None


_HANDED_OUT = set()  # the kernel may give a just-closed port again; one process never hands out a port twice


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def generate_stubs(proto_dir, out_dir):
    from grpc_tools import protoc  # noqa: PLC0415
    import grpc_tools  # noqa: PLC0415

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    os.makedirs(out_dir, exist_ok=True)
    for proto in ("inferd/v1/inferd.proto",):
        rc = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out_dir}",
                          f"--grpc_python_out={out_dir}", os.path.join(proto_dir, proto)])
        if rc != 0:
            raise RuntimeError(f"protoc failed on {proto}")
    sys.path.insert(0, out_dir)


def prepare_client_class(cls, prefix):
    """Shared set-up of a daemon client test class (ARGS set first): cls.grpc, a work directory cls.work (for
    tearDownClass to remove), and the inferd.v1 stubs generated from --proto-dir, imported as cls.pb and cls.rpc."""
    import grpc  # noqa: PLC0415

    cls.grpc = grpc
    cls.work = tempfile.mkdtemp(prefix=prefix)
    generate_stubs(ARGS.proto_dir, os.path.join(cls.work, "stubs"))
    cls.pb = importlib.import_module("inferd.v1.inferd_pb2")
    cls.rpc = importlib.import_module("inferd.v1.inferd_pb2_grpc")


def start_until_serving(cls, daemon, timeout=120):
    """Starts `daemon` and waits for its SERVING log line; on failure runs cls.tearDownClass() and raises."""
    try:
        daemon.start()
        if not daemon.wait_log(r"inferd \S+ SERVING", timeout=timeout):
            raise RuntimeError("never SERVING:\n" + daemon.text()[-2000:])
    except Exception:
        cls.tearDownClass()
        raise


def run_tests(module):
    """Entry point of the daemon clients: reads --inferd, --model and --proto-dir into `module.ARGS`, runs its
    tests, and exits 0, 1 on a failure, or 77 (ctest's SKIP_RETURN_CODE) when tests were skipped."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--inferd", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--proto-dir", required=True)
    module.ARGS, rest = parser.parse_known_args()
    result = unittest.main(module=module, argv=[sys.argv[0]] + rest, verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if result.skipped else 0)


def wait_serving(grpc, call, probe, addr, daemon, timeout=120):
    """Until SERVING every RPC answers UNAVAILABLE; any other answer to `call(probe)` means it serves."""
    until = time.time() + timeout
    while time.time() < until:
        try:
            call(probe, timeout=5)
            return
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                return
        if daemon.proc.poll() is not None:
            raise RuntimeError(f"{addr} exited with {daemon.proc.returncode}:\n{daemon.text()[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"{addr} never became SERVING:\n{daemon.text()[-2000:]}")


class Daemon:
    def __init__(self, name, config_text, workdir):
        self.config = os.path.join(workdir, f"{name}.yaml")
        self.log_path = os.path.join(workdir, f"{name}.log")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.proc = None
        self.log = None

    def start(self):
        self.close_log()
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([ARGS.inferd, "--config", self.config, "--log-level", "debug"],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, pattern, timeout=5.0):
        until = time.time() + timeout
        while time.time() < until:
            if re.search(pattern, self.text()):
                return True
            time.sleep(0.02)
        return False

    def close_log(self):
        if self.log is not None:
            self.log.close()
            self.log = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.close_log()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.close_log()


class EdgeCentralPythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc  # noqa: PLC0415

        cls.grpc = grpc
        cls.work = tempfile.mkdtemp(prefix="inferd-pyedge-")
        generate_stubs(ARGS.proto_dir, os.path.join(cls.work, "stubs"))
        cls.pb = importlib.import_module("inferd.v1.inferd_pb2")
        cls.rpc = importlib.import_module("inferd.v1.inferd_pb2_grpc")
        cp, ep = free_port(), free_port()
        cls.central_addr, cls.edge_addr = f"127.0.0.1:{cp}", f"127.0.0.1:{ep}"
        cls.central = Daemon("central", f"""server: {{grpc_address: "{cls.central_addr}", drain_grace_seconds: 1}}
metrics: {{enabled: false}}
models:
  - {{name: full, path: {ARGS.model}, classes: [realtime, complex], scheduler: {{realtime_deadline_ms: 10000}}}}
""", cls.work)
        cls.edge = Daemon("edge", f"""server: {{grpc_address: "{cls.edge_addr}", drain_grace_seconds: 1}}
metrics: {{enabled: false}}
models:
  - {{name: light, path: {ARGS.model}, classes: [realtime], scheduler: {{realtime_deadline_ms: 10000}}}}
upstreams:
  - name: central
    targets: ["{cls.central_addr}"]
    classes: [complex]
    models: [full]
    health: {{interval_ms: 200, timeout_ms: 200}}
    breaker: {{failure_threshold: 2, open_ms: 1000}}
cache: {{enabled: true, ttl_ms: 5000}}
""", cls.work)
        try:
            cls.central.start()
            cls.wait_serving(cls.central_addr, cls.central)
            cls.edge.start()
            cls.wait_serving(cls.edge_addr, cls.edge)
        except Exception:
            cls.tearDownClass()
            raise
        cls.edge_stub = cls.rpc.InferenceStub(grpc.insecure_channel(cls.edge_addr))
        cls.central_stub = cls.rpc.InferenceStub(grpc.insecure_channel(cls.central_addr))

    @classmethod
    def tearDownClass(cls):
        cls.edge.stop()
        cls.central.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    @classmethod
    def wait_serving(cls, addr, daemon):
        probe = cls.pb.RecommendRequest(context="probe", candidates=[cls.pb.Candidate(item_id=1, text=" x")])
        wait_serving(cls.grpc, cls.rpc.InferenceStub(cls.grpc.insecure_channel(addr)).Recommend, probe, addr, daemon)

    def generate(self, request_id, max_tokens):
        return self.pb.GenerateRequest(
            prompt="Describe a blue ceramic mug.", request_id=request_id,
            sampling=self.pb.SamplingParams(max_tokens=max_tokens, ignore_eos=True))

    def recommend(self, context):
        return self.pb.RecommendRequest(
            context=context,
            candidates=[self.pb.Candidate(item_id=7 + i, text=t) for i, t in enumerate([" a knife", " a pan", " a sock"])])

    def test_1_forwarded_generate_equals_the_central_answer(self):
        via_edge = self.edge_stub.Generate(self.generate("py-fwd-1", 5), timeout=30)
        direct = self.central_stub.Generate(self.generate("py-direct-1", 5), timeout=30)
        self.assertEqual([t.token_id for t in via_edge.tokens], [t.token_id for t in direct.tokens])
        self.assertEqual(via_edge.text, direct.text)
        self.assertEqual(via_edge.finish_reason, self.pb.FINISH_REASON_LENGTH)
        self.assertTrue(self.central.wait_log(r"request_id=py-fwd-1 ended OK"))

    def test_2_realtime_recommend_is_served_from_the_edge_cache(self):
        req = self.recommend("Python cache: gift for a cook:")
        first = self.edge_stub.Recommend(req, timeout=30)
        second = self.edge_stub.Recommend(req, timeout=30)
        self.assertFalse(first.from_cache)
        self.assertTrue(second.from_cache)
        self.assertEqual([i.item_id for i in first.plain.items], [i.item_id for i in second.plain.items])

    def test_3_cancel_reaches_the_central_daemon(self):
        call = self.edge_stub.GenerateStream(self.generate("py-cancel-1", 1000), timeout=30)
        next(call)
        call.cancel()
        self.assertTrue(self.central.wait_log(r"generate_stream request_id=py-cancel-1 ended CANCELLED"),
                        self.central.text()[-2000:])

    def test_4_dead_central_is_a_fast_unavailable_and_local_realtime_still_works(self):
        self.central.kill()
        for i in range(4):
            t0 = time.monotonic()
            with self.assertRaises(self.grpc.RpcError) as err:
                self.edge_stub.Generate(self.generate(f"py-down-{i}", 4), timeout=10)
            took = time.monotonic() - t0
            self.assertEqual(err.exception.code(), self.grpc.StatusCode.UNAVAILABLE)
            self.assertIn("upstream 'central'", err.exception.details())
            self.assertLess(took, 0.5)
            local = self.edge_stub.Recommend(self.recommend(f"Python outage {i}: gift for a cook:"), timeout=10)
            self.assertEqual(len(local.plain.items), 3)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--inferd", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--proto-dir", required=True)
    ARGS, rest = parser.parse_known_args()
    ARGS.inferd, ARGS.model, ARGS.proto_dir = (os.path.abspath(p) for p in (ARGS.inferd, ARGS.model, ARGS.proto_dir))
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
