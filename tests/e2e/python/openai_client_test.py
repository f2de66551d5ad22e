#!/usr/bin/env python3
"""The OpenAI-compatible HTTP front end through the official `openai` Python package (and curl and raw
sockets for framing and abuse), against the real inferd on loopback. Expected values come from outside the
daemon: prompt token counts from Hugging Face `tokenizers`/`transformers` (the checkpoint's own chat
template), greedy text from the gRPC API through grpcio, HTTP framing from curl.

Usage: openai_client_test.py --inferd build/bin/inferd --model build/e2e-model --proto-dir proto
"""

import argparse
import concurrent.futures
import importlib
import json
import math
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
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edge_client_test as support  # noqa: E402  (free_port, generate_stubs, Daemon)

ARGS = None
PROMPT = "Write a product description for a blue ceramic mug:"
MESSAGES = [{"role": "system", "content": "You write product copy."},
            {"role": "user", "content": "Describe a green canvas tent."}]


class OpenAiClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            import openai  # noqa: PLC0415
        except ImportError:
            raise unittest.SkipTest("the openai package is not installed (scripts/requirements.txt)")
        import grpc  # noqa: PLC0415

        cls.openai, cls.grpc = openai, grpc
        support.ARGS = ARGS
        cls.work = tempfile.mkdtemp(prefix="inferd-pyhttp-")
        support.generate_stubs(ARGS.proto_dir, os.path.join(cls.work, "stubs"))
        cls.pb = importlib.import_module("inferd.v1.inferd_pb2")
        cls.rpc = importlib.import_module("inferd.v1.inferd_pb2_grpc")
        cls.grpc_addr = f"127.0.0.1:{support.free_port()}"
        cls.http_port = support.free_port()
        cls.metrics = f"127.0.0.1:{support.free_port()}"
        cls.max_connections = 24
        cls.daemon = support.Daemon("http", f"""server: {{grpc_address: "{cls.grpc_addr}", drain_grace_seconds: 1}}
http: {{enabled: true, address: "127.0.0.1:{cls.http_port}", max_body_bytes: 64KiB, max_header_bytes: 4KiB,
        max_connections: {cls.max_connections}, idle_timeout_ms: 3000, read_timeout_ms: 1500}}
metrics: {{address: "{cls.metrics}"}}
models:
  - {{name: m, path: {ARGS.model}, classes: [realtime, complex], scheduler: {{realtime_deadline_ms: 10000}}}}
  - {{name: tight, path: {ARGS.model}, classes: [],
      scheduler: {{max_running: 1, max_waiting_complex: 8, realtime_deadline_ms: 10000}}}}
""", cls.work)
        cls.base = f"http://127.0.0.1:{cls.http_port}"
        try:
            cls.daemon.start()
            cls.wait_ready()
        except Exception:
            cls.tearDownClass()
            raise
        cls.client = openai.OpenAI(base_url=cls.base + "/v1", api_key="unused", max_retries=0, timeout=60)
        cls.stub = cls.rpc.InferenceStub(grpc.insecure_channel(cls.grpc_addr))

    @classmethod
    def wait_ready(cls, timeout=180):
        until = time.time() + timeout
        while time.time() < until:
            try:
                with urllib.request.urlopen(cls.base + "/ready", timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if cls.daemon.proc.poll() is not None:
                raise RuntimeError(f"inferd exited with {cls.daemon.proc.returncode}:\n{cls.daemon.text()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"inferd never became ready:\n{cls.daemon.text()[-3000:]}")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    # ---- helpers ----

    def http(self, method, path, body=None, headers=None, timeout=30):
        """(status, headers, parsed JSON body) of a plain HTTP request."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read() or b"null")

    def metric(self, name, model="m"):
        """The sum of `name` over the series of `model`."""
        with urllib.request.urlopen(f"http://{self.metrics}/metrics", timeout=5) as r:
            text = r.read().decode()
        values = [float(v) for labels, v in re.findall(rf'^{name}{{([^}}]*)}} (\S+)$', text, re.M)
                  if f'model="{model}"' in labels]
        self.assertTrue(values, f"{name} for model {model} not on /metrics")
        return sum(values)

    def assert_idle(self, kv_baseline, timeout=10):
        """Within `timeout` s nothing runs on pool m and its KV cache usage is back to `kv_baseline`."""
        until = time.time() + timeout
        while time.time() < until and (self.metric("inferd_running_requests") != 0 or
                                       self.metric("inferd_kv_cache_usage_ratio") != kv_baseline):
            time.sleep(0.05)
        self.assertEqual(self.metric("inferd_running_requests"), 0.0)
        self.assertEqual(self.metric("inferd_kv_cache_usage_ratio"), kv_baseline)

    def prompt_tokens(self, text):
        """Prompt length by Hugging Face tokenizers: BOS (add_bos_token) + the text's tokens."""
        from tokenizers import Tokenizer  # noqa: PLC0415

        tok = Tokenizer.from_file(os.path.join(ARGS.model, "tokenizer.json"))
        with open(os.path.join(ARGS.model, "tokenizer_config.json")) as f:
            add_bos = json.load(f).get("add_bos_token", False)
        return len(tok.encode(text, add_special_tokens=False).ids) + (1 if add_bos else 0)

    def chat_prompt_tokens(self, messages):
        from transformers import AutoTokenizer  # noqa: PLC0415

        tok = AutoTokenizer.from_pretrained(ARGS.model)
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)  # BOS included
        return len(tok(text, add_special_tokens=False)["input_ids"])

    def grpc_greedy(self, max_tokens, **input_):
        s = self.pb.SamplingParams(max_tokens=max_tokens, ignore_eos=True, temperature=0.0)
        return self.stub.Generate(self.pb.GenerateRequest(sampling=s, model="m", **input_), timeout=60)

    # ---- endpoints ----

    def test_01_health_ready_and_models(self):
        status, _, body = self.http("GET", "/health")
        self.assertEqual((status, body), (200, {"status": "ok"}))
        status, _, body = self.http("GET", "/ready")
        self.assertEqual((status, body), (200, {"status": "ready"}))
        ids = [m.id for m in self.client.models.list().data]
        self.assertEqual(ids, ["m", "tight"])
        self.assertEqual(self.client.models.retrieve("m").id, "m")
        with self.assertRaises(self.openai.NotFoundError):
            self.client.models.retrieve("absent")

    def test_02_completion_unary_equals_stream_and_grpc(self):
        args = dict(model="m", prompt=PROMPT, max_tokens=12, temperature=0, extra_body={"ignore_eos": True})
        unary = self.client.completions.create(**args)
        self.assertEqual(unary.object, "text_completion")
        self.assertEqual(unary.choices[0].finish_reason, "length")
        self.assertEqual(unary.usage.completion_tokens, 12)
        self.assertEqual(unary.usage.prompt_tokens, self.prompt_tokens(PROMPT))
        self.assertEqual(unary.usage.total_tokens, unary.usage.prompt_tokens + 12)
        text, usage, finish = "", None, None
        for chunk in self.client.completions.create(stream=True, stream_options={"include_usage": True}, **args):
            if chunk.choices:
                text += chunk.choices[0].text
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
        self.assertEqual(text, unary.choices[0].text)
        self.assertEqual(finish, "length")
        self.assertIsNotNone(usage, "include_usage: no usage chunk")
        self.assertEqual((usage.prompt_tokens, usage.completion_tokens), (unary.usage.prompt_tokens, 12))
        self.assertEqual(self.grpc_greedy(12, prompt=PROMPT).text, unary.choices[0].text)

    def test_03_chat_unary_equals_stream_with_the_chat_template(self):
        args = dict(model="m", messages=MESSAGES, max_completion_tokens=10, temperature=0,
                    extra_body={"ignore_eos": True})
        unary = self.client.chat.completions.create(**args)
        self.assertEqual(unary.object, "chat.completion")
        self.assertEqual(unary.choices[0].message.role, "assistant")
        self.assertEqual(unary.usage.completion_tokens, 10)
        self.assertEqual(unary.usage.prompt_tokens, self.chat_prompt_tokens(MESSAGES))
        stream = self.client.chat.completions.create(stream=True, **args)
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
        self.assertEqual("".join(pieces), unary.choices[0].message.content)
        msgs = self.pb.ChatMessages(messages=[self.pb.ChatMessage(**m) for m in MESSAGES])
        self.assertEqual(self.grpc_greedy(10, messages=msgs).text, unary.choices[0].message.content)

    def test_04_sampling_parameters_seed_stop_and_logprobs(self):
        sampled = [self.client.completions.create(model="m", prompt=PROMPT, max_tokens=8, temperature=0.9,
                                                  top_p=0.95, seed=s, presence_penalty=0.5, frequency_penalty=0.5,
                                                  extra_body={"ignore_eos": True}).choices[0].text
                   for s in (7, 7, 8)]
        self.assertEqual(sampled[0], sampled[1], "same seed, different text")
        self.assertNotEqual(sampled[0], sampled[2], "seeds 7 and 8 drew the same text")
        greedy = self.client.completions.create(model="m", prompt=PROMPT, max_tokens=12, temperature=0,
                                                extra_body={"ignore_eos": True}).choices[0].text
        stop = greedy[len(greedy) // 2:][:3]
        self.assertTrue(stop)
        cut = self.client.completions.create(model="m", prompt=PROMPT, max_tokens=12, temperature=0, stop=[stop],
                                             extra_body={"ignore_eos": True})
        self.assertEqual(cut.choices[0].finish_reason, "stop")
        self.assertEqual(cut.choices[0].text, greedy[:greedy.index(stop)])
        chat = self.client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=6, temperature=0,
                                                   logprobs=True, top_logprobs=3, extra_body={"ignore_eos": True})
        content = chat.choices[0].logprobs.content
        self.assertEqual(len(content), 6)
        for t in content:
            self.assertEqual(len(t.top_logprobs), 3)
            lps = [a.logprob for a in t.top_logprobs]
            self.assertEqual(lps, sorted(lps, reverse=True))
            self.assertAlmostEqual(t.logprob, lps[0], places=5, msg="greedy picks the most likely token")
            self.assertLessEqual(t.logprob, 0.0)
        self.assertEqual("".join(bytes(t.bytes).decode("utf-8", "replace") for t in content).encode("utf-8", "replace"),
                         chat.choices[0].message.content.encode("utf-8", "replace"))
        comp = self.client.completions.create(model="m", prompt=PROMPT, max_tokens=4, temperature=0, logprobs=2,
                                              extra_body={"ignore_eos": True})
        lp = comp.choices[0].logprobs
        self.assertEqual(len(lp.tokens), 4)
        self.assertEqual(len(lp.token_logprobs), 4)
        self.assertTrue(all(len(t) >= 1 for t in lp.top_logprobs))

    def test_05_rerank_matches_grpc_recommend(self):
        docs = [" a camping stove", " a banana", " a sleeping bag", " tax forms"]
        status, _, body = self.http("POST", "/v1/rerank", {"model": "m", "query": "I bought a tent and",
                                                          "documents": docs, "top_n": 3, "return_documents": True})
        self.assertEqual(status, 200, body)
        results = body["results"]
        self.assertEqual(len(results), 3)
        scores = [r["relevance_score"] for r in results]
        self.assertEqual(scores, sorted(scores, reverse=True))
        ref = self.stub.Recommend(self.pb.RecommendRequest(
            model="m", context="I bought a tent and", score_by_mean=True,
            candidates=[self.pb.Candidate(item_id=i, text=t) for i, t in enumerate(docs)]), timeout=60)
        want = [(it.item_id, math.exp(it.mean_logprob)) for it in ref.plain.items][:3]
        self.assertEqual([r["index"] for r in results], [i for i, _ in want])
        for r, (_, s) in zip(results, want):
            self.assertAlmostEqual(r["relevance_score"], s, delta=1e-9 + 1e-6 * s)
            self.assertEqual(r["document"]["text"], docs[r["index"]])

    # ---- errors ----

    def test_06_bad_requests_get_openai_errors_naming_the_field(self):
        o = self.openai
        c = self.client
        table = [
            (lambda: c.completions.create(model="m", prompt="x", top_p=3), o.BadRequestError, 400, "top_p"),
            (lambda: c.completions.create(model="m", prompt="x", temperature=-1), o.BadRequestError, 400,
             "temperature"),
            (lambda: c.completions.create(model="m", prompt="x", n=2), o.BadRequestError, 400, "n"),
            (lambda: c.completions.create(model="m", prompt="x", max_tokens=10 ** 6), o.BadRequestError, 400,
             "max_tokens"),
            (lambda: c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                               max_completion_tokens=10 ** 6), o.BadRequestError, 400,
             "max_completion_tokens"),
            (lambda: c.chat.completions.create(model="m", messages=[]), o.BadRequestError, 400, "messages"),
            (lambda: c.chat.completions.create(model="m", messages=[{"role": "wizard", "content": "x"}]),
             o.BadRequestError, 400, "messages"),
            (lambda: c.completions.create(model="m", prompt="x", extra_body={"temperature": "hot"}),
             o.BadRequestError, 400, "temperature"),
            (lambda: c.completions.create(model="m", prompt="x", stop=["s"] * 17), o.BadRequestError, 400, "stop"),
            (lambda: c.completions.create(model="m", prompt="x", logprobs=21), o.BadRequestError, 400, "logprobs"),
            (lambda: c.completions.create(model="m", prompt="x", extra_body={"tools": []}), o.BadRequestError, 400,
             "tools"),
            (lambda: c.completions.create(model="absent", prompt="x"), o.NotFoundError, 404, "model"),
        ]
        for call, exc, status, param in table:
            with self.subTest(status=status, param=param):
                with self.assertRaises(exc) as caught:
                    call()
                e = caught.exception
                self.assertEqual(e.status_code, status)
                self.assertEqual(set(e.body.keys()), {"message", "type", "param", "code"})
                self.assertEqual(e.body["param"], param, e.body)
                self.assertLess(len(e.body["message"]), 300)
                if status == 404:
                    self.assertEqual(e.body["code"], "model_not_found")

    def test_07_raw_http_errors(self):
        cases = [
            ("POST", "/v1/completions", b'{"prompt": "x",', 400, "malformed JSON"),
            ("POST", "/v1/completions", b'[1, 2]', 400, "expected a JSON object"),
            ("POST", "/v1/completions", b'', 400, "empty"),
            ("POST", "/v1/completions", b'{"prompt": ' + b'[' * 100 + b']' * 100 + b'}', 400, "nested deeper"),
            ("POST", "/v1/completions", b'{"prompt": "x", "stream": "yes"}', 400, "stream: expected a boolean"),
            ("POST", "/v1/completions", b'{"prompt": "x", "stream_options": {"include_usage": true}}', 400,
             "stream_options: only allowed with stream"),
            ("POST", "/v1/rerank", b'{"query": "q", "documents": [1]}', 400, "documents[0]"),
            ("POST", "/v1/rerank", b'{"documents": ["a"]}', 400, "query: required"),
            ("GET", "/v1/completions", None, 405, "use POST"),
            ("GET", "/v2/anything", None, 404, "no such endpoint"),
            ("POST", "/v1/completions", b'{"prompt": "' + b'x' * (70 << 10) + b'"}', 413, "max_body_bytes"),
        ]
        for method, path, body, status, words in cases:
            with self.subTest(path=path, status=status, words=words):
                got, _, resp = self.http(method, path, body)
                self.assertEqual(got, status, resp)
                self.assertIn(words, resp["error"]["message"])
                self.assertLess(len(resp["error"]["message"]), 300, "errors echo at most a short prefix")
        big = {"x-big": "y" * (5 << 10)}
        got, _, resp = self.http("GET", "/health", headers=big)
        self.assertEqual(got, 431, resp)
        self.assertEqual(self.http("GET", "/health")[0], 200, "the daemon keeps serving")

    def test_08_curl_sees_server_sent_events(self):
        body = json.dumps({"model": "m", "prompt": PROMPT, "max_tokens": 5, "temperature": 0, "ignore_eos": True,
                           "stream": True})
        out = subprocess.run(["curl", "-sS", "-N", "-i", "-H", "Content-Type: application/json", "-d", body,
                              self.base + "/v1/completions"], capture_output=True, timeout=60, check=True).stdout
        head, _, events = out.partition(b"\r\n\r\n")
        self.assertIn(b"HTTP/1.1 200", head)
        self.assertIn(b"content-type: text/event-stream", head.lower())
        self.assertIn(b"transfer-encoding: chunked", head.lower())
        blocks = events.split(b"\n\n")
        self.assertEqual(blocks[-1], b"", "events end with a blank line")
        blocks = blocks[:-1]
        self.assertEqual(blocks[-1], b"data: [DONE]")
        for b in blocks[:-1]:
            self.assertTrue(b.startswith(b"data: {"), b)
            chunk = json.loads(b[len(b"data: "):])
            self.assertEqual(chunk["object"], "text_completion")
        self.assertEqual(json.loads(blocks[-2][6:])["choices"][0]["finish_reason"], "length")
        # A client that sends `Expect: 100-continue` (curl does for large bodies) is told to go on instead
        # of waiting out its timeout.
        big = json.dumps({"model": "m", "prompt": "word " * 400, "max_tokens": 1})
        run = subprocess.run(["curl", "-sS", "-v", "-H", "Content-Type: application/json", "-H",
                              "Expect: 100-continue", "-d", big, self.base + "/v1/completions"],
                             capture_output=True, timeout=60, check=True)
        self.assertIn(b"HTTP/1.1 100 Continue", run.stderr)
        self.assertEqual(json.loads(run.stdout)["usage"]["completion_tokens"], 1)

    def test_09_slow_and_idle_clients_time_out_and_the_daemon_keeps_serving(self):
        slow = socket.create_connection(("127.0.0.1", self.http_port))
        slow.settimeout(10)
        t0 = time.time()
        head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n"
        got = b""
        try:
            for byte in head:  # slowloris: one byte every 100 ms never finishes in read_timeout_ms (1500)
                slow.sendall(bytes([byte]))
                time.sleep(0.1)
                if time.time() - t0 > 4:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                piece = slow.recv(4096)
                if not piece:
                    break
                got += piece
        except (ConnectionResetError, socket.timeout):
            pass
        slow.close()
        self.assertIn(b" 408 ", got.split(b"\r\n")[0])
        self.assertIn(b"read_timeout_ms", got)
        self.assertLess(time.time() - t0, 5)
        idle = socket.create_connection(("127.0.0.1", self.http_port))
        idle.settimeout(10)
        t0 = time.time()
        self.assertEqual(idle.recv(1), b"", "an idle connection is closed after idle_timeout_ms")
        self.assertGreater(time.time() - t0, 2.0)
        idle.close()
        self.assertEqual(self.client.completions.create(model="m", prompt="x", max_tokens=2).usage.completion_tokens
                         <= 2, True)

    def test_10_connection_limit(self):
        socks, refused = [], None
        try:
            for _ in range(self.max_connections + 1):
                socks.append(socket.create_connection(("127.0.0.1", self.http_port)))
            time.sleep(0.5)
            for s in socks:
                s.setblocking(False)
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                refused = data
                break
        finally:
            for s in socks:
                s.close()
        self.assertIsNotNone(refused, "no connection was refused beyond max_connections")
        self.assertIn(b" 503 ", refused.split(b"\r\n")[0])
        self.assertIn(b"max_connections", refused)
        time.sleep(0.5)
        self.assertEqual(self.http("GET", "/health")[0], 200)

    # ---- cancellation and concurrency ----

    def test_11_client_disconnect_mid_stream_frees_the_kv_blocks(self):
        baseline = self.metric("inferd_kv_cache_usage_ratio")
        stream = self.client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=1000, temperature=0,
                                                     stream=True, extra_body={"ignore_eos": True})
        got = 0
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                got += 1
            if got >= 3:
                break
        self.assertEqual(self.metric("inferd_running_requests"), 1.0)
        self.assertGreater(self.metric("inferd_kv_cache_usage_ratio"), baseline)
        stream.close()
        self.assert_idle(baseline)
        self.assertTrue(self.daemon.wait_log(r"generate_stream request_id=\S+ ended CANCELLED"),
                        "the request did not end CANCELLED")

    def test_13_full_queue_is_429_with_retry_after(self):
        # Pool `tight` runs 1 request and queues at most 8: long streams read by curl fill it. They start 50 ms
        # apart, far faster than one 1000-token stream ends, and the probes begin once 10 have started.
        body = json.dumps({"model": "tight", "prompt": PROMPT, "max_tokens": 1000, "temperature": 0,
                           "ignore_eos": True, "stream": True})
        fillers = []
        try:
            refused = None
            for _ in range(30):
                fillers.append(subprocess.Popen(["curl", "-sN", "-d", body, self.base + "/v1/completions"],
                                                stdout=subprocess.DEVNULL))
                time.sleep(0.05)
                if len(fillers) < 10:
                    continue
                try:
                    # No client retries: the client would retry a 429 after Retry-After and could end on a timeout.
                    self.client.with_options(timeout=1, max_retries=0).completions.create(model="tight", prompt="x",
                                                                                          max_tokens=1)
                except self.openai.RateLimitError as e:
                    refused = e
                    break
                except self.openai.APITimeoutError:
                    pass
            self.assertIsNotNone(refused, "the queue never filled")
            self.assertEqual(refused.status_code, 429)
            self.assertEqual(refused.body["type"], "rate_limit_error")
            self.assertIn("queue is full", refused.body["message"])
            self.assertGreaterEqual(int(refused.response.headers["retry-after"]), 1)
            self.assertGreaterEqual(int(refused.response.headers["retry-after-ms"]), 1)
            self.assertGreaterEqual(len(fillers), 9, "at least one running and eight waiting before the refusal")
        finally:
            for f in fillers:
                f.kill()
                f.wait()
        until = time.time() + 10
        while time.time() < until and self.metric("inferd_running_requests", "tight") != 0:
            time.sleep(0.05)
        self.assertEqual(self.metric("inferd_running_requests", "tight"), 0, "closed streams were not cancelled")

    def test_14_deadline_is_504_unary_and_an_error_event_once_streaming(self):
        # inferd-timeout-ms sets the request's deadline; 1000 tokens take far longer than 300 ms here.
        t0 = time.time()
        with self.assertRaises(self.openai.APIStatusError) as caught:
            self.client.completions.create(model="m", prompt=PROMPT, max_tokens=1000, temperature=0,
                                           extra_body={"ignore_eos": True},
                                           extra_headers={"inferd-timeout-ms": "300"})
        e = caught.exception
        self.assertEqual(e.status_code, 504, e.body)
        self.assertEqual(e.body["type"], "timeout_error")
        self.assertEqual(e.body["code"], "deadline_exceeded")
        self.assertLess(time.time() - t0, 20, "the deadline ended the request early")
        body = json.dumps({"model": "m", "prompt": PROMPT, "max_tokens": 1000, "temperature": 0, "ignore_eos": True,
                           "stream": True})
        out = subprocess.run(["curl", "-sS", "-N", "-H", "inferd-timeout-ms: 300", "-d", body,
                              self.base + "/v1/completions"], capture_output=True, timeout=60, check=True).stdout
        blocks = [b for b in out.split(b"\n\n") if b]
        self.assertEqual(blocks[-1], b"data: [DONE]")
        last = json.loads(blocks[-2][len(b"data: "):])
        self.assertEqual(last["error"]["type"], "timeout_error", last)
        self.assertGreater(len(blocks), 2, "tokens were streamed before the deadline")
        for bad in ["0", "-5", "1.5", "soon", "99999999"]:
            with self.subTest(header=bad):
                got, _, resp = self.http("POST", "/v1/completions", {"model": "m", "prompt": "x", "max_tokens": 1},
                                         headers={"inferd-timeout-ms": bad})
                self.assertEqual(got, 400, resp)
                self.assertIn("inferd-timeout-ms: expected whole milliseconds", resp["error"]["message"])
        got, _, resp = self.http("POST", "/v1/rerank", {"model": "m", "query": "q", "documents": ["a", "b"]},
                                 headers={"inferd-timeout-ms": "30000"})
        self.assertEqual(got, 200, resp)
        until = time.time() + 10
        while time.time() < until and self.metric("inferd_running_requests") != 0:
            time.sleep(0.05)
        self.assertEqual(self.metric("inferd_running_requests"), 0.0)

    def test_15_client_disconnect_during_a_unary_request_frees_the_kv_blocks(self):
        baseline = self.metric("inferd_kv_cache_usage_ratio")
        body = json.dumps({"model": "m", "prompt": PROMPT, "max_tokens": 1000, "temperature": 0,
                           "ignore_eos": True}).encode()
        conn = socket.create_connection(("127.0.0.1", self.http_port))
        conn.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"x-request-id: unary-gone\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        until = time.time() + 20
        while time.time() < until and self.metric("inferd_running_requests") != 1:
            time.sleep(0.05)
        self.assertEqual(self.metric("inferd_running_requests"), 1.0)
        self.assertGreater(self.metric("inferd_kv_cache_usage_ratio"), baseline)
        conn.close()
        self.assert_idle(baseline)
        self.assertTrue(self.daemon.wait_log(r"generate request_id=unary-gone ended CANCELLED"),
                        "the request did not end CANCELLED")

    def test_12_concurrent_clients(self):
        prompts = [f"Item {i}: a short description of product number {i}." for i in range(8)]

        def one(i):
            client = self.openai.OpenAI(base_url=self.base + "/v1", api_key="unused", max_retries=0, timeout=120)
            if i % 2:
                r = client.completions.create(model="m", prompt=prompts[i], max_tokens=8, temperature=0,
                                              extra_body={"ignore_eos": True})
                return r.id, r.usage.completion_tokens, r.usage.prompt_tokens
            text, usage, ident = "", None, None
            for c in client.completions.create(model="m", prompt=prompts[i], max_tokens=8, temperature=0,
                                               stream=True, stream_options={"include_usage": True},
                                               extra_body={"ignore_eos": True}):
                ident = c.id
                usage = c.usage or usage
            return ident, usage.completion_tokens, usage.prompt_tokens

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(8)))
        self.assertEqual(len({r[0] for r in results}), 8, "response ids are unique")
        for i, (_, completion, prompt) in enumerate(results):
            self.assertEqual(completion, 8)
            self.assertEqual(prompt, self.prompt_tokens(prompts[i]))

    def test_99_sigterm_drains_and_exits_0(self):
        stream = self.client.completions.create(model="m", prompt=PROMPT, max_tokens=1000, temperature=0,
                                                stream=True, extra_body={"ignore_eos": True})
        next(iter(stream))
        self.daemon.proc.send_signal(signal.SIGTERM)
        self.assertTrue(self.daemon.wait_log("draining"), "no drain logged")
        with self.assertRaises((self.openai.APIConnectionError, self.openai.InternalServerError)):
            self.client.completions.create(model="m", prompt="x", max_tokens=1)
        # In flight: cut when the 1 s grace ends, and the daemon exits 0.
        with self.assertRaises(Exception):
            for _ in stream:
                pass
        self.assertEqual(self.daemon.proc.wait(20), 0)


if __name__ == "__main__":
    support.run_tests(sys.modules[__name__])
