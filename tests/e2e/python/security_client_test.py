#!/usr/bin/env python3
"""TLS, bearer tokens, rate limits and bad input through an independent client: Python grpcio with stubs
generated from proto/ at test time, against the real inferd on loopback with a certificate made here with
openssl and token hashes made with hashlib. Checks: a plaintext client cannot talk to the TLS port; no,
wrong, under-privileged and right tokens; bytes with invalid UTF-8 sent raw get INVALID_ARGUMENT naming the
field; a 64 KiB model name gives a bounded NOT_FOUND; an identity over its rate limit gets
RESOURCE_EXHAUSTED with retry-after-ms while another identity is served; the OpenAI HTTP port, through the
official `openai` client, takes the same tokens (401, 403, 429 with Retry-After) and shares each identity's
rate limit with gRPC; SIGHUP reloads the tokens for both; an edge daemon forwards to this one over TLS with
its own bearer token (upstreams[].tls, token_file), and one without the token gets UNAUTHENTICATED; SIGHUP on
an edge and its central daemon rotates the edge's token and CA (forwarded calls keep working, a bad file keeps
the old, a stream started before the rotation finishes); the log (at debug level) never shows a token.

Usage: security_client_test.py --inferd build/bin/inferd --model build/e2e-model --proto-dir proto
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edge_client_test as support  # noqa: E402  (free_port, generate_stubs, Daemon)

ARGS = None
TOKENS = {"main": "py-main-token-51c2", "fb": "py-feedback-token-9d0e", "limited": "py-limited-token-77aa",
          "both": "py-both-token-3c1f", "web": "py-web-token-0a9d", "edge": "py-edge-token-5b27"}
PERMS = {"main": "inference,feedback", "fb": "feedback", "limited": "inference", "both": "inference",
         "web": "inference", "edge": "inference"}
LATE = ("late", "py-late-token-e4b8")  # added to the token file by test_9, then SIGHUP


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class SecurityPythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("openssl (Debian package openssl) not found")
        support.ARGS = ARGS
        support.prepare_client_class(cls, "inferd-pysec-")
        grpc = cls.grpc
        w = cls.work
        openssl(w, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=py-ca",
                "-keyout", "ca.key", "-out", "ca.pem")
        with open(os.path.join(w, "server.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        openssl(w, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
                "-out", "server.csr")
        openssl(w, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", "server.pem", "-extfile", "server.ext")
        cls.write_tokens(TOKENS)
        cls.addr = f"127.0.0.1:{support.free_port()}"
        cls.http_base = f"http://127.0.0.1:{support.free_port()}"
        cls.metrics_addr = f"127.0.0.1:{support.free_port()}"
        cls.daemon = support.Daemon("sec", f"""server:
  grpc_address: "{cls.addr}"
  drain_grace_seconds: 1
  tls: {{cert_file: server.pem, key_file: server.key}}
  auth:
    token_file: tokens
    rate_limit: {{requests_per_second: 0.01, burst: 8}}
http: {{enabled: true, address: "{cls.http_base[len("http://"):]}"}}
metrics: {{address: "{cls.metrics_addr}"}}
models:
  - {{name: m, path: {ARGS.model}, classes: [realtime, complex]}}
""", w)
        support.start_until_serving(cls, cls.daemon)
        with open(os.path.join(w, "ca.pem"), "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        cls.channel = grpc.secure_channel(cls.addr, creds, options=[("grpc.ssl_target_name_override", "localhost")])
        cls.stub = cls.rpc.InferenceStub(cls.channel)

    @classmethod
    def write_tokens(cls, tokens):
        perms = dict(PERMS, late="inference")
        with open(os.path.join(cls.work, "tokens"), "w") as f:
            for name, token in tokens.items():
                f.write(f"{name} sha256:{hashlib.sha256(token.encode()).hexdigest()} {perms[name]}\n")

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
        for _ in range(8):
            self.call(self.stub.Generate, self.request(), "limited")
        e = self.code_of(lambda: self.call(self.stub.Generate, self.request(), "limited"))
        self.assertEqual(e.code(), self.grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("rate limit of identity 'limited'", e.details())
        retry = dict(e.trailing_metadata()).get("retry-after-ms")
        self.assertIsNotNone(retry, "no retry-after-ms trailing metadata")
        self.assertGreater(int(retry), 0)
        self.assertTrue(self.call(self.stub.Generate, self.request(), "main").request_id)

    def http(self, method, path, body=None, token=None):
        """(status, headers, parsed JSON body) of a plain HTTP request with an optional bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.http_base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, dict(r.headers), json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read() or b"null")

    def openai_client(self, token):
        import openai  # noqa: PLC0415  (scripts/requirements.txt)

        return openai, openai.OpenAI(base_url=self.http_base + "/v1", api_key=token, max_retries=0, timeout=60)

    def test_7_http_takes_the_same_tokens(self):
        openai, guessed = self.openai_client("guessed")
        with self.assertRaises(openai.AuthenticationError) as caught:
            guessed.completions.create(model="m", prompt="hello", max_tokens=1)
        self.assertEqual(caught.exception.status_code, 401)
        self.assertEqual(caught.exception.body["message"], "unknown bearer token")
        self.assertEqual(caught.exception.body["type"], "authentication_error")
        _, fb = self.openai_client(TOKENS["fb"])
        with self.assertRaises(openai.PermissionDeniedError) as caught:
            fb.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=1)
        self.assertEqual(caught.exception.body["message"],
                         "identity 'fb' may not call /v1/chat/completions (needs permission inference)")
        for path, body in [("/v1/completions", {"model": "m", "prompt": "x", "max_tokens": 1}),
                           ("/v1/rerank", {"model": "m", "query": "q", "documents": ["a"]}),
                           ("/v1/models", None), ("/v1/models/m", None)]:
            with self.subTest(path=path):
                status, headers, resp = self.http("POST" if body else "GET", path, body)
                self.assertEqual(status, 401, resp)
                self.assertEqual(headers.get("WWW-Authenticate"), "Bearer")
                self.assertTrue(resp["error"]["message"].startswith("missing bearer token"), resp)
                status, _, resp = self.http("POST" if body else "GET", path, body, TOKENS["web"])
                self.assertEqual(status, 200, resp)
        for path in ["/health", "/ready"]:  # open for load balancers
            self.assertEqual(self.http("GET", path)[0], 200, path)
        _, web = self.openai_client(TOKENS["web"])
        r = web.completions.create(model="m", prompt="hello", max_tokens=2, temperature=0,
                                    extra_body={"ignore_eos": True})
        self.assertEqual(r.usage.completion_tokens, 2)
        self.assertEqual([m.id for m in web.models.list()], ["m"])

    def test_8_an_identitys_rate_limit_counts_grpc_and_http_calls(self):
        # burst 8 at 0.01/s: four gRPC and four HTTP calls take the bucket; the next call waits ~100 s.
        _, both = self.openai_client(TOKENS["both"])
        for _ in range(4):
            self.call(self.stub.Generate, self.request(), "both")
            both.completions.create(model="m", prompt="hello", max_tokens=1)
        import openai  # noqa: PLC0415

        with self.assertRaises(openai.RateLimitError) as caught:
            both.completions.create(model="m", prompt="hello", max_tokens=1)
        e = caught.exception
        self.assertIn("rate limit of identity 'both'", e.body["message"])
        self.assertGreaterEqual(int(e.response.headers["retry-after"]), 90)
        self.assertGreaterEqual(int(e.response.headers["retry-after-ms"]), 90000)
        g = self.code_of(lambda: self.call(self.stub.Generate, self.request(), "both"))
        self.assertEqual(g.code(), self.grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(self.http("POST", "/v1/completions", {"model": "m", "prompt": "x", "max_tokens": 1},
                                   TOKENS["web"])[0], 200, "another identity is still served")

    def test_9_sighup_reloads_the_tokens_for_grpc_and_http(self):
        body = {"model": "m", "prompt": "x", "max_tokens": 1}
        self.assertEqual(self.http("POST", "/v1/completions", body, LATE[1])[0], 401)
        self.write_tokens(dict(TOKENS, late=LATE[1]))
        self.daemon.proc.send_signal(signal.SIGHUP)
        reloaded = rf"server.auth.token_file: reloaded \S+ \({len(TOKENS) + 1} tokens\)"
        self.assertTrue(self.daemon.wait_log(reloaded, timeout=10), self.daemon.text()[-2000:])
        status, _, resp = self.http("POST", "/v1/completions", body, LATE[1])
        self.assertEqual(status, 200, resp)
        self.assertTrue(self.call(self.stub.Generate, self.request(), f"Bearer {LATE[1]}").request_id)
        self.assertEqual(self.http("POST", "/v1/completions", body, TOKENS["main"])[0], 200)

    def edge(self, name, upstream_extra, target=None):
        addr = f"127.0.0.1:{support.free_port()}"
        d = support.Daemon(name, f"""server: {{grpc_address: "{addr}", drain_grace_seconds: 1}}
metrics: {{address: "127.0.0.1:{support.free_port()}"}}
models:
  - {{name: light, path: {ARGS.model}, classes: [realtime]}}
upstreams:
  - {{name: central, targets: ["{target or self.addr}"], classes: [complex], models: [m], {upstream_extra}}}
""", self.work)
        d.start()
        if not d.wait_log(r"inferd \S+ SERVING", timeout=120):
            d.stop()
            raise RuntimeError(f"edge {name} never SERVING:\n" + d.text()[-2000:])
        return d, self.rpc.InferenceStub(self.grpc.insecure_channel(addr))

    def test_a_an_edge_forwards_over_tls_with_its_token(self):
        with open(os.path.join(self.work, "edge.token"), "w") as f:
            f.write(TOKENS["edge"] + "\n")
        tls = "tls: {enabled: true, ca_file: ca.pem, server_name: localhost}"
        edge, stub = self.edge("edge-ok", tls + ", token_file: edge.token")
        try:
            req = self.pb.GenerateRequest(prompt="hello", model="m", request_id="via-edge",
                                          sampling=self.pb.SamplingParams(max_tokens=4, temperature=0.0,
                                                                          ignore_eos=True))
            forwarded = stub.Generate(req, timeout=60)
            direct = self.call(self.stub.Generate, self.pb.GenerateRequest(
                prompt="hello", model="m", sampling=self.pb.SamplingParams(max_tokens=4, temperature=0.0,
                                                                           ignore_eos=True)), "main")
            self.assertEqual([t.token_id for t in forwarded.tokens], [t.token_id for t in direct.tokens])
            self.assertEqual(len(forwarded.tokens), 4)
            self.assertEqual(forwarded.text, direct.text)
            self.assertTrue(self.daemon.wait_log(r"request_id=via-edge", timeout=5),
                            "the central daemon did not serve the forwarded call")
        finally:
            edge.stop()
        self.assertNotIn(TOKENS["edge"], edge.text())
        bare, stub = self.edge("edge-no-token", tls)
        try:
            e = self.code_of(lambda: stub.Generate(self.request(model="m"), timeout=30))
            self.assertEqual(e.code(), self.grpc.StatusCode.UNAUTHENTICATED)
            self.assertIn("upstream 'central'", e.details())
            self.assertIn("missing bearer token", e.details())
        finally:
            bare.stop()

    def hup(self, daemon, pattern):
        daemon.proc.send_signal(signal.SIGHUP)
        self.assertTrue(daemon.wait_log(pattern, timeout=10), daemon.text()[-2000:])

    def test_d_sighup_rotates_an_edges_token_and_ca_and_forwarded_calls_keep_working(self):
        # A central daemon of its own (its certificate changes below), reached by an edge over TLS with a token.
        w = os.path.join(self.work, "rot")
        os.makedirs(w)
        openssl(w, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=py-ca2",
                "-keyout", "ca2.key", "-out", "ca2.pem")
        openssl(w, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server2.key",
                "-out", "server2.csr")
        openssl(w, "x509", "-req", "-in", "server2.csr", "-CA", "ca2.pem", "-CAkey", "ca2.key", "-CAcreateserial",
                "-days", "2", "-out", "server2.pem", "-extfile", os.path.join(self.work, "server.ext"))
        for src, dst in [("server.pem", "central.pem"), ("server.key", "central.key"), ("ca.pem", "edge-ca.pem")]:
            shutil.copy(os.path.join(self.work, src), os.path.join(w, dst))
        old, new = "py-rot-token-1a2b", "py-rot-token-3c4d"

        def central_tokens(tokens):
            with open(os.path.join(w, "tokens"), "w") as f:
                for name, token in tokens.items():
                    f.write(f"{name} sha256:{hashlib.sha256(token.encode()).hexdigest()} inference\n")

        def edge_token(text):
            with open(os.path.join(w, "edge.token"), "w") as f:
                f.write(text)

        central_tokens({"edge": old})
        edge_token(old + "\n")
        addr = f"127.0.0.1:{support.free_port()}"
        central = support.Daemon("central-rot", f"""server:
  grpc_address: "{addr}"
  drain_grace_seconds: 1
  tls: {{cert_file: rot/central.pem, key_file: rot/central.key}}
  auth: {{token_file: rot/tokens}}
metrics: {{enabled: false}}
models:
  - {{name: m, path: {ARGS.model}, classes: [realtime, complex]}}
""", self.work)
        central.start()
        edge = None
        try:
            self.assertTrue(central.wait_log(r"inferd \S+ SERVING", timeout=120), central.text()[-2000:])
            edge, stub = self.edge("edge-rot", "tls: {enabled: true, ca_file: rot/edge-ca.pem, server_name: localhost}, "
                                   "token_file: rot/edge.token, health: {interval_ms: 200, unhealthy_threshold: 1}, "
                                   "breaker: {failure_threshold: 1000, open_ms: 200}", target=addr)

            def forwarded(i):
                return stub.Generate(self.request(model="m", request_id=f"rot-{i}"), timeout=30)

            self.assertTrue(forwarded(0).request_id)
            # A stream that starts before the rotations and has to finish after them.
            stream = stub.GenerateStream(self.pb.GenerateRequest(
                prompt="hello", model="m", sampling=self.pb.SamplingParams(max_tokens=1000, ignore_eos=True)),
                timeout=120)
            got = len(next(stream).tokens)

            # Token rotation with an overlap: central takes both, the edge moves, central drops the old one.
            central_tokens({"edge": old, "edge-next": new})
            self.hup(central, r"server.auth.token_file: reloaded \S+ \(2 tokens\)")
            edge_token(new + "\n")
            self.hup(edge, r"upstream 'central': token_file: reloaded")
            central_tokens({"edge-next": new})
            self.hup(central, r"server.auth.token_file: reloaded \S+ \(1 tokens\)")
            self.assertTrue(forwarded(1).request_id, "the edge sends the new token")
            with open(os.path.join(w, "edge-ca.pem"), "rb") as f:
                direct = self.rpc.InferenceStub(self.grpc.secure_channel(
                    addr, self.grpc.ssl_channel_credentials(f.read()),
                    options=[("grpc.ssl_target_name_override", "localhost")]))
            e = self.code_of(lambda: self.call(direct.Generate, self.request(), f"Bearer {old}"))
            self.assertEqual(e.code(), self.grpc.StatusCode.UNAUTHENTICATED, "central no longer takes the old token")

            # A bad file is logged and the token in use stays.
            edge_token("\n")
            self.hup(edge, r"reload: upstream 'central': token_file: \S+ is empty")
            self.assertTrue(forwarded(2).request_id)

            # CA change: the edge trusts only the new CA (a new channel: its calls fail against central's old
            # certificate), then central presents a certificate of the new CA and forwarded calls work again.
            shutil.copy(os.path.join(w, "ca2.pem"), os.path.join(w, "edge-ca.pem"))
            self.hup(edge, r"upstream 'central': tls: reloaded, new channels to 1 replica")
            e = self.code_of(lambda: forwarded(3))
            self.assertEqual(e.code(), self.grpc.StatusCode.UNAVAILABLE, e.details())
            self.assertIn("upstream 'central'", e.details())
            shutil.copy(os.path.join(w, "server2.pem"), os.path.join(w, "central.pem"))
            shutil.copy(os.path.join(w, "server2.key"), os.path.join(w, "central.key"))
            self.hup(central, r"server.tls: reloaded")
            until, served = time.time() + 30, None
            while served is None and time.time() < until:
                try:
                    served = forwarded(4)
                except self.grpc.RpcError:
                    time.sleep(0.2)
            self.assertIsNotNone(served, "forwarded calls did not recover after central's certificate change:\n" +
                                 edge.text()[-2000:])

            for msg in stream:
                got += len(msg.tokens)
            self.assertEqual(got, 1000, "the stream started before the rotations finished whole")
        finally:
            if edge is not None:
                edge.stop()
            central.stop()
        for token in (old, new):
            self.assertNotIn(token, edge.text())
            self.assertNotIn(token, central.text())

    def test_c_inferctl_remote_over_tls_with_a_token_file(self):
        inferctl = os.path.join(os.path.dirname(ARGS.inferd), "inferctl")
        with open(os.path.join(self.work, "main.token"), "w") as f:
            f.write(TOKENS["main"] + "\n")
        base = [inferctl, "remote", "--address", self.addr, "--tls-ca", os.path.join(self.work, "ca.pem"),
                "--tls-server-name", "localhost"]
        gen = ["generate", "--prompt", "hello", "--max-tokens", "3"]
        ok = subprocess.run(base + ["--token-file", os.path.join(self.work, "main.token")] + gen,
                            capture_output=True, text=True, timeout=60)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("3 generated tokens", ok.stderr)
        bare = subprocess.run(base + gen, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(bare.returncode, 0)
        self.assertIn("UNAUTHENTICATED", bare.stderr)
        plain = subprocess.run([inferctl, "remote", "--address", self.addr, "--token", TOKENS["main"],
                                "--timeout", "5"] + gen, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(plain.returncode, 0, "plaintext reached the TLS port")
        bad = subprocess.run(base + ["--token", "x", "--token-file", "y"] + gen, capture_output=True, text=True,
                             timeout=60)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("--token and --token-file: give one", bad.stderr)

    def refusals(self):
        """inferd_grpc_requests_total of model "none" by (method, code), from /metrics."""
        with urllib.request.urlopen(f"http://{self.metrics_addr}/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for labels, value in re.findall(r'^inferd_grpc_requests_total\{([^}]*)\} (\S+)$', text, re.M):
            kv = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            if kv.get("model") == "none":
                out[(kv["method"], kv["code"])] = out.get((kv["method"], kv["code"]), 0) + float(value)
        return out

    def test_b_front_end_refusals_are_counted_in_the_rpc_metrics(self):
        before = self.refusals()
        for _ in range(3):
            self.code_of(lambda: self.call(self.stub.Recommend, self.pb.RecommendRequest(), "Bearer guessed"))
        for _ in range(2):
            self.assertEqual(self.http("POST", "/v1/completions", {"model": "m", "prompt": "x"})[0], 401)
        self.assertEqual(self.http("POST", "/v1/rerank", {"model": "m", "query": "q", "documents": ["a"]},
                                   TOKENS["fb"])[0], 403)
        raw = self.request(model="").SerializeToString().replace(b"hello", b"he\xc3\x28o")
        stream = self.channel.unary_stream("/inferd.v1.Inference/GenerateStream")  # bytes in, bytes out
        e = self.code_of(lambda: list(stream(raw, metadata=[("authorization", f"Bearer {TOKENS['main']}")],
                                             timeout=30)))
        self.assertEqual(e.code(), self.grpc.StatusCode.INVALID_ARGUMENT)
        after = self.refusals()
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
        self.assertEqual(delta.get(("Recommend", "UNAUTHENTICATED")), 3, delta)
        self.assertEqual(delta.get(("Generate", "UNAUTHENTICATED")), 2, delta)
        self.assertEqual(delta.get(("Recommend", "PERMISSION_DENIED")), 1, delta)
        self.assertEqual(delta.get(("GenerateStream", "INVALID_ARGUMENT")), 1, delta)

    def test_z_the_log_never_shows_a_token(self):
        text = self.daemon.text()
        self.assertIn("refused", text)  # debug lines for the refusals above exist...
        for token in [*TOKENS.values(), LATE[1]]:  # (the edge's log is checked in test_a)
            self.assertNotIn(token, text)  # ...and name no secret



class ThreadBoundPythonClientTest(unittest.TestCase):
    """server.max_threads: with every gRPC server thread busy on a stream, the next RPC gets RESOURCE_EXHAUSTED
    at once; the process's thread count stays bounded; once the streams end the daemon serves again."""

    MAX_THREADS = 8

    @classmethod
    def setUpClass(cls):
        support.ARGS = ARGS
        support.prepare_client_class(cls, "inferd-pythreads-")
        cls.addr = f"127.0.0.1:{support.free_port()}"
        cls.daemon = support.Daemon("threads", f"""server: {{grpc_address: "{cls.addr}", drain_grace_seconds: 1,
         max_threads: {cls.MAX_THREADS}}}
metrics: {{address: "127.0.0.1:{support.free_port()}"}}
models:
  - {{name: m, path: {ARGS.model}, classes: [realtime, complex], scheduler: {{max_running: 64}}}}
""", cls.work)
        support.start_until_serving(cls, cls.daemon)
        cls.stub = cls.rpc.InferenceStub(cls.grpc.insecure_channel(cls.addr))

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def threads(self):
        with open(f"/proc/{self.daemon.proc.pid}/status") as f:
            return int(re.search(r"^Threads:\s+(\d+)", f.read(), re.M).group(1))

    def long_stream(self):
        s = self.pb.SamplingParams(max_tokens=1000, ignore_eos=True, temperature=0.0)
        return self.stub.GenerateStream(self.pb.GenerateRequest(prompt="hello", model="m", sampling=s), timeout=120)

    def test_busy_threads_refuse_the_next_rpc_and_the_thread_count_is_bounded(self):
        idle = self.threads()
        streams, refused = [], None
        try:
            for _ in range(self.MAX_THREADS * 3):
                st = self.long_stream()
                try:
                    next(st)  # the stream holds a server thread once its first message arrived
                    streams.append(st)
                except self.grpc.RpcError as e:
                    refused = e
                    break
            self.assertIsNotNone(refused, f"{len(streams)} streams open and none refused")
            self.assertEqual(refused.code(), self.grpc.StatusCode.RESOURCE_EXHAUSTED, refused.details())
            self.assertGreaterEqual(len(streams), 2)
            self.assertLess(len(streams), self.MAX_THREADS)
            t0 = time.time()
            e = None
            try:
                self.stub.Generate(self.pb.GenerateRequest(prompt="x", model="m",
                                                           sampling=self.pb.SamplingParams(max_tokens=1)), timeout=30)
            except self.grpc.RpcError as err:
                e = err
            self.assertIsNotNone(e, "a unary call was served with every thread busy")
            self.assertEqual(e.code(), self.grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertLess(time.time() - t0, 5, "the refusal is immediate")
            self.assertLessEqual(self.threads(), idle + self.MAX_THREADS)
        finally:
            for st in streams:
                st.cancel()
        until = time.time() + 20
        served = None
        while time.time() < until and served is None:
            try:
                served = self.stub.Generate(self.pb.GenerateRequest(
                    prompt="x", model="m", sampling=self.pb.SamplingParams(max_tokens=1)), timeout=30)
            except self.grpc.RpcError:
                time.sleep(0.2)
        self.assertIsNotNone(served, "the daemon did not serve again after the streams ended")


if __name__ == "__main__":
    support.run_tests(sys.modules[__name__])
