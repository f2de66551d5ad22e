#!/usr/bin/env python3
"""TLS, bearer tokens, rate limits and bad input through an independent client: Python grpcio with stubs
generated from proto/ at test time, against the real inferd on loopback with a certificate made here with
openssl and token hashes made with hashlib. Checks: a plaintext client cannot talk to the TLS port; no,
wrong, under-privileged and right tokens; bytes with invalid UTF-8 sent raw get INVALID_ARGUMENT naming the
field; a 64 KiB model name gives a bounded NOT_FOUND; an identity over its rate limit gets
RESOURCE_EXHAUSTED with retry-after-ms while another identity is served; the log (at debug level) never
shows a token.

Usage: security_client_test.py --inferd build/bin/inferd --model build/e2e-model --proto-dir proto
"""

import argparse
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edge_client_test as support  # noqa: E402  (free_port, generate_stubs, Daemon)

ARGS = None
TOKENS = {"main": "py-main-token-51c2", "fb": "py-feedback-token-9d0e", "limited": "py-limited-token-77aa"}
PERMS = {"main": "inference,feedback", "fb": "feedback", "limited": "inference"}


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class SecurityPythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("openssl (Debian package openssl) not found")
        import grpc  # noqa: PLC0415

        cls.grpc = grpc
        support.ARGS = ARGS
        cls.work = tempfile.mkdtemp(prefix="inferd-pysec-")
        support.generate_stubs(ARGS.proto_dir, os.path.join(cls.work, "stubs"))
        cls.pb = importlib.import_module("inferd.v1.inferd_pb2")
        cls.rpc = importlib.import_module("inferd.v1.inferd_pb2_grpc")
        w = cls.work
        openssl(w, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=py-ca",
                "-keyout", "ca.key", "-out", "ca.pem")
        with open(os.path.join(w, "server.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        openssl(w, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
                "-out", "server.csr")
        openssl(w, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", "server.pem", "-extfile", "server.ext")
        with open(os.path.join(w, "tokens"), "w") as f:
            for name, token in TOKENS.items():
                f.write(f"{name} sha256:{hashlib.sha256(token.encode()).hexdigest()} {PERMS[name]}\n")
        cls.addr = f"127.0.0.1:{support.free_port()}"
        cls.daemon = support.Daemon("sec", f"""server:
  grpc_address: "{cls.addr}"
  drain_grace_seconds: 1
  tls: {{cert_file: server.pem, key_file: server.key}}
  auth:
    token_file: tokens
    rate_limit: {{requests_per_second: 0.01, burst: 6}}
metrics: {{address: "127.0.0.1:{support.free_port()}"}}
models:
  - {{name: m, path: {ARGS.model}, classes: [realtime, complex]}}
""", w)
        try:
            cls.daemon.start()
            if not cls.daemon.wait_log(r"inferd \S+ SERVING", timeout=120):
                raise RuntimeError("never SERVING:\n" + cls.daemon.text()[-2000:])
        except Exception:
            cls.tearDownClass()
            raise
        with open(os.path.join(w, "ca.pem"), "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        cls.channel = grpc.secure_channel(cls.addr, creds, options=[("grpc.ssl_target_name_override", "localhost")])
        cls.stub = cls.rpc.InferenceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def request(self, **kw):
        return self.pb.GenerateRequest(prompt="hello", sampling=self.pb.SamplingParams(max_tokens=2), **kw)

    def call(self, method, request, who):
        md = [("authorization", f"Bearer {TOKENS[who]}")] if who in TOKENS else ([("authorization", who)] if who else [])
        return method(request, metadata=md, timeout=60)

    def code_of(self, fn):
        with self.assertRaises(self.grpc.RpcError) as cm:
            fn()
        return cm.exception

    def test_1_plaintext_client_cannot_talk_to_the_tls_port(self):
        stub = self.rpc.InferenceStub(self.grpc.insecure_channel(self.addr))
        e = self.code_of(lambda: stub.Generate(self.request(), timeout=5))
        self.assertEqual(e.code(), self.grpc.StatusCode.UNAVAILABLE)

    def test_2_no_wrong_underprivileged_and_right_tokens(self):
        e = self.code_of(lambda: self.call(self.stub.Generate, self.request(), None))
        self.assertEqual(e.code(), self.grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("missing bearer token", e.details())
        e = self.code_of(lambda: self.call(self.stub.Generate, self.request(), "Bearer guessed"))
        self.assertEqual(e.code(), self.grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(e.details(), "unknown bearer token")
        e = self.code_of(lambda: self.call(self.stub.Generate, self.request(), "fb"))
        self.assertEqual(e.code(), self.grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(e.details(), "identity 'fb' may not call Generate (needs permission inference)")
        r = self.call(self.stub.Generate, self.request(), "main")
        self.assertTrue(r.request_id)

    def test_3_invalid_utf8_sent_raw_is_invalid_argument_naming_the_field(self):
        raw = self.request(model="").SerializeToString().replace(b"hello", b"he\xc3\x28o")
        generate = self.channel.unary_unary("/inferd.v1.Inference/Generate")  # bytes in, bytes out
        e = self.code_of(lambda: generate(raw, metadata=[("authorization", f"Bearer {TOKENS['main']}")], timeout=30))
        self.assertEqual(e.code(), self.grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(e.details(), "prompt: not valid UTF-8 (byte offset 2); string fields must be UTF-8")

    def test_4_a_64_kib_model_name_gives_a_bounded_not_found(self):
        e = self.code_of(lambda: self.call(self.stub.Generate, self.request(model="x" * 65536), "main"))
        self.assertEqual(e.code(), self.grpc.StatusCode.NOT_FOUND)
        self.assertLess(len(e.details()), 256)
        self.assertIn("(65536 bytes)", e.details())

    def test_5_rate_limit_per_identity_with_retry_after(self):
        for _ in range(6):
            self.call(self.stub.Generate, self.request(), "limited")
        e = self.code_of(lambda: self.call(self.stub.Generate, self.request(), "limited"))
        self.assertEqual(e.code(), self.grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("rate limit of identity 'limited'", e.details())
        retry = dict(e.trailing_metadata()).get("retry-after-ms")
        self.assertIsNotNone(retry, "no retry-after-ms trailing metadata")
        self.assertGreater(int(retry), 0)
        self.assertTrue(self.call(self.stub.Generate, self.request(), "main").request_id)

    def test_6_the_log_never_shows_a_token(self):
        text = self.daemon.text()
        self.assertIn("refused", text)  # debug lines for the refusals above exist...
        for token in TOKENS.values():
            self.assertNotIn(token, text)  # ...and name no secret


if __name__ == "__main__":
    support.run_tests(sys.modules[__name__])
