#!/usr/bin/env python3
"""Merge safetensors shards into one model.safetensors (standard library only).

The GPU machine returns files of at most 16 MiB, so train.py saves the model in shards; the
repository keeps the single-file layout most Hub checkpoints of this size have.

  python3 tools/train_demo/merge_shards.py OUT_DIR SHARD [SHARD ...]
"""

import json
import os
import struct
import sys


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return header, 8 + n


def merge(out_path, shards):
    tensors = {}  # name -> (path, data start, info)
    metadata = {}
    for path in shards:
        header, base = read_header(path)
        metadata.update(header.pop("__metadata__", {}) or {})
        for name, info in header.items():
            if name in tensors:
                raise SystemExit("%s: tensor %s is also in %s" % (path, name, tensors[name][0]))
            tensors[name] = (path, base, info)
    new_header, offset = {}, 0
    for name in sorted(tensors):
        _, _, info = tensors[name]
        b, e = info["data_offsets"]
        new_header[name] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [offset, offset + e - b]}
        offset += e - b
    metadata.pop("total_size", None)
    new_header["__metadata__"] = metadata or {"format": "pt"}
    raw = json.dumps(new_header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keep the data 8-byte aligned
    with open(out_path, "wb") as out:
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
        handles = {}
        for name in sorted(tensors):
            path, base, info = tensors[name]
            f = handles.setdefault(path, open(path, "rb"))
            b, e = info["data_offsets"]
            f.seek(base + b)
            out.write(f.read(e - b))
        for f in handles.values():
            f.close()
    return len(tensors), offset


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    out_dir, shards = sys.argv[1], sys.argv[2:]
    os.makedirs(out_dir, exist_ok=True)
    n, size = merge(os.path.join(out_dir, "model.safetensors"), shards)
    print("model.safetensors: %d tensors, %.1f MB of data" % (n, size / 1e6))


if __name__ == "__main__":
    main()
