#!/usr/bin/env python3
"""Held-out phrasings, taken apart: the committed model through the engine on fact prompts whose
parts are held out one group at a time. The evaluation's *_heldout families change every group at
once (the needle's template, the question, the subjects' names and the attributes, the opening
instruction); this shows which group the model fails on. Held-out words and prose, greedy, whole-answer
scoring (every expected value in the output), ~1K-token prompts.

  python3 tools/train_demo/probe_heldout.py --words .train/data/american-english --n 16
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval_engine as ee  # noqa: E402
import tasks  # noqa: E402

# The groups of parts, as tasks._phr names them.
GROUPS = {
    "needle": ["needle"],
    "question": ["q", "qmv", "qmq"],
    "names and attributes": ["first", "last", "adj", "noun", "place", "attr"],
    "instruction": ["instr"],
}
ROWS = [("none", []), ("needle", ["needle"]), ("question", ["question"]),
        ("names and attributes", ["names and attributes"]), ("instruction", ["instruction"]),
        ("needle + question", ["needle", "question"]), ("all (the *_heldout families)", list(GROUPS))]


REAL_PHR = tasks._phr


def mixed_phrasings(held):
    """tasks._phr's dict with the parts of the groups in `held` from the held-out lists."""
    train, out = REAL_PHR(False), REAL_PHR(True)
    keys = {k for g in held for k in GROUPS[g]}
    return {k: (out[k] if k in keys else train[k]) for k in train}


def main():
    ap = ee.probe_parser(__doc__, 16)
    ap.add_argument("--modes", default="single,multivalue,multiquery")
    ap.add_argument("--show", type=int, default=2, help="wrong outputs shown per cell")
    args = ap.parse_args()
    probe = ee.Probe(args, threads=2)
    words, prose = probe.words, probe.prose
    modes = args.modes.split(",")
    print("| held out | " + " | ".join(modes) + " |\n|---|" + "---:|" * len(modes))
    shown = []
    for label, held in ROWS:
        cells = []
        for mode in modes:
            ok = 0
            for i in range(args.n):
                # The same draws in every row: only the phrasing lists differ.
                rng = random.Random("probe_heldout/%s/%d" % (mode, i))
                # heldout=True: the fixed lists only, without the training-only prefixes and
                # question forms; the lists themselves are the row's mix.
                tasks._phr = lambda _heldout, held=held: mixed_phrasings(held)
                try:
                    s = tasks.fact(rng, args.chars, words, prose=prose, heldout=True, heldout_words=True,
                                   depth=(i + 0.5) / args.n, mode=mode)
                finally:
                    tasks._phr = REAL_PHR
                # as eval_engine.py: room for the whole answer
                good, out = probe.answer(s, tasks.max_new_tokens(s))
                ok += good
                if not good and sum(1 for x in shown if x[0] == (label, mode)) < args.show:
                    shown.append(((label, mode), "%s, %s: want %r, got %r\n  question: %r" % (
                        label, mode, s.answer.strip(), out.strip()[:120], s.prompt.rsplit("\n", 1)[-1])))
            cells.append("%d/%d" % (ok, args.n))
        print("| %s | %s |" % (label, " | ".join(cells)), flush=True)
    print()
    for _, line in shown:
        print("- " + line)


if __name__ == "__main__":
    main()
