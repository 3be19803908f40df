#!/usr/bin/env python3
"""vt in phrasing, taken apart: the committed model through the engine on one chain of 1, 2 or 4
copies, with and without the second (distractor) chain. The evaluation family (tasks.vt_phrased
as make_eval_sample draws it) always has 2-5 copies and the second chain; this shows which of the
two the model fails on. Trained phrasings, held-out words, held-out prose, greedy, whole-answer scoring.
Then RULER vt (tasks.vt, trained with 1-5 copies) as trained, whose answer prefix states how many
variables hold the value, and with that count left out of the prefix.

  python3 tools/train_demo/probe_vt.py --words .train/data/american-english --n 8
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval_engine as ee  # noqa: E402
import tasks  # noqa: E402


def main():
    ap = ee.probe_parser(__doc__, 8)
    ap.add_argument("--show", type=int, default=3, help="outputs shown per row")
    args = ap.parse_args()
    probe = ee.Probe(args)
    words, prose = probe.words, probe.prose
    print("| second chain | copies | correct |\n|---|---:|---:|")
    shown = []
    for distractor in (False, True):
        for hops in (1, 2, 4):
            ok = 0
            for i in range(args.n):
                rng = random.Random("probe_vt/%d/%d/%d" % (hops, distractor, i))
                s = tasks.vt_phrased(rng, args.chars, words, prose=prose, heldout=False, heldout_words=True,
                                     depth=(i + 0.5) / args.n, hops=hops, distractor=distractor)
                good, out = probe.answer(s)
                ok += good
                if i < args.show:
                    shown.append("%s, %d copies: want %r, got %r" % (
                        "with" if distractor else "without", hops, s.answer.strip(), out.strip()[:70]))
            print("| %s | %d | %d/%d |" % ("yes" if distractor else "no", hops, ok, args.n), flush=True)
    print("\n| RULER vt | copies | correct |\n|---|---:|---:|")
    for stated in (True, False):
        for hops in (1, 2, 4):
            ok = 0
            for i in range(args.n):
                rng = random.Random("probe_vt/ruler/%d/%d" % (hops, i))
                s = tasks.vt(rng, args.chars, n_hops=hops, depth=(i + 0.5) / args.n, prose=prose, hay_kind="prose")
                if not stated:  # "..., 3 variables are assigned the value V, they are:" without the count
                    head, _, _ = s.prompt.rpartition(", %d variables are assigned" % (hops + 1))
                    value = s.prompt.rsplit("assigned the value ", 1)[1].split(",")[0]
                    s.prompt = head + ", the variables assigned the value %s are:" % value
                good, out = probe.answer(s)
                ok += good
                if i < 1:
                    shown.append("RULER, count %s, %d copies: want %r, got %r" % (
                        "stated" if stated else "left out", hops, s.answer.strip(), out.strip()[:70]))
            print("| count %s | %d | %d/%d |" % ("stated" if stated else "left out", hops, ok, args.n), flush=True)
    print()
    for line in shown:
        print("- " + line)


if __name__ == "__main__":
    main()
