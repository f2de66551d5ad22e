#!/usr/bin/env python3
"""Random-weight checkpoint with a real model's shape, for benchmarks.

Usage:
    python benchmarks/model/make_bench_checkpoint.py --shape ../shared/bench-models/dense-270m-shape.json \
        --out models/bench/dense-270m [--dtype bf16] [--seed 0] [--shard-gb 2] [--force]

Timing on 2 cores: dense-270m about 10 s, moe-700m about 25 s, the 2.3B shapes about 1.5-2 min
(random generation plus writing 4.7 GB); peak memory about one shard (2 GB) plus the largest tensor.

The output is an ordinary HF checkpoint: config.json (the shape file with torch_dtype set to --dtype),
model.safetensors or model-0000k-of-0000n.safetensors + model.safetensors.index.json, and
inferd_bench_stamp.json (script version, shape file digest, dtype, seed, file sizes): a rerun with the
same inputs is a no-op. Each file written is synced and dropped from the page cache, so the first reader
caches it as a cold start would (on Linux, readahead puts it in large folios, which the loader's mapping then
maps with 2 MiB pages; the writer's small folios cost batch-1 decode 2-5%: benchmarks/model/RESULTS.md).

Weights: N(0, 0.02) for every matrix and embedding; RMSNorm weights are ones and DeepSeek-V3's
e_score_correction_bias is zeros (fp32, as in the release), so activations and routing stay in a
realistic range. Each tensor has its own generator seeded from (seed, tensor name), so the values do not
depend on the sharding. Tensor names and shapes come from transformers' own model class, instantiated
on the meta device (no memory), with its fused expert tensors written under the per-expert names of the
released checkpoints (mlp.experts.<e>.{gate,up,down}_proj.weight).
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import zlib

import torch
from safetensors.torch import save_file

SCRIPT_VERSION = 1
STAMP = "inferd_bench_stamp.json"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
DTYPE_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
INIT_STD = 0.02


def tensor_specs(config_dict):
    """[(name, shape)] in the released checkpoints' naming, from the transformers model on the meta device."""
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    cfg_for_build = dict(config_dict, torch_dtype="float32")
    config = AutoConfig.for_model(**cfg_for_build)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    specs = []
    state = model.state_dict()
    for name, t in state.items():
        shape = list(t.shape)
        if name.endswith("mlp.experts.gate_up_proj"):  # [E, 2I, H]: gate rows then up rows
            prefix = name[: -len("gate_up_proj")]
            n_exp, two_i, hidden = shape
            for e in range(n_exp):
                specs.append((f"{prefix}{e}.gate_proj.weight", [two_i // 2, hidden]))
                specs.append((f"{prefix}{e}.up_proj.weight", [two_i // 2, hidden]))
        elif name.endswith("mlp.experts.down_proj"):  # [E, H, I]
            prefix = name[: -len("down_proj")]
            for e in range(shape[0]):
                specs.append((f"{prefix}{e}.down_proj.weight", shape[1:]))
        else:
            specs.append((name, shape))
    if config_dict.get("tie_word_embeddings"):
        specs = [s for s in specs if s[0] != "lm_head.weight"]
    return sorted(specs)


def make_tensor(name, shape, dtype, seed):
    if name.endswith("e_score_correction_bias"):
        return torch.zeros(shape, dtype=torch.float32)
    if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
        return torch.ones(shape, dtype=dtype)
    gen = torch.Generator().manual_seed((seed << 32) ^ zlib.crc32(name.encode()))
    return (torch.randn(shape, generator=gen) * INIT_STD).to(dtype)


def nbytes(name, shape, dtype):
    n = 1
    for d in shape:
        n *= d
    elem = 4 if name.endswith("e_score_correction_bias") else torch.tensor([], dtype=dtype).element_size()
    return n * elem


def plan_shards(specs, dtype, shard_bytes):
    shards, cur, cur_bytes = [], [], 0
    for name, shape in specs:
        b = nbytes(name, shape, dtype)
        if cur and cur_bytes + b > shard_bytes:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append((name, shape))
        cur_bytes += b
    if cur:
        shards.append(cur)
    return shards


def stamp_matches(out_dir, want):
    try:
        with open(os.path.join(out_dir, STAMP)) as f:
            have = json.load(f)
    except (OSError, ValueError):
        return False
    if {k: have.get(k) for k in want} != want:
        return False
    files = have.get("files") or {}
    return bool(files) and all(
        os.path.isfile(os.path.join(out_dir, n)) and os.path.getsize(os.path.join(out_dir, n)) == s
        for n, s in files.items())


def drop_from_page_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", required=True, help="HF config.json with the model shape")
    parser.add_argument("--out", required=True, help="checkpoint directory to create")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-gb", type=float, default=2.0, help="maximum shard size in GB (1e9 bytes)")
    parser.add_argument("--force", action="store_true", help="rebuild even if DIR matches")
    args = parser.parse_args()

    with open(args.shape, "rb") as f:
        shape_bytes = f.read()
    config_dict = json.loads(shape_bytes)
    want = {"script_version": SCRIPT_VERSION, "shape_sha256": hashlib.sha256(shape_bytes).hexdigest(),
            "dtype": args.dtype, "seed": args.seed, "shard_gb": args.shard_gb}
    out_dir = os.path.abspath(args.out)
    if not args.force and stamp_matches(out_dir, want):
        print(f"{out_dir}: up to date", file=sys.stderr)
        return

    start = time.time()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    dtype = DTYPES[args.dtype]
    specs = tensor_specs(config_dict)
    shards = plan_shards(specs, dtype, int(args.shard_gb * 1e9))

    tmp_dir = f"{out_dir}.tmp.{os.getpid()}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    os.makedirs(tmp_dir)
    try:
        weight_map, total = {}, 0
        for k, shard in enumerate(shards):
            fname = ("model.safetensors" if len(shards) == 1
                     else f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors")
            tensors = {name: make_tensor(name, shape, dtype, args.seed) for name, shape in shard}
            save_file(tensors, os.path.join(tmp_dir, fname), metadata={"format": "pt"})
            drop_from_page_cache(os.path.join(tmp_dir, fname))
            for name, t in tensors.items():
                weight_map[name] = fname
                total += t.numel() * t.element_size()
            del tensors
            print(f"  {fname}: {len(shard)} tensors, {time.time() - start:.1f}s", file=sys.stderr)
        if len(shards) > 1:
            with open(os.path.join(tmp_dir, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2,
                          sort_keys=True)
        config_out = dict(config_dict, torch_dtype=DTYPE_NAMES[args.dtype])
        with open(os.path.join(tmp_dir, "config.json"), "w") as f:
            json.dump(config_out, f, indent=2)
        for name in os.listdir(tmp_dir):
            os.chmod(os.path.join(tmp_dir, name), 0o644)
        files = {n: os.path.getsize(os.path.join(tmp_dir, n)) for n in sorted(os.listdir(tmp_dir))}
        with open(os.path.join(tmp_dir, STAMP), "w") as f:
            json.dump(dict(want, files=files, params=sum(
                int(torch.tensor(s).prod()) if s else 1 for _, s in specs)), f, indent=2)
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.rename(tmp_dir, out_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    print(f"{out_dir}: {len(specs)} tensors, {total / 1e9:.2f} GB in {time.time() - start:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
