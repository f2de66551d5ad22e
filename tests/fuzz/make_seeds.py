#!/usr/bin/env python3
"""Writes the committed seed corpora of tests/fuzz/corpus/ (rerun after changing a request or file format).

Usage: tests/fuzz/make_seeds.py  (from the repository root; needs protoc for the request seeds)
"""
import json
import os
import pathlib
import shutil
import struct
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fuzz/corpus"


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def safetensors(header, data=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def seeds_safetensors():
    write("safetensors_header", "one_f32", safetensors(
        {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, bytes(16)))
    write("safetensors_header", "two_with_metadata", safetensors(
        {"__metadata__": {"format": "pt"},
         "a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]},
         "b": {"dtype": "F8_E4M3", "shape": [2, 4], "data_offsets": [6, 14]},
         "b_scale_inv": {"dtype": "F32", "shape": [1, 1], "data_offsets": [14, 18]}}, bytes(18)))
    write("safetensors_header", "empty_tensor_and_gap", safetensors(
        {"e": {"dtype": "I64", "shape": [0, 5], "data_offsets": [4, 4]},
         "x": {"dtype": "U8", "shape": [4], "data_offsets": [8, 12]}}, bytes(12)))
    write("safetensors_header", "truncated", safetensors(
        {"w": {"dtype": "F16", "shape": [8], "data_offsets": [0, 16]}}, bytes(5)))
    write("safetensors_header", "short", b"\x05\x00\x00")


def seeds_config():
    for f in sorted((ROOT / "configs").glob("*.yaml")):
        write("config", f.name, f.read_bytes())
    write("config", "minimal.yaml", "models:\n  - name: default\n    path: /models/x\n")


def seeds_tokenizer():
    texts = ["Hello, world!", "  leading spaces and\ttabs\n\nnew lines", "数字 12345 和中文",
             "emoji 🤖👍🏽 mixed", "<｜begin▁of▁sentence｜>special<｜end▁of▁sentence｜>",
             "'s 're 've n't contractions", "ÄÖÜ éè ﬁ ligature", "x" * 300]
    for i, t in enumerate(texts):
        for mode in (0, 2, 4, 8):
            write("tokenizer", f"text{i}_m{mode}", bytes([mode]) + t.encode())
    write("tokenizer", "invalid_utf8_m8", bytes([8]) + b"ab\xff\xc3(\xed\xa0\x80")
    write("tokenizer", "ids_m1", bytes([1]) + bytes(range(64)))
    write("tokenizer", "ids_m3", bytes([3]) + bytes(range(255, 0, -3)))


def seeds_chat_template():
    write("chat_template", "plain", b"\x01\x03\x00\x01\x10You are helpful.\x00\x01\x01\x05Hi!\x02\x00\x01\x06Hello")
    write("chat_template", "tools", b"\x00\x02\x02\x00\x02\x00\x08get_time\x08{\"tz\":1}\x03\x01\x04done")


def protoc_encode(message, text):
    proto = ROOT / "proto/inferd/v1/inferd.proto"
    return subprocess.run(["protoc", f"--proto_path={ROOT / 'proto'}", f"--encode=inferd.v1.{message}", str(proto)],
                          input=text.encode(), capture_output=True, check=True).stdout


def seeds_request_decode():
    gen = {
        "prompt": 'prompt: "Describe a red bicycle" sampling { temperature: 0.7 top_p: 0.9 max_tokens: 32 seed: 7 }',
        "chat": 'messages { messages { role: "system" content: "Be brief" } messages { role: "user" content: "Hi" } }'
                ' sampling { stop: "\\n" stop: "END" top_logprobs: 3 }',
        "ids": 'prompt_token_ids { ids: [0, 1, 2, 3, 100] } request_id: "r-1" sampling { ignore_eos: true }',
        "bad_top_p": 'prompt: "x" sampling { top_p: 1.5 repetition_penalty: -1 }',
        "class_hint": 'prompt: "y" class_hint: 2 latency_budget_ms: 50 model: "default"',
    }
    for name, text in gen.items():
        write("request_decode", "gen_" + name, b"\x00" + protoc_encode("GenerateRequest", text))
    rec = {
        "basic": 'context: "user likes hiking" candidates { item_id: 1 text: "tent" } candidates { item_id: 2 text: "boots" }'
                 ' top_k: 1',
        "diff": 'context: "c" candidates { item_id: 9 text: "a" } encoding: 2 score_precision: 0.01'
                ' previous_response_id: "resp-1" previous_response_hash: 123 score_by_mean: true',
        "dup": 'context: "c" candidates { item_id: 5 text: "a" } candidates { item_id: 5 text: "b" }',
    }
    for name, text in rec.items():
        write("request_decode", "rec_" + name, b"\x01" + protoc_encode("RecommendRequest", text))


def seeds_ranking_codec():
    for i in range(6):
        write("ranking_codec", f"bytes{i}", bytes((i * 37 + k * 11) % 256 for k in range(40 + i * 30)))


if __name__ == "__main__":
    if OUT.exists():
        shutil.rmtree(OUT)
    seeds_safetensors()
    seeds_config()
    seeds_tokenizer()
    seeds_chat_template()
    seeds_request_decode()
    seeds_ranking_codec()
    for d in sorted(OUT.iterdir()):
        print(d.name, len(os.listdir(d)))
