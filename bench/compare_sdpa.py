#!/usr/bin/env python3
"""Joins `ltri bench -o json` output (one or more files, e.g. one per policy) with
bench/sdpa_reference.py's JSON into one markdown table: every test of every engine, each ltri
row with its speed as a multiple of SDPA's on the same test (same name: pp131072,
tg128 @ d131072), then the issue-5 targets the numbers speak to. Plain json only: runs anywhere.

  python3 bench/compare_sdpa.py --ltri ltri-full.json ltri-ltri.json --sdpa sdpa.json \\
      --write-ltri ltri.json > bench.md
"""
import argparse
import json
import sys

GIB = 1 << 30


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {path}: {e}")


def merge_ltri(docs):
    """One ltri document: the first file's header, every file's tests."""
    merged = dict(docs[0])
    merged["tests"] = [t for d in docs for t in d.get("tests", [])]
    return merged


def size_text(n):
    if not n:
        return "-"
    for unit, scale in (("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def ms_text(ms):
    if ms is None:
        return "-"
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def rate_text(t):
    if len(t.get("samples_ts", [])) > 1:
        return f"{t['avg_ts']:.2f} ± {t['stddev_ts']:.2f}"
    return f"{t['avg_ts']:.2f}"


def depth(t):
    return t["n_prompt"] or t["n_depth"]


def table(ltri, sdpa):
    sdpa_by_test = {t["test"]: t for t in sdpa.get("tests", [])} if sdpa else {}
    rows = [("sdpa", t) for t in sdpa_by_test.values()] + [("ltri", t) for t in ltri.get("tests", [])]
    # Grouped by context length, prefill before decode, SDPA first.
    rows.sort(key=lambda r: (depth(r[1]), r[1]["n_gen"] > 0, r[0] != "sdpa"))
    out = ["| engine | policy | test | t/s | ttft | peak dev | peak host | h2d | x SDPA |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for engine, t in rows:
        ref = sdpa_by_test.get(t["test"])
        ratio = f"{t['avg_ts'] / ref['avg_ts']:.2f}x" if engine == "ltri" and ref and ref["avg_ts"] > 0 else "-"
        out.append(f"| {engine} | {t['policy']} | {t['test']} | {rate_text(t)} | {ms_text(t.get('ttft_ms'))} | "
                   f"{size_text(t.get('peak_device_bytes'))} | {size_text(t.get('peak_host_bytes'))} | "
                   f"{size_text(t.get('h2d_bytes'))} | {ratio} |")
    return out


def targets(ltri, sdpa):
    """The issue-5 targets these runs measure (H100 targets; say which GPU ran)."""
    lines = []
    sdpa_by_test = {t["test"]: t for t in sdpa.get("tests", [])} if sdpa else {}

    def verdict(ok):
        return "met" if ok else "MISSED"

    for t in ltri.get("tests", []):
        if t["policy"] == "full" and t["n_prompt"] and t["test"] in sdpa_by_test:
            slower = sdpa_by_test[t["test"]]["avg_ts"] / t["avg_ts"]
            lines.append(f"- full prefill {t['test']}: SDPA is {slower:.2f}x ltri full (target <= 1.5x): {verdict(slower <= 1.5)}")
        if t["policy"] != "ltri":
            continue
        if t["n_prompt"]:
            lines.append(f"- ltri prefill {t['test']}: {t['avg_ts']:.0f} tok/s (target >= 22000), ttft "
                         f"{ms_text(t.get('ttft_ms'))}: {verdict(t['avg_ts'] >= 22000)}")
        elif t["n_depth"] >= 131072:
            lines.append(f"- ltri decode {t['test']}: {t['avg_ts']:.1f} tok/s (target >= 150): {verdict(t['avg_ts'] >= 150)}")
        if depth(t) >= 1 << 20:
            peak = t.get("peak_device_bytes", 0)
            lines.append(f"- ltri GPU memory {t['test']}: {size_text(peak)} (target <= 24 GiB): {verdict(peak <= 24 * GIB)}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ltri", nargs="+", required=True, help="ltri bench -o json files")
    parser.add_argument("--sdpa", help="bench/sdpa_reference.py JSON (optional)")
    parser.add_argument("--write-ltri", help="also write the merged ltri JSON here")
    args = parser.parse_args()

    ltri = merge_ltri([load(p) for p in args.ltri])
    sdpa = load(args.sdpa) if args.sdpa else None
    if args.write_ltri:
        with open(args.write_ltri, "w") as f:
            json.dump(ltri, f, indent=2)
            f.write("\n")

    params = ltri.get("params", 0)
    params_text = f"{params / 1e9:.2f} B" if params >= 1e9 else f"{params / 1e6:.1f} M"
    lines = [f"model: {ltri.get('model')}, {params_text} params, ltri backend {ltri.get('backend')}"
             + (f"; SDPA: torch {sdpa.get('torch')} on {sdpa.get('gpu') or sdpa.get('backend')}" if sdpa else ""), ""]
    lines += table(ltri, sdpa)
    lines += ["", "ttft: prefill + first token. peak dev: ltri backend allocations / torch.cuda.max_memory_allocated; "
                  "peak host: process RSS; both the most during the test. h2d: host->device bytes in the test. "
                  "x SDPA: ltri t/s over SDPA t/s on the same test."]
    for s in (sdpa or {}).get("skipped", []):
        lines.append(f"SDPA skipped -p {s['n_prompt']}: {s['reason']}")
    found = targets(ltri, sdpa)
    if found:
        lines += ["", "Targets (issue 5):"] + found
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
