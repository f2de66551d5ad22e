#!/usr/bin/env python3
"""Tiny random Hugging Face checkpoints with reference outputs, for the C++ model tests.

Each variant is built with transformers' own model classes (LlamaForCausalLM, DeepseekV2ForCausalLM,
DeepseekV3ForCausalLM; pinned transformers 5.2.0), given fixed-seed random weights, written as an HF
checkpoint and then re-loaded from disk with `from_pretrained` to compute the reference, so the files on
disk are exactly what the reference saw.

Usage:
    python tools/make_test_checkpoints.py --out DIR [--only llama_gqa,deepseek_v3_noaux] [--force]
    (all eight variants: about 40 s on 2 idle cores, up to 2 min on a busy machine; a variant whose
    reference.json carries the current build_key is skipped, so a rerun takes about 3 s)

Output, one sub-directory per variant:
    DIR/<variant>/config.json                      HF config in the layout of the released checkpoints
                                                   (`rope_theta` + legacy `rope_scaling` with "type",
                                                   `torch_dtype`), not transformers 5's `rope_parameters`
    DIR/<variant>/model.safetensors                or model.safetensors.index.json + model-0000k-of-00002
    DIR/<variant>/reference.json
    DIR/<variant>/ref_logits_<i>.npy               float32 [len(prompts[i]), vocab_size]: logits of every
                                                   prompt position (one forward over the whole prompt)

reference.json:
    {
      "variant": "llama_gqa",
      "dtype": "float32",                # compute dtype of the reference (eager attention, fp32)
      "prompts": [[ids...], ...],        # lengths 1, 7, 40, 150 (one token, < 1 KV block of 16,
                                         #   > 2 blocks, > one 64-token prefill chunk)
      "greedy": [[32 ids], ...],         # greedy continuation of each prompt; EOS is NOT a stop token
                                         #   (always 32 tokens); computed by a full forward over
                                         #   prompt + generated-so-far at every step (no KV cache)
      "greedy_min_margin": [float, ...], # per prompt: smallest (top1 - top2) logit gap over the 32 steps;
                                         #   a gap below ~1e-4 means an argmax flip would be a tie, not a bug
      "transformers_version": "5.2.0", "torch_version": "...", "script_version": N,
      "build_key": "sha256..."          # hash of the variant definition and versions; written last
    }

Variants:
    llama_gqa                  Llama, 4 heads / 2 KV heads, sharded into 2 files (model.safetensors.index.json)
    llama_mha_tied             Llama MHA, tie_word_embeddings (no lm_head.weight in the file)
    llama_linear_rope          Llama, rope_scaling {"type": "linear", "factor": 4.0} (deepseek-coder style)
    llama_yarn                 Llama, rope_scaling yarn without mscale keys
    llama_llama3               Llama, llama3 rope scaling, config.json in transformers 5's spelling
                               (`rope_parameters` with rope_type and rope_theta inside)
    deepseek_v2_qlora_greedy   V2, q_lora_rank set, topk_method greedy, softmax, routed_scaling 1.5, no yarn
    deepseek_v2_noqlora_group  V2, q_lora_rank null, group_limited_greedy (4 groups, top-2 groups), yarn with
                               mscale 1.0 / mscale_all_dim 0 (see the V2 note below)
    deepseek_v3_noaux          V3, sigmoid + noaux_tc with a non-zero e_score_correction_bias, 4 groups top-2,
                               first_k_dense_replace 1, routed_scaling 2.5, norm_topk_prob, yarn with
                               mscale 1.0 / mscale_all_dim 0.8 (both factors are non-trivial)
    deepseek_v3_fp8            V3 as above, wider (hidden 160, so 128x128 blocks are partial and several per
                               matrix), DeepSeek-V3 release format: every attention/MLP/expert projection
                               weight is float8_e4m3fn with `<name>_scale_inv` float32
                               [ceil(rows/128), ceil(cols/128)], dequantised as w = fp8 * scale_inv per block;
                               the router gate, norms, embeddings and lm_head are bf16,
                               e_score_correction_bias is fp32; config.json carries the release's
                               quantization_config; sharded into 2 files with some `weight_scale_inv` in a
                               different shard from their weight. The reference uses the dequantised weights.

Notes for the C++ implementation (transformers 5.2.0 behaviour, checked in its source):
  * RoPE layout: DeepSeek V2/V3 rotate interleaved pairs (x[2i], x[2i+1]) of the rope part of q/k
    (V2: view_as_complex over pairs; V3: rope_interleave=True de-interleaves to [evens, odds] then rotate_half).
    Both give the same attention scores; the rope dims are the LAST qk_rope_head_dim of each q head and of
    kv_a_proj_with_mqa's output. Llama uses rotate_half over the halves (non-interleaved).
  * yarn: inv_freq per DeepSeek's yarn (truncated correction range, beta_fast 32 / beta_slow 1); cos/sin are
    multiplied by attention_factor = mscale(f, mscale) / mscale(f, mscale_all_dim) where both keys are set and
    non-zero, else mscale(f) = 0.1 * ln(f) + 1 (that is also what llama_yarn uses).
    V3 multiplies the softmax scale by mscale(f, mscale_all_dim)^2 (matches DeepSeek's code).
    V2 in transformers 5.2 does NOT (softmax scale is plain qk_head_dim^-0.5), unlike DeepSeek's own V2 code.
    deepseek_v2_noqlora_group therefore uses mscale 1.0 and mscale_all_dim 0, where both agree: no softmax
    factor, cos/sin factor 0.1 * ln(f) + 1. Implement DeepSeek's semantics (the V3 ones) for both.
  * V2 in transformers 5.2 ignores norm_topk_prob (never renormalises) and always multiplies the top-k weights
    by routed_scaling_factor; DeepSeek's V2 code does the same when norm_topk_prob is false, so the V2
    variants use norm_topk_prob false.
  * V3 gate: scores = sigmoid(logits in fp32); choice = scores + e_score_correction_bias; group score = sum of
    the top-2 choice scores in the group; non-selected groups are masked with 0.0 (DeepSeek's inference code
    uses -inf; the two agree while every choice score is positive, so the bias here is drawn from
    [0.02, 0.3]); top-k on the masked choice; weights = unbiased scores of the chosen experts,
    renormalised (norm_topk_prob), times routed_scaling_factor.
  * transformers 5.2.0's DeepseekV2Moe crashes on group_limited_greedy (reads an unset self.num_experts);
    this script sets the attribute (= n_routed_experts) before running; the routing code is otherwise
    DeepSeek's (group score = max softmax score in the group, masked with 0.0, top-k over the rest).
  * q_a_layernorm / kv_a_layernorm use eps 1e-6 regardless of rms_norm_eps. Norm weights are random here
    (1 + 0.1 * N(0, 1)) so a norm left at ones is caught.
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

SCRIPT_VERSION = 1
PROMPT_LENGTHS = (1, 7, 40, 150)
GREEDY_TOKENS = 32

_LLAMA_BASE = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 160,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-06,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "attention_bias": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float32",
}

_V2_BASE = {
    "architectures": ["DeepseekV2ForCausalLM"],
    "model_type": "deepseek_v2",
    "vocab_size": 320,
    "hidden_size": 64,
    "intermediate_size": 160,
    "moe_intermediate_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 48,
    "kv_lora_rank": 32,
    "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 8,
    "v_head_dim": 16,
    "n_routed_experts": 8,
    "n_shared_experts": 2,
    "num_experts_per_tok": 2,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "n_group": 1,
    "topk_group": 1,
    "topk_method": "greedy",
    "scoring_func": "softmax",
    "norm_topk_prob": False,
    "routed_scaling_factor": 1.5,
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "rms_norm_eps": 1e-06,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "attention_bias": False,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "torch_dtype": "float32",
}

_V3_BASE = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 160,
    "moe_intermediate_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 48,
    "kv_lora_rank": 32,
    "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 8,
    "v_head_dim": 16,
    "n_routed_experts": 8,
    "n_shared_experts": 1,
    "num_experts_per_tok": 3,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "n_group": 4,
    "topk_group": 2,
    "topk_method": "noaux_tc",
    "scoring_func": "sigmoid",
    "norm_topk_prob": True,
    "routed_scaling_factor": 2.5,
    "max_position_embeddings": 5120,
    "rope_theta": 10000.0,
    "rope_scaling": {
        "type": "yarn", "factor": 40.0, "original_max_position_embeddings": 128,
        "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 0.8,
    },
    "rms_norm_eps": 1e-06,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "attention_bias": False,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "torch_dtype": "float32",
}

_FP8_QUANT_CONFIG = {
    "activation_scheme": "dynamic",
    "fmt": "e4m3",
    "quant_method": "fp8",
    "weight_block_size": [128, 128],
}


def to_rope_parameters(cfg):
    """The same config as transformers 5 writes it: rope_theta and the scaling keys under rope_parameters."""
    out = json.loads(json.dumps(cfg))
    rp = dict(out.pop("rope_scaling", None) or {"rope_type": "default"})
    if "type" in rp:
        rp["rope_type"] = rp.pop("type")
    rp["rope_theta"] = out.pop("rope_theta", 10000.0)
    out["rope_parameters"] = rp
    return out


def _variant(base, seed, **overrides):
    cfg = json.loads(json.dumps(base))
    opts = {"seed": seed, "shards": 1, "fp8": False, "init_std": 0.08}
    for key, value in overrides.items():
        if key.startswith("_"):
            opts[key[1:]] = value
        else:
            cfg[key] = value
    return cfg, opts


VARIANTS = {
    "llama_gqa": _variant(_LLAMA_BASE, 101, num_key_value_heads=2, _shards=2),
    "llama_mha_tied": _variant(_LLAMA_BASE, 102, tie_word_embeddings=True, vocab_size=384),
    "llama_linear_rope": _variant(_LLAMA_BASE, 103, rope_theta=100000.0,
                                  rope_scaling={"type": "linear", "factor": 4.0}),
    "llama_yarn": _variant(_LLAMA_BASE, 104, num_key_value_heads=2, max_position_embeddings=512,
                           rope_scaling={"type": "yarn", "factor": 4.0,
                                         "original_max_position_embeddings": 128}),
    "llama_llama3": _variant(_LLAMA_BASE, 105, max_position_embeddings=1024, _rope_parameters=True,
                             rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                           "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    "deepseek_v2_qlora_greedy": _variant(_V2_BASE, 201),
    "deepseek_v2_noqlora_group": _variant(
        _V2_BASE, 202, q_lora_rank=None, topk_method="group_limited_greedy", n_group=4, topk_group=2,
        num_experts_per_tok=3, n_shared_experts=1, routed_scaling_factor=1.0, vocab_size=512,
        max_position_embeddings=5120,
        rope_scaling={"type": "yarn", "factor": 40.0, "original_max_position_embeddings": 128,
                      "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 0.0}),
    "deepseek_v3_noaux": _variant(_V3_BASE, 301),
    "deepseek_v3_fp8": _variant(
        _V3_BASE, 302, hidden_size=160, q_lora_rank=96, kv_lora_rank=64, qk_nope_head_dim=32,
        qk_rope_head_dim=16, v_head_dim=32, intermediate_size=320, moe_intermediate_size=48,
        torch_dtype="bfloat16", quantization_config=_FP8_QUANT_CONFIG, _fp8=True, _shards=2),
}

# Projection weights stored as fp8 in DeepSeek-V3's release (router gate, norms, embeddings and lm_head are not).
_FP8_SUFFIXES = (
    "self_attn.q_proj.weight", "self_attn.q_a_proj.weight", "self_attn.q_b_proj.weight",
    "self_attn.kv_a_proj_with_mqa.weight", "self_attn.kv_b_proj.weight", "self_attn.o_proj.weight",
    "gate_proj.weight", "up_proj.weight", "down_proj.weight",
)
FP8_BLOCK = 128
FP8_MAX = 448.0


def fp8_quantize(weight):
    """Blockwise e4m3 quantisation. Returns (fp8 [r, c], scale_inv fp32 [ceil(r/128), ceil(c/128)],
    dequantised fp32 [r, c]) with dequantised = fp8.float() * scale_inv expanded per block."""
    rows, cols = weight.shape
    br, bc = math.ceil(rows / FP8_BLOCK), math.ceil(cols / FP8_BLOCK)
    padded = torch.zeros(br * FP8_BLOCK, bc * FP8_BLOCK, dtype=torch.float32)
    padded[:rows, :cols] = weight.float()
    blocks = padded.view(br, FP8_BLOCK, bc, FP8_BLOCK)
    amax = blocks.abs().amax(dim=(1, 3)).clamp(min=1e-12)
    scale_inv = (amax / FP8_MAX).float()
    quant = (blocks / scale_inv[:, None, :, None]).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    dequant = quant.float() * scale_inv[:, None, :, None]
    quant = quant.view(br * FP8_BLOCK, bc * FP8_BLOCK)[:rows, :cols].contiguous()
    dequant = dequant.view(br * FP8_BLOCK, bc * FP8_BLOCK)[:rows, :cols].contiguous()
    return quant, scale_inv.contiguous(), dequant


def randomize_(model, opts):
    gen = torch.Generator().manual_seed(opts["seed"])
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
                param.copy_(1.0 + 0.1 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(opts["init_std"] * torch.randn(param.shape, generator=gen))
        for name, buf in sorted(model.named_buffers()):
            if name.endswith("e_score_correction_bias"):
                buf.copy_(0.02 + 0.28 * torch.rand(buf.shape, generator=gen))


def write_checkpoint(out_dir, tensors, shards):
    """Writes `tensors` (name -> tensor) as one file or `shards` files plus model.safetensors.index.json.
    Tensors are assigned round-robin in sorted-name order so that siblings (weight / weight_scale_inv)
    land in different shards."""
    names = sorted(tensors)
    if shards == 1:
        save_file({n: tensors[n].contiguous() for n in names}, os.path.join(out_dir, "model.safetensors"),
                  metadata={"format": "pt"})
        return
    weight_map, total = {}, 0
    for k in range(shards):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n].contiguous() for i, n in enumerate(names) if i % shards == k}
        save_file(part, os.path.join(out_dir, fname), metadata={"format": "pt"})
        for n, t in part.items():
            weight_map[n] = fname
            total += t.numel() * t.element_size()
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)


def disk_state_dict(model, scratch):
    """The model's tensors under the names of released checkpoints (per-expert gate/up/down), via
    save_pretrained, which undoes transformers 5's fused expert layout."""
    model.save_pretrained(scratch)
    out = {}
    with safe_open(os.path.join(scratch, "model.safetensors"), "pt") as f:
        for name in f.keys():
            out[name] = f.get_tensor(name).clone()
    return out


def patch_transformers_bugs_(model):
    """transformers 5.2.0 DeepseekV2Moe's group_limited_greedy reads self.num_experts, which it never sets."""
    for module in model.modules():
        if type(module).__name__ == "DeepseekV2Moe" and not hasattr(module, "num_experts"):
            module.num_experts = module.config.n_routed_experts
    return model


def load_reference_model(path):
    from transformers import AutoModelForCausalLM
    model, info = AutoModelForCausalLM.from_pretrained(
        path, attn_implementation="eager", dtype=torch.float32, output_loading_info=True)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise RuntimeError(f"{path}: checkpoint did not round-trip through from_pretrained: {bad}")
    return patch_transformers_bugs_(model).eval()


def make_prompts(vocab_size, seed):
    gen = torch.Generator().manual_seed(seed + 7)
    return [torch.randint(3, vocab_size, (n,), generator=gen).tolist() for n in PROMPT_LENGTHS]


@torch.no_grad()
def greedy(model, prompt):
    ids = list(prompt)
    out, min_margin = [], float("inf")
    for _ in range(GREEDY_TOKENS):
        logits = model(torch.tensor([ids]), use_cache=False).logits[0, -1]
        top2 = torch.topk(logits, 2)
        min_margin = min(min_margin, float(top2.values[0] - top2.values[1]))
        nxt = int(top2.indices[0])
        out.append(nxt)
        ids.append(nxt)
    return out, min_margin


def build_key(name):
    import transformers
    cfg_dict, opts = VARIANTS[name]
    blob = json.dumps([name, cfg_dict, opts, SCRIPT_VERSION, PROMPT_LENGTHS, GREEDY_TOKENS,
                       transformers.__version__, torch.__version__], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def is_complete(name, out_root):
    """True when out_root/name was written by this script with the same variant definition."""
    out_dir = os.path.join(out_root, name)
    try:
        with open(os.path.join(out_dir, "reference.json")) as f:
            ref = json.load(f)
    except (OSError, ValueError):
        return False
    return ref.get("build_key") == build_key(name) and all(
        os.path.isfile(os.path.join(out_dir, f"ref_logits_{i}.npy")) for i in range(len(PROMPT_LENGTHS)))


def build_variant(name, out_root):
    from transformers import AutoConfig, AutoModelForCausalLM
    import transformers

    cfg_dict, opts = VARIANTS[name]
    out_dir = os.path.join(out_root, name)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    with tempfile.TemporaryDirectory() as scratch:
        # The model is built from the config file as transformers reads it back, not from the dict.
        build_cfg = {k: v for k, v in cfg_dict.items() if k != "quantization_config"}
        build_cfg["torch_dtype"] = "float32"
        with open(os.path.join(scratch, "config.json"), "w") as f:
            json.dump(build_cfg, f, indent=2)
        config = AutoConfig.from_pretrained(scratch)
        torch.manual_seed(opts["seed"])
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
        randomize_(model, opts)
        patch_transformers_bugs_(model)
        tensors = disk_state_dict(model, os.path.join(scratch, "saved"))
        if cfg_dict.get("tie_word_embeddings"):
            tensors.pop("lm_head.weight", None)

        ref_dir = out_dir
        if opts["fp8"]:
            dequantised = {}
            stored = {}
            for tname, t in tensors.items():
                if t.dim() == 2 and tname.endswith(_FP8_SUFFIXES) and ".mlp.gate." not in tname:
                    q, s, dq = fp8_quantize(t)
                    stored[tname] = q
                    stored[tname + "_scale_inv"] = s
                    dequantised[tname] = dq
                elif tname.endswith("e_score_correction_bias"):
                    stored[tname] = t.float()
                    dequantised[tname] = t.float()
                else:
                    stored[tname] = t.to(torch.bfloat16)
                    dequantised[tname] = stored[tname].float()
            ref_dir = os.path.join(scratch, "dequantised")
            os.makedirs(ref_dir)
            with open(os.path.join(ref_dir, "config.json"), "w") as f:
                json.dump(build_cfg, f, indent=2)
            write_checkpoint(ref_dir, dequantised, 1)
            tensors = stored

        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(to_rope_parameters(cfg_dict) if opts.get("rope_parameters") else cfg_dict, f, indent=2)
        write_checkpoint(out_dir, tensors, opts["shards"])

        ref = load_reference_model(ref_dir)
        prompts = make_prompts(cfg_dict["vocab_size"], opts["seed"])
        if not opts["fp8"]:
            # The on-disk checkpoint must reproduce the in-memory model exactly.
            probe = torch.tensor([prompts[2]])
            with torch.no_grad():
                a = model.eval()(probe, use_cache=False).logits
                b = ref(probe, use_cache=False).logits
            if not torch.equal(a, b):
                raise RuntimeError(f"{name}: reloaded checkpoint differs from the built model "
                                   f"(max abs diff {float((a - b).abs().max())})")

    greedy_ids, margins = [], []
    with torch.no_grad():
        for i, prompt in enumerate(prompts):
            logits = ref(torch.tensor([prompt]), use_cache=False).logits[0].float().numpy()
            np.save(os.path.join(out_dir, f"ref_logits_{i}.npy"), logits.astype(np.float32))
            cont, margin = greedy(ref, prompt)
            greedy_ids.append(cont)
            margins.append(margin)
    reference = {
        "variant": name,
        "dtype": "float32",
        "prompts": prompts,
        "greedy": greedy_ids,
        "greedy_min_margin": margins,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "script_version": SCRIPT_VERSION,
        "build_key": build_key(name),
    }
    # reference.json is written last: its build_key marks the variant complete.
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(reference, f)
    return margins


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory (one sub-directory per variant)")
    parser.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    parser.add_argument("--force", action="store_true", help="rebuild variants that are already complete")
    args = parser.parse_args()

    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    import transformers
    transformers.logging.set_verbosity_error()
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    for name in names:
        if not args.force and is_complete(name, args.out):
            print(f"{name}: up to date", file=sys.stderr)
            continue
        start = time.time()
        margins = build_variant(name, args.out)
        print(f"{name}: {time.time() - start:.1f}s, min greedy margin {min(margins):.3g}", file=sys.stderr)


if __name__ == "__main__":
    main()
