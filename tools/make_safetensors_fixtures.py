#!/usr/bin/env python3
"""Safetensors fixtures for tests/model/safetensors_test.cpp: valid checkpoints with known values (written by
the `safetensors` library) and hand-made broken ones.

Usage:
    python tools/make_safetensors_fixtures.py --out DIR        (about 2 s, mostly importing torch)

Each sub-directory of DIR is one checkpoint directory:
    single/           model.safetensors: f32 "a" [3,4] = 0.5 * arange(12); bf16 "b" [2,3] = [-1.5, -0.5, 0,
                      0.25, 2, 3.5]; f16 "h" [5] = [-2, -1, 0, 1, 2] / 4; i64 "ids" [4] = [7, -1, 0, 1 << 40];
                      f32 scalar "s" [] = 3.25; f32 "empty" [0, 4]; fp8 "w.weight" [200, 300] with
                      "w.weight_scale_inv" [2, 3]; fp8 "raw8" [2, 2] = [0.5, -1, 2, 448] without a scale;
                      u8 "u" [3] = [1, 2, 255]; __metadata__ {"format": "pt"}
    expected/         model.safetensors: f32 "w.weight" [200, 300], the dequantised fp8 weight of single/
    sharded/          model.safetensors.index.json + model-00001-of-00002 / model-00002-of-00002: f32
                      "layer.0.weight" [4, 4] = arange(16) in shard 1, "layer.1.weight" [4, 4] = -arange(16)
                      in shard 2, fp8 "q.weight" [130, 129] in shard 1 with its "q.weight_scale_inv" [2, 2]
                      in shard 2; expected/ holds its dequantised value as "q.weight" too
    unaligned/        model.safetensors with a 1-byte u8 tensor first, so the f32 "x" [3] = [1, 2, 3] starts at
                      an odd offset (the writer is hand-made; the library would not do this)
    bad_truncated/    single/'s file cut 10 bytes short
    bad_tiny/         a 5-byte file
    bad_header_len/   header length 1e6 in a 200-byte file
    bad_json/         header "{not json"
    bad_not_object/   header "[1, 2]"
    bad_offsets/      "x" F32 [4] with data_offsets [0, 64] in a 16-byte data section
    bad_size/         "x" F32 [4] with data_offsets [0, 12]
    bad_overlap/      "x" and "y" F32 [4] at [0, 16] and [8, 24]
    bad_dtype/        "x" with dtype "F7"
    bad_missing_shard/ index naming model-00002-of-00002.safetensors, which is absent
    bad_index_json/   index that is not JSON
    bad_index_escape/ index naming "../single/model.safetensors"
    bad_index_wrong_shard/ index putting "x" in shard 2 and "y" in shard 1, while they live the other way round
    bad_duplicate/    two shards both holding "x" (the index maps "x" to shard 1, "y" to shard 2)
    bad_empty/        an empty directory
"""

import argparse
import json
import os
import shutil
import struct

import torch
from safetensors.torch import save_file

FP8_BLOCK = 128


def fp8_quantize(weight):
    rows, cols = weight.shape
    br, bc = -(-rows // FP8_BLOCK), -(-cols // FP8_BLOCK)
    padded = torch.zeros(br * FP8_BLOCK, bc * FP8_BLOCK)
    padded[:rows, :cols] = weight
    blocks = padded.view(br, FP8_BLOCK, bc, FP8_BLOCK)
    scale_inv = blocks.abs().amax(dim=(1, 3)).clamp(min=1e-12) / 448.0
    quant = (blocks / scale_inv[:, None, :, None]).clamp(-448, 448).to(torch.float8_e4m3fn)
    dequant = (quant.float() * scale_inv[:, None, :, None]).view(br * FP8_BLOCK, bc * FP8_BLOCK)
    quant = quant.view(br * FP8_BLOCK, bc * FP8_BLOCK)[:rows, :cols].contiguous()
    return quant, scale_inv.contiguous(), dequant[:rows, :cols].contiguous()


def raw_file(path, header, data=b"", header_len=None):
    """Writes a safetensors file by hand: header is a dict (JSON-encoded) or raw bytes."""
    hbytes = header if isinstance(header, bytes) else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes) if header_len is None else header_len))
        f.write(hbytes)
        f.write(data)


def subdir(root, name):
    path = os.path.join(root, name)
    os.makedirs(path)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory (replaced if it exists)")
    args = parser.parse_args()
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    gen = torch.Generator().manual_seed(1234)

    w = torch.randn(200, 300, generator=gen) * 0.05
    wq, ws, wdq = fp8_quantize(w)
    single = {
        "a": 0.5 * torch.arange(12, dtype=torch.float32).reshape(3, 4),
        "b": torch.tensor([[-1.5, -0.5, 0.0], [0.25, 2.0, 3.5]], dtype=torch.bfloat16),
        "h": torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], dtype=torch.float16) / 4,
        "ids": torch.tensor([7, -1, 0, 1 << 40], dtype=torch.int64),
        "s": torch.tensor(3.25, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
        "w.weight": wq,
        "w.weight_scale_inv": ws,
        "raw8": torch.tensor([[0.5, -1.0], [2.0, 448.0]]).to(torch.float8_e4m3fn),
        "u": torch.tensor([1, 2, 255], dtype=torch.uint8),
    }
    save_file(single, os.path.join(subdir(args.out, "single"), "model.safetensors"), metadata={"format": "pt"})

    q = torch.randn(130, 129, generator=gen)
    qq, qs, qdq = fp8_quantize(q)
    save_file({"w.weight": wdq, "q.weight": qdq},
              os.path.join(subdir(args.out, "expected"), "model.safetensors"))

    sharded = subdir(args.out, "sharded")
    shard1 = {"layer.0.weight": torch.arange(16, dtype=torch.float32).reshape(4, 4), "q.weight": qq}
    shard2 = {"layer.1.weight": -torch.arange(16, dtype=torch.float32).reshape(4, 4), "q.weight_scale_inv": qs}
    names = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    save_file(shard1, os.path.join(sharded, names[0]), metadata={"format": "pt"})
    save_file(shard2, os.path.join(sharded, names[1]), metadata={"format": "pt"})
    weight_map = {**{k: names[0] for k in shard1}, **{k: names[1] for k in shard2}}
    with open(os.path.join(sharded, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)

    raw_file(os.path.join(subdir(args.out, "unaligned"), "model.safetensors"),
             {"pad": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
              "x": {"dtype": "F32", "shape": [3], "data_offsets": [1, 13]}},
             b"\x07" + struct.pack("<3f", 1.0, 2.0, 3.0))

    with open(os.path.join(args.out, "single", "model.safetensors"), "rb") as f:
        good = f.read()
    with open(os.path.join(subdir(args.out, "bad_truncated"), "model.safetensors"), "wb") as f:
        f.write(good[:-10])
    with open(os.path.join(subdir(args.out, "bad_tiny"), "model.safetensors"), "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00")
    raw_file(os.path.join(subdir(args.out, "bad_header_len"), "model.safetensors"), b" " * 192,
             header_len=1_000_000)
    raw_file(os.path.join(subdir(args.out, "bad_json"), "model.safetensors"), b"{not json")
    raw_file(os.path.join(subdir(args.out, "bad_not_object"), "model.safetensors"), b"[1, 2]")
    data16 = struct.pack("<4f", 1, 2, 3, 4)
    raw_file(os.path.join(subdir(args.out, "bad_offsets"), "model.safetensors"),
             {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 64]}}, data16)
    raw_file(os.path.join(subdir(args.out, "bad_size"), "model.safetensors"),
             {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}, data16)
    raw_file(os.path.join(subdir(args.out, "bad_overlap"), "model.safetensors"),
             {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "y": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, data16 + data16[:8])
    raw_file(os.path.join(subdir(args.out, "bad_dtype"), "model.safetensors"),
             {"x": {"dtype": "F7", "shape": [4], "data_offsets": [0, 16]}}, data16)

    def index(dirname, weight_map, text=None):
        d = subdir(args.out, dirname)
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            f.write(text if text is not None else json.dumps({"metadata": {}, "weight_map": weight_map}))
        return d

    d = index("bad_missing_shard", {"x": names[0], "y": names[1]})
    save_file({"x": torch.ones(2)}, os.path.join(d, names[0]))
    index("bad_index_json", None, text='{"weight_map": ')
    index("bad_index_escape", {"a": "../single/model.safetensors"})
    d = index("bad_index_wrong_shard", {"x": names[1], "y": names[0]})
    save_file({"x": torch.ones(2)}, os.path.join(d, names[0]))
    save_file({"y": torch.ones(2)}, os.path.join(d, names[1]))
    d = index("bad_duplicate", {"x": names[0], "y": names[1]})
    save_file({"x": torch.ones(2)}, os.path.join(d, names[0]))
    save_file({"x": torch.ones(2), "y": torch.ones(2)}, os.path.join(d, names[1]))
    subdir(args.out, "bad_empty")


if __name__ == "__main__":
    main()
