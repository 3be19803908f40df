#!/usr/bin/env python3
"""Run the demo model's retrieval evaluation through the ltri engine (standard library only).

Generates the same prompts as the PyTorch evaluation on the GPU (tasks.make_eval_sample: same
families, lengths, seed, held-out prose from data/heldout, held-out key words, needle depths
(i + 0.5) / n), runs one `ltri run` per prompt with greedy decoding and scores every output three ways:
RULER's string_match_all (the share of the expected values that occur in the output,
case-insensitive substrings, averaged over the cell: what RULER publishes and ../shared/EVAL.md
asks for; passkey: the first number must be the key), whole answers (every expected value
occurs: a sample with 4 of 5 chain variables counts 0, not 0.8) and exact (the output is the
trained answer). It prints the RULER table (family x length) and, with --json, every sample's
result. --report reads such files back and prints the RULER and whole-answer tables with totals
(trained and held-out phrasings, all three scorings, `ltri run` seconds per length).

  python3 tools/train_demo/eval_engine.py                        # all families, 1K..16K, n=12
  python3 tools/train_demo/eval_engine.py --families passkey,niah_single_2 --lengths 1024,4096 \\
      --n 4 --extra="--kv ltri" --json out/eval_full.json
  python3 tools/train_demo/eval_engine.py --lengths 1024,2048,4096,8192 --n 16 --jobs 2 \\
      --extra="-t 1" --json out/engine16.json
  python3 tools/train_demo/eval_engine.py --report out/engine16_1k_4k.json out/engine16_8k.json

Prompt lengths are calibrated with a pure-Python copy of the model's tokenizer (byte-level BPE
from tokenizer.json, Llama-3 pre-tokenizer regex written with Python's `re`), so that no
engine call is needed to size a prompt; --check-tokenizer compares it with `ltri tokenize`.
"""

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tasks  # noqa: E402

# Llama-3 split: \p{L} -> [^\W\d_] (Unicode letters), \p{N} -> \d (Unicode decimal digits).
_L, _N = r"[^\W\d_]", r"\d"
_SPLIT = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
    r"|(?:[^\r\n\w]|_)?" + _L + r"+"  # [^\r\n\p{L}\p{N}]?\p{L}+ ('_' is neither L nor N)
    r"|" + _N + r"{1,3}"
    r"| ?(?:[^\s\w]|_)+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def _byte_map():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


class PyBpe:
    """Byte-level BPE of a tokenizer.json, for counting tokens (no special tokens but BOS)."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        self.vocab = tj["model"]["vocab"]
        merges = tj["model"]["merges"]
        self.ranks = {}
        for i, m in enumerate(merges):
            a, b = m.split(" ") if isinstance(m, str) else m
            self.ranks[(a, b)] = i
        self.bytemap = _byte_map()
        self.cache = {}

    def _bpe(self, piece):
        parts = [self.bytemap[b] for b in piece.encode("utf-8")]
        while len(parts) > 1:
            best, bi = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            parts[bi:bi + 2] = [parts[bi] + parts[bi + 1]]
        return parts

    def encode(self, text):
        """Token ids with BOS, as tokenizer.json's post-processor gives them."""
        ids = [self.vocab["<|begin_of_text|>"]] if "<|begin_of_text|>" in self.vocab else [0]
        for m in _SPLIT.finditer(text):
            ids.extend(self.vocab[p] for p in self._bpe(m.group(0)))
        return ids

    def count(self, text):
        n = 1  # BOS, added by the tokenizer's post-processor
        for m in _SPLIT.finditer(text):
            piece = m.group(0)
            c = self.cache.get(piece)
            if c is None:
                c = len(self._bpe(piece))
                if len(self.cache) < 500000:
                    self.cache[piece] = c
            n += c
        return n


def run_ltri(ltri, model, prompt, n_predict, ctx, extra, timeout):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(prompt)
        path = f.name
    try:
        cmd = [ltri, "run", "-m", model, "-f", path, "--temp", "0", "-n", str(n_predict), "-c", str(ctx)] + extra
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        dt = time.time() - t0
        if p.returncode != 0:
            return None, dt, p.stderr.strip().splitlines()[-1:] or ["exit %d" % p.returncode]
        return p.stdout, dt, None
    finally:
        os.unlink(path)


def ruler_score(text, expected, scoring="all"):
    """RULER's string_match_all for one sample: the share of the expected values that are
    case-insensitive substrings of the output (0..1); passkey ("first_number"): 1 if the first
    number of the output is the key, else 0."""
    if scoring == "first_number":
        m = re.search(r"\d+", text)
        return float(bool(m) and m.group(0) == expected[0])
    t = text.lower()
    return sum(e.lower() in t for e in expected) / len(expected)


def score(text, sample):
    """Whole answer: every expected value occurs (a RULER score of 1)."""
    return ruler_score(text, sample.expected, sample.scoring) == 1.0


def ruler_of(rec):
    """A result's RULER score; files written before it was recorded: from the output (every
    first_number family has one expected value, so there it is the whole-answer bit)."""
    if "ruler" in rec:
        return rec["ruler"]
    if len(rec["expected"]) <= 1 or rec.get("output") is None:
        return float(bool(rec["ok"]))
    return ruler_score(rec["output"], rec["expected"])


def exact(rec):
    """Whether a sample's output, stripped, is the answer as trained. Files written before the
    answer was recorded: the expected values as the answer joins them (RULER vt with spaces)."""
    answer = rec.get("answer")
    if answer is None:
        answer = (" ".join(rec["expected"]) if rec["family"] == "vt" else tasks.join_values(rec["expected"])) + "."
    return rec.get("output", "").strip() == answer.strip()


# Totals cover the lengths the model was trained on; the targets of docs/demo-model.md are there.
TOTALS_UP_TO = 8192


def table_markdown(results, names, lengths, value=ruler_of):
    """Family x length, the mean of value(result) over the cell's samples in % (RULER score by
    default; value=whole gives whole answers), '-' for an empty cell."""
    lines = ["| family | " + " | ".join("%dK" % (L // 1024) for L in lengths) + " |",
             "|---" * (len(lengths) + 1) + "|"]
    table = {}
    for name in names:
        row = []
        for L in lengths:
            cell = [float(value(r)) for r in results if r["family"] == name and r["length"] == L]
            acc = sum(cell) / len(cell) if cell else None
            table["%s@%d" % (name, L)] = acc
            row.append("-" if acc is None else "%3.0f" % (100 * acc))
        lines.append("| %s | %s |" % (name, " | ".join(row)))
    return "\n".join(lines), table


def depth_markdown(results, lengths, bins=5):
    """Length x depth of the sample's first needle (0 = the start of the haystack; a cell's
    needles sweep the depths): right / samples in each fifth of the depth. The first fifth of a
    long prompt holds the needles that stand farthest before the question."""
    lines = ["| length | " + " | ".join("depth %.1f-%.1f" % (b / bins, (b + 1) / bins) for b in range(bins)) + " |",
             "|---" + "|---:" * bins + "|"]
    for L in lengths:
        cells = [[0, 0] for _ in range(bins)]
        for r in results:
            if r["length"] == L and r.get("depth") is not None:
                cell = cells[min(int(r["depth"] * bins), bins - 1)]
                cell[0] += bool(r["ok"])
                cell[1] += 1
        lines.append("| %dK | %s |" % (L // 1024, " | ".join(
            "%d/%d (%.0f%%)" % (ok, n, 100.0 * ok / n) if n else "-" for ok, n in cells)))
    return "\n".join(lines)


def whole(rec):
    """Whether every expected value occurs in the result's output."""
    return bool(rec["ok"])


def totals(results):
    """{group: (samples, sum of RULER scores, whole answers, exact answers)} over lengths up to
    TOTALS_UP_TO; groups: all, trained and held-out phrasings, each also without and with only
    vt in phrasing (its own target)."""
    out = {}
    for r in results:
        if r["length"] > TOTALS_UP_TO:
            continue
        side = "held-out" if r["family"].endswith("_heldout") else "trained"
        vt = "vt in phrasing" if r["family"].startswith("vt_phrased") else "without vt in phrasing"
        for group in ("all", side, side + ", " + vt):
            n, rs, ok, ex = out.get(group, (0, 0.0, 0, 0))
            out[group] = (n + 1, rs + ruler_of(r), ok + whole(r), ex + exact(r))
    return out


def report(paths):
    """Print the table and totals of one or more --json files (e.g. 1K-4K and 8K run apart)."""
    results = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            results += json.load(f)["samples"]
    known = [f[0] for f in tasks.EVAL_FAMILIES]
    seen = {r["family"] for r in results}
    names = [n for n in known if n in seen] + sorted(seen - set(known))
    lengths = sorted({r["length"] for r in results})
    print("RULER score (string_match_all), %:\n")
    print(table_markdown(results, names, lengths)[0])
    print("\nwhole answers (every expected value), % of samples:\n")
    print(table_markdown(results, names, lengths, whole)[0])
    print("\nwhole answers by depth of the first needle:\n")
    print(depth_markdown(results, lengths))
    print()
    for group, (n, rs, ok, ex) in sorted(totals(results).items()):
        print("%-46s %5d samples  RULER %5.1f%%  whole %5.1f%% (%d)  exact %5.1f%% (%d)" % (
            group + " (up to %dK)" % (TOTALS_UP_TO // 1024), n, 100 * rs / n, 100 * ok / n, ok, 100 * ex / n, ex))
    for L in lengths:
        rs = [r for r in results if r["length"] == L]
        print("%6d tokens: %4d prompts, %4d whole answers, %8.1f s of ltri run, %d errors" % (
            L, len(rs), sum(bool(r["ok"]) for r in rs), sum(r.get("seconds", 0) for r in rs),
            sum(1 for r in rs if r.get("error"))))


def probe_parser(doc, n_default):
    """The options every probe_*.py takes: the engine, the model, the word list, prompts per row
    and haystack size; the probe adds its own."""
    root = tasks.repo_root()
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--ltri", default=os.path.join(root, "build", "ltri"))
    ap.add_argument("-m", "--model", default=os.path.join(root, "models", "ltri-demo"))
    ap.add_argument("--words", default="/usr/share/dict/american-english")
    ap.add_argument("--n", type=int, default=n_default, help="prompts per row")
    ap.add_argument("--chars", type=int, default=3500, help="haystack characters (3500: ~1K tokens)")
    return ap


class Probe:
    """A probe's tokenizer, word list and held-out prose, and one greedy `ltri run` per sample."""

    def __init__(self, args, threads=1, new_tokens=48):
        self.args = args
        self.bpe = PyBpe(os.path.join(args.model, "tokenizer.json"))
        self.words = tasks.Words(args.words)
        self.prose = tasks.Prose.from_files(tasks.heldout_prose_paths())
        self.threads = threads
        self.new_tokens = new_tokens

    def answer(self, sample, new_tokens=None):
        """(a whole answer: every expected value in the output; the output or the error line)."""
        k = new_tokens or self.new_tokens
        n = self.bpe.count(sample.prompt)
        out, _, err = run_ltri(self.args.ltri, self.args.model, sample.prompt, k, n + k + 16,
                               ["-t", str(self.threads)], 120)
        if out is None:
            return False, str(err)
        return bool(score(out, sample)), out


def main():
    root = tasks.repo_root()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ltri", default=os.path.join(root, "build", "ltri"))
    ap.add_argument("-m", "--model", default=os.path.join(root, "models", "ltri-demo"))
    ap.add_argument("--families", default="all", help="comma list of tasks.EVAL_FAMILIES names")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--heldout-only", action="store_true", help="only the held-out phrasing families")
    which.add_argument("--trained-only", action="store_true",
                       help="only the trained phrasing families (the rest of the table after --heldout-only)")
    ap.add_argument("--lengths", default=",".join(str(L) for L in tasks.EVAL_LENGTHS))
    ap.add_argument("--n", type=int, default=12, help="samples per family x length")
    ap.add_argument("--seed", type=int, default=tasks.EVAL_SEED)
    ap.add_argument("--words", default="/usr/share/dict/american-english")
    ap.add_argument("--extra", default="", help="extra ltri run flags, e.g. \"--kv ltri -t 2\"")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--jobs", type=int, default=1, help="prompts run at once, e.g. 2 with --extra=\"-t 1\"")
    ap.add_argument("--json", default="", help="write every sample's result here")
    ap.add_argument("--dry-run", action="store_true", help="build prompts and print their sizes only")
    ap.add_argument("--check-tokenizer", type=int, default=0, metavar="K",
                    help="compare the Python token count with `ltri tokenize` on K prompts")
    ap.add_argument("--compare-hf", type=int, default=0, metavar="K",
                    help="compare the Python tokenizer with HF tokenizers on K prompts per family (needs `tokenizers`)")
    ap.add_argument("--report", nargs="+", metavar="JSON", help="print the table and totals of --json files; runs nothing")
    args = ap.parse_args()
    if args.jobs < 1:
        ap.error("--jobs must be at least 1, got %d" % args.jobs)
    if args.report:
        report(args.report)
        return

    names = [f[0] for f in tasks.EVAL_FAMILIES]
    if args.families != "all":
        names = [n for n in args.families.split(",") if n]
    if args.heldout_only or args.trained_only:
        names = [n for n in names if n.endswith("_heldout") == args.heldout_only]
    lengths = [int(x) for x in args.lengths.split(",")]
    bpe = PyBpe(os.path.join(args.model, "tokenizer.json"))
    words = tasks.Words(args.words)
    prose = tasks.Prose.from_files(tasks.heldout_prose_paths())
    extra = args.extra.split()

    if args.compare_hf:
        from tokenizers import Tokenizer
        hf = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
        bad = total = 0
        for name in names:
            for i in range(args.compare_hf):
                s = tasks.make_eval_sample(name, lengths[i % len(lengths)], i, args.compare_hf, words, prose,
                                           bpe.count, seed=args.seed)
                for text in (s.prompt, s.prompt + s.answer):
                    a, b = bpe.encode(text), hf.encode(text).ids
                    total += 1
                    if a != b:
                        bad += 1
                        k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
                        print("MISMATCH %s #%d at token %d: py %s hf %s" % (name, i, k, a[k:k + 5], b[k:k + 5]))
        print("python tokenizer vs HF tokenizers: %d / %d texts identical" % (total - bad, total))
        return

    samples, checked = [], 0
    for L in lengths:
        for name in names:
            for i in range(args.n):
                s = tasks.make_eval_sample(name, L, i, args.n, words, prose, bpe.count, seed=args.seed)
                samples.append((name, L, i, s))
                if checked < args.check_tokenizer:
                    p = subprocess.run([args.ltri, "tokenize", "-m", args.model, "-p", s.prompt],
                                       capture_output=True, text=True)
                    ids = json.loads(p.stdout) if p.returncode == 0 else None
                    print("tokenizer check %s@%d: python %d, ltri %s" % (
                        name, L, bpe.count(s.prompt), len(ids) if ids is not None else p.stderr.strip()),
                        file=sys.stderr)
                    checked += 1
    print_lock = threading.Lock()

    def evaluate(item):
        name, L, i, s = item
        n_prompt = bpe.count(s.prompt)
        rec = dict(family=name, length=L, index=i, depth=s.depths[0], prompt_tokens=n_prompt,
                   expected=s.expected, answer=s.answer)
        if args.dry_run:
            return rec
        k = tasks.max_new_tokens(s)
        out, dt, err = run_ltri(args.ltri, args.model, s.prompt, k, n_prompt + k + 16, extra, args.timeout)
        rs = ruler_score(out, s.expected, s.scoring) if out is not None else 0.0
        rec.update(output=(out or "")[:300], seconds=round(dt, 2), error=err, ruler=rs, ok=rs == 1.0)
        with print_lock:
            print("%-26s %6d #%-2d %-5s %6.1fs %s" % (name, L, i, rec["ok"], dt, (out or str(err))[:60].replace("\n", " ")),
                  file=sys.stderr, flush=True)
        return rec

    # One `ltri run` per prompt; --jobs runs that many at once (give each `-t` threads so that
    # jobs x threads fits the cores). Results keep the prompts' order whatever finishes first.
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(evaluate, samples))

    if args.dry_run:
        for r in results:
            print("%s\t%d\t%d\t%d" % (r["family"], r["length"], r["index"], r["prompt_tokens"]))
        return
    md, table = table_markdown(results, names, lengths)
    _, table_whole = table_markdown(results, names, lengths, whole)
    print("ltri engine, greedy, %d samples per cell, seed %d, flags: %s; RULER score, %%\n" % (
        args.n, args.seed, args.extra or "(none)"))
    print(md)
    summary = {"table": table, "table_whole": table_whole, "n": args.n, "seed": args.seed, "extra": args.extra,
               "lengths": lengths}
    print(json.dumps(summary))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "samples": results}, f, indent=1)


if __name__ == "__main__":
    main()
