#!/usr/bin/env python3
"""Average the weights of several continuations of one model (a "model soup").

  python3 tools/train_demo/soup.py --out DIR MODEL_DIR MODEL_DIR [...] [--weights 1,1,2]

Every MODEL_DIR is a model folder with config.json and one model.safetensors (merge a call's
shards first, merge_shards.py). All must have the same config.json and the same tensors (names,
dtypes, shapes): continuations of one model from one --init, as calls 17-19 are of call 16's.
DIR gets the first folder's files (config, tokenizer, engine files) and a model.safetensors whose
every tensor is the weighted mean of the inputs', computed in double precision and rounded to
the tensors' dtype (bf16: to nearest, ties to even). Standard library only; numpy, where
present (the GPU machine), only makes it faster and gives the same bytes.

Why: single calls that continue the committed model with one mix land within the evaluation's
noise of each other (calls 17 and 18: held-out phrasings 76.0% and 72.7% teacher-forced, the
committed model 74.7%). Averaging continuations that start from the same weights keeps what
they learned in common and cancels much of what each call's seed and data order added.
"""

import argparse
import array
import json
import os
import shutil
import struct
import sys

try:
    import numpy as np
except ImportError:  # the development machine and CI: the standard-library path below
    np = None

_SIZE = {"BF16": 2, "F32": 4}


def read_safetensors(path):
    """(header without __metadata__, metadata, raw bytes of the data section)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("%s: not a safetensors file (shorter than its 8-byte header size)" % path)
        n = struct.unpack("<Q", head)[0]
        try:
            header = json.loads(f.read(n))
        except ValueError:
            raise ValueError("%s: safetensors header is not JSON" % path) from None
        data = f.read()
    metadata = header.pop("__metadata__", {}) or {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        if info["dtype"] not in _SIZE:
            raise ValueError("%s: tensor %s has dtype %s; only BF16 and F32 can be averaged" % (path, name, info["dtype"]))
        count = 1
        for d in info["shape"]:
            count *= d
        if e - b != count * _SIZE[info["dtype"]] or e > len(data):
            raise ValueError("%s: tensor %s: data offsets do not match its shape" % (path, name))
    return header, metadata, data


def _bf16_to_f32_bytes(raw):
    """bf16 is the top half of a float32: put each 2-byte value above two zero bytes."""
    out = bytearray(2 * len(raw))
    out[2::4] = raw[0::2]
    out[3::4] = raw[1::2]
    return bytes(out)


def _round_f32_to_bf16(bits):
    """One float32 bit pattern -> bf16 bit pattern, to nearest, ties to even."""
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF


def average(raws, weights, dtype):
    """Weighted mean of equally long tensors given as little-endian bytes of one dtype."""
    total = float(sum(weights))
    if np is not None:
        src = np.uint16 if dtype == "BF16" else np.uint32
        acc = np.zeros(len(raws[0]) // _SIZE[dtype], dtype=np.float64)
        for raw, w in zip(raws, weights):
            a = np.frombuffer(raw, dtype=src).astype(np.uint32)
            acc += (w / total) * ((a << 16) if dtype == "BF16" else a).view(np.float32)
        f32 = acc.astype(np.float32)
        if dtype == "F32":
            return f32.tobytes()
        bits = f32.view(np.uint32).astype(np.uint64)
        return (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF).astype(np.uint16).tobytes()
    acc = None
    for raw, w in zip(raws, weights):
        vals = array.array("f")
        vals.frombytes(_bf16_to_f32_bytes(raw) if dtype == "BF16" else raw)
        k = w / total
        acc = [k * v for v in vals] if acc is None else [a + k * v for a, v in zip(acc, vals)]
    f32 = array.array("f", acc)  # double -> float32, to nearest
    if dtype == "F32":
        return f32.tobytes()
    bits = array.array("I")
    bits.frombytes(f32.tobytes())
    return array.array("H", (_round_f32_to_bf16(b) for b in bits)).tobytes()


def soup(model_dirs, weights, out_dir):
    if sys.byteorder != "little":
        raise SystemExit("soup.py: needs a little-endian machine (safetensors data is little-endian)")
    configs = []
    for d in model_dirs:
        with open(os.path.join(d, "config.json")) as f:
            configs.append(json.load(f))
    for d, c in zip(model_dirs[1:], configs[1:]):
        if c != configs[0]:
            raise ValueError("%s/config.json differs from %s/config.json: not the same model" % (d, model_dirs[0]))
    loaded = [read_safetensors(os.path.join(d, "model.safetensors")) for d in model_dirs]
    header0, metadata, _ = loaded[0]
    for d, (h, _, _) in zip(model_dirs[1:], loaded[1:]):
        if {k: (v["dtype"], v["shape"]) for k, v in h.items()} != {k: (v["dtype"], v["shape"]) for k, v in header0.items()}:
            raise ValueError("%s/model.safetensors: tensor names, dtypes or shapes differ from %s's" % (d, model_dirs[0]))
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(model_dirs[0]):
        src = os.path.join(model_dirs[0], name)
        if name != "model.safetensors" and os.path.isfile(src):
            shutil.copyfile(src, os.path.join(out_dir, name))
    new_header, chunks, offset = {}, [], 0
    for name in sorted(header0):
        info = header0[name]
        raws = []
        for h, _, data in loaded:
            b, e = h[name]["data_offsets"]
            raws.append(data[b:e])
        chunk = average(raws, weights, info["dtype"])
        new_header[name] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [offset, offset + len(chunk)]}
        chunks.append(chunk)
        offset += len(chunk)
    new_header["__metadata__"] = dict(metadata, soup_of=",".join(os.path.basename(os.path.normpath(d)) for d in model_dirs),
                                      soup_weights=",".join("%g" % w for w in weights))
    raw = json.dumps(new_header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keep the data 8-byte aligned
    with open(os.path.join(out_dir, "model.safetensors"), "wb") as out:
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
        for chunk in chunks:
            out.write(chunk)
    return len(header0), offset


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for the averaged model")
    ap.add_argument("--weights", default="", help="comma-separated weight per model (default: equal)")
    ap.add_argument("models", nargs="+", help="model folders (config.json + model.safetensors)")
    args = ap.parse_args(argv)
    if len(args.models) < 2:
        ap.error("give at least two model folders")
    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else [1.0] * len(args.models)
    except ValueError:
        ap.error("--weights: not a comma-separated list of numbers: %s" % args.weights)
    if len(weights) != len(args.models) or any(w < 0 for w in weights) or sum(weights) <= 0:
        ap.error("--weights: one non-negative weight per model, not all zero")
    try:
        n, size = soup(args.models, weights, args.out)
    except (OSError, ValueError, KeyError) as e:
        print("soup.py: %s" % e, file=sys.stderr)
        return 1
    print("%s/model.safetensors: %d tensors, %.1f MB, mean of %s (weights %s)"
          % (args.out, n, size / 1e6, ", ".join(args.models), ",".join("%g" % w for w in weights)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
