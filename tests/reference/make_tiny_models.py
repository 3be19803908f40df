#!/usr/bin/env python3
"""Tiny random Llama / Mistral / Qwen2 checkpoints and their Hugging Face reference outputs.

Runs on the GPU machine (python3 there has torch and transformers 5.x); computes on the CPU in
float32 with eager attention, so the reference is exact f32 math. For each model it writes, under
OUT_DIR/<name>/:
  config.json, model.safetensors   the checkpoint, weights stored in the named dtype
  reference.json                   {"name", "architecture", "weights_dtype", "transformers",
                                    "prompt_ids": [64], "logits": [[vocab] x 64],
                                    "greedy_ids": [16], "greedy_min_margin"}
The logits are those of the model whose weights were rounded to the stored dtype and upcast to
f32, i.e. exactly what an engine loading the file computes with f32 arithmetic.

One checkpoint's config.json is rewritten in the transformers 4.x dialect (top-level rope_theta
and rope_scaling instead of rope_parameters) and reloaded to prove HF reads it the same way.

Usage: python3 tests/reference/make_tiny_models.py [OUT_DIR=tests/fixtures/tiny]
"""
import copy
import json
import math
import os
import shutil
import sys

import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

PROMPT_LEN = 64
GREEDY_STEPS = 16
VOCAB = 256

COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
              max_position_embeddings=512, bos_token_id=1, eos_token_id=2)

SPECS = [
    dict(name="llama_gqa_bf16", cls=LlamaForCausalLM, config_cls=LlamaConfig, dtype=torch.bfloat16,
         config=dict(COMMON, tie_word_embeddings=False,
                     rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    dict(name="llama3_rope_tied_f16", cls=LlamaForCausalLM, config_cls=LlamaConfig,
         dtype=torch.float16, dialect4=True,
         config=dict(COMMON, tie_word_embeddings=True, eos_token_id=[2, 3],
                     num_key_value_heads=1,
                     rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0,
                                      "factor": 8.0, "low_freq_factor": 1.0,
                                      "high_freq_factor": 4.0,
                                      "original_max_position_embeddings": 32})),
    dict(name="llama_linear_rope_f32", cls=LlamaForCausalLM, config_cls=LlamaConfig,
         dtype=torch.float32,
         config=dict(COMMON, tie_word_embeddings=False, num_key_value_heads=4,
                     rope_parameters={"rope_type": "linear", "rope_theta": 10000.0,
                                      "factor": 4.0})),
    dict(name="mistral_head_dim_f16", cls=MistralForCausalLM, config_cls=MistralConfig,
         dtype=torch.float16,
         config=dict(COMMON, tie_word_embeddings=False, head_dim=32, num_key_value_heads=1,
                     sliding_window=None,
                     rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    dict(name="qwen2_bias_tied_bf16", cls=Qwen2ForCausalLM, config_cls=Qwen2Config,
         dtype=torch.bfloat16,
         config=dict(COMMON, tie_word_embeddings=True, num_hidden_layers=3,
                     rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
]


def init_weights(model, generator):
    """O(1) activations and logits: HF's default std 0.02 makes near-uniform logits whose greedy
    argmax flips on rounding noise, which would make the greedy check meaningless."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=generator))
            elif p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(p.shape[1]))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=generator))
            else:  # RMSNorm weights
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=generator))


def build_config(spec):
    """transformers 5.x takes rope_parameters; fall back to the 4.x keywords if it does not."""
    kwargs = dict(spec["config"])
    try:
        return spec["config_cls"](**kwargs)
    except TypeError:
        rope = dict(kwargs.pop("rope_parameters"))
        kwargs["rope_theta"] = rope.pop("rope_theta")
        if rope.get("rope_type") != "default":
            kwargs["rope_scaling"] = rope
        return spec["config_cls"](**kwargs)


def to_dialect4(config_path):
    """Rewrites a transformers 5.x config.json (rope_parameters) in the 4.x dialect."""
    with open(config_path) as f:
        cfg = json.load(f)
    rope = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rope.pop("rope_theta")
    if rope.get("rope_type", "default") != "default":
        cfg["rope_scaling"] = rope
    with open(config_path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


def greedy(model, ids, steps):
    ids = list(ids)
    out, margin = [], float("inf")
    for _ in range(steps):
        last = logits_of(model, ids)[-1]
        top2 = torch.topk(last, 2).values
        margin = min(margin, float(top2[0] - top2[1]))
        nxt = int(torch.argmax(last))
        out.append(nxt)
        ids.append(nxt)
    return out, margin


def make(spec, out_root, seed):
    name = spec["name"]
    config = build_config(spec)
    config._attn_implementation = "eager"
    generator = torch.Generator().manual_seed(seed)
    model = spec["cls"](config).eval()
    want = spec["config"]["rope_parameters"]["rope_type"]
    got = getattr(model.model.rotary_emb, "rope_type", None)
    assert got == want, f"{name}: HF built rope_type {got!r}, wanted {want!r}"
    init_weights(model, generator)
    # Round the parameters (not the rotary inv_freq buffer, which must stay f32) to the stored
    # dtype; the reference computes with those values in f32.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(spec["dtype"]).to(torch.float32))

    out_dir = os.path.join(out_root, name)
    shutil.rmtree(out_dir, ignore_errors=True)
    copy.deepcopy(model).to(spec["dtype"]).save_pretrained(out_dir, safe_serialization=True)
    gen_cfg = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)
    if spec.get("dialect4"):
        to_dialect4(os.path.join(out_dir, "config.json"))

    prompt = torch.randint(0, VOCAB, (PROMPT_LEN,), generator=generator).tolist()
    logits = logits_of(model, prompt)

    # The files on disk must mean the same model to HF itself (catches dialect and dtype slips).
    reloaded = spec["cls"].from_pretrained(out_dir, dtype=torch.float32,
                                           attn_implementation="eager").eval()
    diff = float((logits_of(reloaded, prompt) - logits).abs().max())
    assert diff == 0.0, f"{name}: reloaded checkpoint differs from the in-memory model by {diff}"

    greedy_ids, margin = greedy(model, prompt, GREEDY_STEPS)
    reference = {
        "name": name,
        "architecture": type(model).__name__,
        "weights_dtype": str(spec["dtype"]).replace("torch.", ""),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "prompt_ids": prompt,
        "logits": [[float(x) for x in row] for row in logits],
        "greedy_ids": greedy_ids,
        "greedy_min_margin": margin,
    }
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(reference, f)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params, "
          f"max|logit| {float(logits.abs().max()):.3f}, greedy margin {margin:.4f}, "
          f"files {sorted(os.listdir(out_dir))}")


def main():
    out_root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/tiny"
    os.makedirs(out_root, exist_ok=True)
    torch.set_num_threads(4)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    for i, spec in enumerate(SPECS):
        make(spec, out_root, seed=1234 + i)


if __name__ == "__main__":
    main()
