#!/usr/bin/env python3
"""PyTorch SDPA full attention at a Llama config's shape: the baseline `ltri bench` is measured
against on the same GPU (issue 5: full attention prefill within 1.5x of PyTorch SDPA).

A plain-torch Llama (embedding, RMSNorm, RoPE with the config's llama3 scaling, GQA, SwiGLU)
with seeded random bf16 weights, batch 1. For each prompt length: one prefill of random token
ids, the first token sampled (time to first token), then -n decode steps with a KV cache at
that context. Writes JSON with the field names of `ltri bench -o json`, so bench/compare_sdpa.py
can join the two.

Prefill is layer by layer over the whole prompt, so each layer's attention is one causal
F.scaled_dot_product_attention call over all n tokens (the flash kernel, never an n x n
matrix); the token-wise parts (projections, MLP) run in chunks of --chunk tokens so their
temporaries stay small. Decode is eager PyTorch, one token per step, argmax kept on the GPU.

  python3 bench/sdpa_reference.py -p 32k,128k -n 128 -o sdpa.json
  python3 bench/sdpa_reference.py --tiny   # checks the model against HF logits and naive attention
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "bench", "configs", "llama-3-8b.json")
LONG_PROMPT_TOKENS = 32768  # as ltri bench: from here on one run unless -r is given


# ---- config -------------------------------------------------------------------------------

class Config:
    """The fields of a Hugging Face Llama config.json this model needs (both the 4.x dialect,
    rope_theta + rope_scaling, and the 5.x one, rope_parameters)."""

    def __init__(self, d):
        self.vocab_size = d["vocab_size"]
        self.hidden_size = d["hidden_size"]
        self.intermediate_size = d["intermediate_size"]
        self.n_layers = d["num_hidden_layers"]
        self.n_heads = d["num_attention_heads"]
        self.n_kv_heads = d.get("num_key_value_heads") or self.n_heads
        self.head_dim = d.get("head_dim") or self.hidden_size // self.n_heads
        self.rms_norm_eps = d.get("rms_norm_eps", 1e-6)
        self.tie_word_embeddings = bool(d.get("tie_word_embeddings", False))
        self.attention_bias = bool(d.get("attention_bias", False))
        self.mlp_bias = bool(d.get("mlp_bias", False))
        rope = dict(d.get("rope_parameters") or d.get("rope_scaling") or {})
        self.rope_theta = float(d.get("rope_theta", rope.get("rope_theta", 10000.0)))
        self.rope_type = rope.get("rope_type", rope.get("type", "default"))
        self.rope = rope
        if self.rope_type not in ("default", "llama3", "linear"):
            sys.exit(f"error: rope type {self.rope_type!r} is not supported (default, linear, llama3)")
        if d.get("hidden_act", "silu") != "silu":
            sys.exit(f"error: hidden_act {d.get('hidden_act')!r}: only silu (SwiGLU) is supported")
        if self.n_heads % self.n_kv_heads:
            sys.exit(f"error: num_attention_heads {self.n_heads} is not a multiple of num_key_value_heads {self.n_kv_heads}")

    def count_parameters(self):
        h, q, kv, i = self.hidden_size, self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim, self.intermediate_size
        per_layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h
        if self.attention_bias:
            per_layer += q + 2 * kv
        if self.mlp_bias:
            per_layer += 2 * i + h
        lm_head = 0 if self.tie_word_embeddings else self.vocab_size * h
        return self.vocab_size * h + self.n_layers * per_layer + h + lm_head

    def kv_bytes(self, tokens, element_bytes):
        return tokens * 2 * self.n_layers * self.n_kv_heads * self.head_dim * element_bytes


def load_config(path):
    with open(path) as f:
        return Config(json.load(f))


# ---- RoPE ---------------------------------------------------------------------------------

def rope_inv_freq(cfg):
    """(head_dim / 2) rotation frequencies, f32, with the config's scaling applied."""
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    if cfg.rope_type == "linear":
        inv_freq = inv_freq / cfg.rope["factor"]
    elif cfg.rope_type == "llama3":
        # Llama 3.1: long wavelengths (beyond the original context / low_freq_factor) are slowed
        # by `factor`, short ones (below original / high_freq_factor) kept, and the band between
        # blended linearly in original_context / wavelength.
        factor = cfg.rope["factor"]
        low, high = cfg.rope["low_freq_factor"], cfg.rope["high_freq_factor"]
        original = cfg.rope["original_max_position_embeddings"]
        wavelength = 2 * math.pi / inv_freq
        blend = ((original / wavelength - low) / (high - low)).clamp(0.0, 1.0)
        blended = (1 - blend) * inv_freq / factor + blend * inv_freq
        inv_freq = torch.where(wavelength > original / low, inv_freq / factor,
                               torch.where(wavelength < original / high, inv_freq, blended))
    return inv_freq.float()


def rope_cos_sin(inv_freq, first, n, dtype):
    """cos, sin (n, head_dim) for positions first .. first+n-1, the half-split layout of HF
    checkpoints (dimension i pairs with i + head_dim/2)."""
    positions = torch.arange(first, first + n, device=inv_freq.device, dtype=torch.float32)
    angles = torch.outer(positions, inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x (1, heads, n, head_dim) rotated by cos, sin (n, head_dim)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


# ---- attention ----------------------------------------------------------------------------

def sdpa_attention(q, k, v, causal):
    """q (1, n_heads, n, d), k/v (1, n_kv_heads, L, d) -> (1, n_heads, n, d). causal is only
    asked for when n == L (a whole prompt), where SDPA's causal mask is the right one."""
    if q.shape[1] == k.shape[1]:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    try:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    except TypeError:  # torch < 2.5: no enable_gqa; repeat the KV heads instead
        group = q.shape[1] // k.shape[1]
        return F.scaled_dot_product_attention(q, k.repeat_interleave(group, dim=1),
                                              v.repeat_interleave(group, dim=1), is_causal=causal)


def naive_attention(q, k, v, causal):
    """The same, written out: repeated KV heads, an explicit (n, L) score matrix in f32, the
    causal mask aligned to the end (query i sits at position L - n + i)."""
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal:
        n, length = q.shape[2], k.shape[2]
        query_pos = torch.arange(length - n, length, device=q.device)[:, None]
        key_pos = torch.arange(length, device=q.device)[None, :]
        scores = scores.masked_fill(key_pos > query_pos, float("-inf"))
    return (scores.softmax(dim=-1) @ v.float()).to(q.dtype)


# ---- model --------------------------------------------------------------------------------

def layer_names(i):
    p = f"model.layers.{i}."
    return {"attn_norm": p + "input_layernorm.weight", "mlp_norm": p + "post_attention_layernorm.weight",
            "q": p + "self_attn.q_proj", "k": p + "self_attn.k_proj", "v": p + "self_attn.v_proj",
            "o": p + "self_attn.o_proj", "gate": p + "mlp.gate_proj", "up": p + "mlp.up_proj",
            "down": p + "mlp.down_proj"}


def random_weights(cfg, device, dtype, seed):
    """Seeded random weights under Hugging Face's tensor names. Linear weights ~ N(0, 1/in) and
    embeddings ~ N(0, 1) keep activations O(1) through every layer; norms are 1."""
    g = torch.Generator(device=device).manual_seed(seed)
    h, q, kv, inter = cfg.hidden_size, cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.intermediate_size

    def normal(shape, std):
        return torch.empty(shape, device=device, dtype=dtype).normal_(0.0, std, generator=g)

    w = {"model.embed_tokens.weight": normal((cfg.vocab_size, h), 1.0),
         "model.norm.weight": torch.ones(h, device=device, dtype=dtype)}
    if not cfg.tie_word_embeddings:
        w["lm_head.weight"] = normal((cfg.vocab_size, h), 1.0 / math.sqrt(h))
    for i in range(cfg.n_layers):
        n = layer_names(i)
        w[n["attn_norm"]] = torch.ones(h, device=device, dtype=dtype)
        w[n["mlp_norm"]] = torch.ones(h, device=device, dtype=dtype)
        for key, out_f, in_f in (("q", q, h), ("k", kv, h), ("v", kv, h), ("o", h, q),
                                 ("gate", inter, h), ("up", inter, h), ("down", h, inter)):
            w[n[key] + ".weight"] = normal((out_f, in_f), 1.0 / math.sqrt(in_f))
        if cfg.attention_bias:
            for key, out_f in (("q", q), ("k", kv), ("v", kv)):
                w[n[key] + ".bias"] = torch.zeros(out_f, device=device, dtype=dtype)
        if cfg.mlp_bias:
            for key, out_f in (("gate", inter), ("up", inter), ("down", h)):
                w[n[key] + ".bias"] = torch.zeros(out_f, device=device, dtype=dtype)
    return w


class KVCache:
    """Per layer K and V (1, n_kv_heads, capacity, head_dim), post-RoPE keys; `length` tokens held."""

    def __init__(self, cfg, capacity, device, dtype):
        shape = (1, cfg.n_kv_heads, capacity, cfg.head_dim)
        self.k = [torch.empty(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.v = [torch.empty(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.capacity = capacity
        self.length = 0

    def bytes(self):
        return sum(t.numel() * t.element_size() for t in self.k + self.v)


class Llama:
    def __init__(self, cfg, weights, attention=sdpa_attention):
        self.cfg = cfg
        self.w = weights
        self.attention = attention
        self.embed = weights["model.embed_tokens.weight"]
        self.lm_head = weights["model.embed_tokens.weight" if cfg.tie_word_embeddings else "lm_head.weight"]
        self.inv_freq = rope_inv_freq(cfg).to(self.embed.device)
        self.layers = [layer_names(i) for i in range(cfg.n_layers)]

    def linear(self, x, name):
        return F.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias"))

    def rmsnorm(self, x, name):
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.cfg.rms_norm_eps)
        return x32.to(x.dtype) * self.w[name]

    def heads(self, x, n_heads):
        """(n, n_heads * head_dim) -> (1, n_heads, n, head_dim)"""
        return x.view(x.shape[0], n_heads, self.cfg.head_dim).transpose(0, 1).unsqueeze(0)

    def mlp(self, x, names):
        h = self.rmsnorm(x, names["mlp_norm"])
        return self.linear(F.silu(self.linear(h, names["gate"])) * self.linear(h, names["up"]), names["down"])

    def logits(self, x):
        return F.linear(self.rmsnorm(x, "model.norm.weight"), self.lm_head).float()

    @torch.no_grad()
    def prefill(self, ids, cache, chunk=16384, all_logits=False):
        """Runs ids (n,) from an empty cache; returns the last token's logits (vocab,) f32, or
        every token's (n, vocab) with all_logits."""
        assert cache.length == 0, "prefill starts from an empty cache"
        cfg, n = self.cfg, ids.shape[0]
        chunk = chunk if chunk > 0 else n
        spans = [(a, min(a + chunk, n)) for a in range(0, n, chunk)]
        x = F.embedding(ids, self.embed)  # (n, hidden)
        for layer, names in enumerate(self.layers):
            q_all = torch.empty((1, cfg.n_heads, n, cfg.head_dim), device=x.device, dtype=x.dtype)
            for a, b in spans:
                h = self.rmsnorm(x[a:b], names["attn_norm"])
                cos, sin = rope_cos_sin(self.inv_freq, a, b - a, x.dtype)
                q_all[:, :, a:b] = apply_rope(self.heads(self.linear(h, names["q"]), cfg.n_heads), cos, sin)
                cache.k[layer][:, :, a:b] = apply_rope(self.heads(self.linear(h, names["k"]), cfg.n_kv_heads), cos, sin)
                cache.v[layer][:, :, a:b] = self.heads(self.linear(h, names["v"]), cfg.n_kv_heads)
            attn = self.attention(q_all, cache.k[layer][:, :, :n], cache.v[layer][:, :, :n], True)
            del q_all
            attn = attn[0].transpose(0, 1).reshape(n, cfg.n_heads * cfg.head_dim)  # (n, n_heads * head_dim)
            for a, b in spans:
                x[a:b] += self.linear(attn[a:b], names["o"])
                x[a:b] += self.mlp(x[a:b], names)
            del attn
        cache.length = n
        return self.logits(x) if all_logits else self.logits(x[-1:])[0]

    @torch.no_grad()
    def decode(self, token, cache):
        """One token (1,) at position cache.length; returns its logits (vocab,) f32."""
        cfg, pos = self.cfg, cache.length
        assert pos < cache.capacity, "KV cache full"
        x = F.embedding(token, self.embed)  # (1, hidden)
        cos, sin = rope_cos_sin(self.inv_freq, pos, 1, x.dtype)
        for layer, names in enumerate(self.layers):
            h = self.rmsnorm(x, names["attn_norm"])
            q = apply_rope(self.heads(self.linear(h, names["q"]), cfg.n_heads), cos, sin)
            cache.k[layer][:, :, pos:pos + 1] = apply_rope(self.heads(self.linear(h, names["k"]), cfg.n_kv_heads), cos, sin)
            cache.v[layer][:, :, pos:pos + 1] = self.heads(self.linear(h, names["v"]), cfg.n_kv_heads)
            # One query over every cached token: no mask needed.
            attn = self.attention(q, cache.k[layer][:, :, :pos + 1], cache.v[layer][:, :, :pos + 1], False)
            x = x + self.linear(attn[0].transpose(0, 1).reshape(1, -1), names["o"])
            x = x + self.mlp(x, names)
        cache.length = pos + 1
        return self.logits(x)[0]


# ---- safetensors (the --tiny fixtures) -----------------------------------------------------

def read_safetensors(path):
    """name -> tensor (f32) of a .safetensors file: an 8-byte header length, a JSON header of
    dtype/shape/offsets, then the raw little-endian data."""
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = bytearray(data[begin:end])
        t = torch.frombuffer(raw, dtype=dtypes[info["dtype"]]) if raw else torch.empty(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"]).float()
    return out


# ---- measuring ----------------------------------------------------------------------------

def parse_token_count(text):
    """'4096', '32k', '1m' -> tokens (k = 1024, m = 1048576), as ltri bench -p."""
    t = text.strip()
    scale = {"k": 1 << 10, "m": 1 << 20}.get(t[-1:].lower(), 1)
    digits = t[:-1] if scale > 1 else t
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a token count (an integer, or with k/m: 32k = 32768)")
    return int(digits) * scale


def token_list(text):
    return [parse_token_count(x) for x in text.split(",")]


def reset_host_peak():
    """Restarts the kernel's peak-RSS counter (Linux: '5' to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def host_peak_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def on_gpu(device):
    return device.type == "cuda"


class Phase:
    """Time and memory of one phase (a prefill or a decode run), synchronised with the GPU.
    (--device cpu, for checking the script without a GPU, reports no device memory.)"""

    def __init__(self, device):
        self.gpu = on_gpu(device)
        if self.gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.host_reset = reset_host_peak()
        self.start = time.perf_counter()

    def elapsed_ms(self):
        if self.gpu:
            torch.cuda.synchronize()
        return (time.perf_counter() - self.start) * 1000.0

    def memory(self):
        return {"peak_device_bytes": torch.cuda.max_memory_allocated() if self.gpu else 0,
                "peak_host_bytes": host_peak_bytes(), "peak_host_scope": "test" if self.host_reset else "process"}


def summary(samples_ms, tokens):
    ts = [1000.0 * tokens / ms for ms in samples_ms]
    mean = sum(ts) / len(ts)
    std = math.sqrt(sum((v - mean) ** 2 for v in ts) / (len(ts) - 1)) if len(ts) > 1 else 0.0
    return {"samples_ms": samples_ms, "samples_ts": ts, "avg_ts": mean, "stddev_ts": std}


def activation_bytes(cfg, n, chunk, element_bytes):
    """Prefill temporaries at n tokens: the residual stream, all queries, the attention output
    and its transposed copy, plus one chunk's MLP and projections."""
    q = cfg.n_heads * cfg.head_dim
    whole = n * (cfg.hidden_size + 3 * q)
    per_chunk = min(chunk or n, n) * (3 * cfg.intermediate_size + 4 * cfg.hidden_size + q)
    return (whole + per_chunk) * element_bytes + 4 * cfg.vocab_size


def run_length(model, cfg, n_prompt, args, ids_host, rows, skipped):
    device, dtype = model.embed.device, model.embed.dtype
    element = torch.finfo(dtype).bits // 8
    capacity = max(n_prompt + args.n_gen, 1)
    need = cfg.kv_bytes(capacity, element) + activation_bytes(cfg, n_prompt, args.chunk, element)
    if on_gpu(device):
        torch.cuda.empty_cache()
        free = torch.cuda.mem_get_info()[0]
    else:
        free = float("inf")
    if need > 0.95 * free:
        reason = f"needs ~{need / 2**30:.1f} GiB (KV cache + prefill temporaries), {free / 2**30:.1f} GiB free"
        print(f"sdpa: skipping -p {n_prompt}: {reason}", file=sys.stderr)
        skipped.append({"policy": "sdpa", "n_prompt": n_prompt, "reason": reason})
        return
    cache = KVCache(cfg, capacity, device, dtype)
    try:
        # Warm-up: kernels chosen and loaded, allocator primed (one chunk, two decode steps).
        warm = min(n_prompt, args.chunk or n_prompt)
        token = ids_host[:1].to(device)
        if warm > 0:
            model.prefill(ids_host[:warm].to(device), cache, args.chunk)
        for _ in range(min(args.n_gen, 2)):
            token = model.decode(token, cache).argmax().view(1)
        cache.length = 0
        runs = args.repetitions or (1 if n_prompt >= LONG_PROMPT_TOKENS else 3)
        pp = {"prefill": [], "ttft": [], "memory": None}
        tg = {"decode": [], "memory": None}
        for run in range(runs):
            cache.length = 0
            token = ids_host[:1].to(device)
            if n_prompt > 0:
                phase = Phase(device)
                ids = ids_host[:n_prompt].to(device)  # the prompt crosses the bus, as in ltri
                logits = model.prefill(ids, cache, args.chunk)
                prefill_ms = phase.elapsed_ms()
                token = torch.tensor([int(logits.argmax())], device=device)
                ttft_ms = phase.elapsed_ms()
                pp["prefill"].append(prefill_ms)
                pp["ttft"].append(ttft_ms)
                pp["memory"] = phase.memory()
                del logits, ids
            line = f"sdpa: run {run + 1}/{runs}:"
            if n_prompt > 0:
                line += f" pp{n_prompt} {pp['prefill'][-1]:.1f} ms (ttft {pp['ttft'][-1]:.1f} ms)"
            if args.n_gen > 0:
                phase = Phase(device)
                for _ in range(args.n_gen):
                    token = model.decode(token, cache).argmax().view(1)
                decode_ms = phase.elapsed_ms()
                tg["decode"].append(decode_ms)
                tg["memory"] = phase.memory()
                line += f" tg{args.n_gen} {decode_ms:.1f} ms"
            print(line, file=sys.stderr)
    except torch.cuda.OutOfMemoryError as e:  # the estimate above was short: record, go on
        reason = "CUDA out of memory: " + str(e).split("\n")[0][:200]
        print(f"sdpa: -p {n_prompt}: {reason}", file=sys.stderr)
        skipped.append({"policy": "sdpa", "n_prompt": n_prompt, "reason": reason})
        return
    finally:
        kv_bytes = cache.bytes()
        del cache
        if on_gpu(device):
            torch.cuda.empty_cache()

    common = {"policy": "sdpa", "d2h_bytes": 0, "kv_bytes": kv_bytes, "kv_host_bytes": 0}
    if n_prompt > 0:
        row = {"test": f"pp{n_prompt}", "n_prompt": n_prompt, "n_gen": 0, "n_depth": 0}
        row.update(summary(pp["prefill"], n_prompt))
        row.update({"ttft_ms": sum(pp["ttft"]) / len(pp["ttft"]), "samples_ttft_ms": pp["ttft"],
                    "h2d_bytes": n_prompt * ids_host.element_size(), **common, **pp["memory"]})
        row["d2h_bytes"] = 8  # the sampled id
        rows.append(row)
    if args.n_gen > 0:
        name = f"tg{args.n_gen} @ d{n_prompt}" if n_prompt > 0 else f"tg{args.n_gen}"
        row = {"test": name, "n_prompt": 0, "n_gen": args.n_gen, "n_depth": n_prompt}
        row.update(summary(tg["decode"], args.n_gen))
        row.update({"ttft_ms": None, "samples_ttft_ms": [], "h2d_bytes": 0, **common, **tg["memory"]})
        rows.append(row)


def benchmark(args):
    device = torch.device(args.device)
    if on_gpu(device) and not torch.cuda.is_available():
        sys.exit("error: --device cuda: no CUDA device visible to torch")
    cfg = load_config(args.config)
    dtype = torch.bfloat16 if on_gpu(device) else torch.float32
    start = time.perf_counter()
    weights = random_weights(cfg, device, dtype, args.seed)
    if on_gpu(device):
        torch.cuda.synchronize()
    load_ms = (time.perf_counter() - start) * 1000.0
    model = Llama(cfg, weights)
    gen = torch.Generator().manual_seed(1234)
    longest = max(args.n_prompt)
    ids_host = torch.randint(0, cfg.vocab_size, (max(longest, 1),), generator=gen)
    if on_gpu(device):
        ids_host = ids_host.pin_memory()

    rows, skipped = [], []
    for n_prompt in args.n_prompt:
        run_length(model, cfg, n_prompt, args, ids_host, rows, skipped)

    label = os.path.splitext(os.path.basename(args.config))[0] + " (random)"
    params = cfg.count_parameters()
    doc = {"engine": "torch-sdpa", "model": label, "architecture": "llama", "random_weights": True,
           "params": params, "weight_bytes": sum(t.numel() * t.element_size() for t in weights.values()),
           "backend": "CUDA" if on_gpu(device) else "CPU",
           "gpu": torch.cuda.get_device_name(device) if on_gpu(device) else None, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "n_batch": args.chunk, "repetitions": args.repetitions,
           "load_ms": load_ms, "peak_rss_bytes": host_peak_bytes(), "tests": rows, "skipped": skipped}
    text = json.dumps(doc, indent=2) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
    for r in rows:
        print(f"| sdpa | {r['test']} | {r['avg_ts']:.2f} | "
              f"{r['peak_device_bytes'] / 2**30:.2f} GiB |", file=sys.stderr)


# ---- --tiny: is the model right? -----------------------------------------------------------

def tiny_check(device):
    """Seconds-long checks, f32: (1) the model's logits on two tiny HF checkpoints (GQA; llama3
    RoPE with tied embeddings) against the logits transformers computed for them
    (tests/fixtures/tiny/*/reference.json); (2) SDPA against naive attention, unchunked and
    chunked prefill; (3) decode with the KV cache against the full forward, token by token."""
    failures = 0

    def check(what, got, want, tol):
        nonlocal failures
        err = float((got - want).abs().max())
        scale = max(1.0, float(want.abs().max()))
        ok = err <= tol * scale
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} {what}: max |diff| {err:.2e} (tolerance {tol * scale:.2e})")

    # RoPE: a rotated q.k depends only on the distance between the positions.
    cfg = load_config(os.path.join(ROOT, "tests", "fixtures", "tiny", "llama3_rope_tied_f16", "config.json"))
    inv_freq = rope_inv_freq(cfg).to(device)
    gen = torch.Generator().manual_seed(7)
    q = torch.randn(1, 1, 1, cfg.head_dim, generator=gen).to(device)
    k = torch.randn(1, 1, 1, cfg.head_dim, generator=gen).to(device)
    dots = []
    for first in (0, 5, 40):
        cq, sq = rope_cos_sin(inv_freq, first + 9, 1, torch.float32)
        ck, sk = rope_cos_sin(inv_freq, first, 1, torch.float32)
        dots.append(float((apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum()))
    check("rope: q.k depends only on the distance", torch.tensor(dots[1:]), torch.tensor(dots[:1] * 2), 1e-5)

    for name in ("llama_gqa_bf16", "llama3_rope_tied_f16"):
        directory = os.path.join(ROOT, "tests", "fixtures", "tiny", name)
        cfg = load_config(os.path.join(directory, "config.json"))
        with open(os.path.join(directory, "reference.json")) as f:
            ref = json.load(f)
        weights = {k: v.to(device) for k, v in read_safetensors(os.path.join(directory, "model.safetensors")).items()}
        ids = torch.tensor(ref["prompt_ids"], device=device)
        n = ids.shape[0]
        want = torch.tensor(ref["logits"], device=device)
        sdpa, naive = Llama(cfg, weights, sdpa_attention), Llama(cfg, weights, naive_attention)

        def full(model, chunk):
            cache = KVCache(cfg, n, device, torch.float32)
            return model.prefill(ids, cache, chunk, all_logits=True)

        logits = full(sdpa, 0)
        check(f"{name}: SDPA model vs transformers logits ({n} tokens)", logits, want, 1e-4)
        check(f"{name}: SDPA vs naive attention", logits, full(naive, 0), 1e-5)
        check(f"{name}: prefill in chunks of 5 vs whole", full(sdpa, 5), logits, 1e-5)
        # Decode: prefill the first half, then one token at a time; each step's logits are the
        # full forward's at that position.
        split = n // 2
        cache = KVCache(cfg, n, device, torch.float32)
        steps = [sdpa.prefill(ids[:split], cache, 3)]
        for i in range(split, n - 1):
            steps.append(sdpa.decode(ids[i:i + 1], cache))
        check(f"{name}: decode with the KV cache vs full forward", torch.stack(steps), logits[split - 1:n - 1], 1e-5)
    print("sdpa_reference --tiny:", "PASS" if failures == 0 else f"FAIL ({failures} checks)")
    return 0 if failures == 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config.json of the shape (default: %(default)s)")
    parser.add_argument("-p", "--n-prompt", type=token_list, default=[512],
                        help="prompt lengths, a comma list with k/m (32k,128k); 0 = decode from empty")
    parser.add_argument("-n", "--n-gen", type=int, default=128, help="decode tokens after each prefill")
    parser.add_argument("-b", "--chunk", type=int, default=16384,
                        help="tokens per projection/MLP chunk in prefill (0 = the whole prompt); attention "
                             "always covers the whole prompt")
    parser.add_argument("-r", "--repetitions", type=int, default=0,
                        help="timed runs per length (default: 3, and 1 from 32k tokens)")
    parser.add_argument("--seed", type=int, default=1, help="weight seed")
    parser.add_argument("--device", default="cuda", help="cuda (the measurement) or cpu (f32, to check the script)")
    parser.add_argument("-o", "--output", default="-", help="JSON file (default: stdout)")
    parser.add_argument("--tiny", action="store_true",
                        help="check the model on the tiny fixtures (HF logits, naive attention, decode) and exit")
    args = parser.parse_args()
    if args.tiny:
        return tiny_check(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    if args.n_gen < 0 or args.repetitions < 0 or args.chunk < 0:
        parser.error("-n, -r and -b must be >= 0")
    benchmark(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
