#!/usr/bin/env python3
"""vt with a second chain, by where the second chain stands: the committed model through the
engine on one chain of 2 or 4 copies and a second chain of as many copies that is absent, wholly
before the first, wholly after it, or interleaved with it step by step (a1 b1 a2 b2 ...), in
trained phrasing (one assignment pair an episode, as tasks.vt_phrased without combo; the second
chain in the same pair, or in another pair) and in RULER's format (tasks.vt's sentences, whose
training never had a second chain). Held-out words and prose, 1K tokens, greedy, whole-answer scoring.

What it separates: a model that matches each copy's source name to the variable it wrote last
answers every layout; one that reads "the next assignment sentence" answers the layouts where
the chain's steps follow each other (absent, before, after) and fails the interleaved one.

  python3 tools/train_demo/probe_vt_layout.py --words .train/data/american-english --n 8
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval_engine as ee  # noqa: E402
import phrasings as ph  # noqa: E402
import tasks  # noqa: E402

LAYOUTS = ("absent", "before", "after", "interleaved")


def chain_depths(layout, hops, base):
    """Depths of the asked chain's and the second chain's hops + 1 sentences each."""
    n = hops + 1
    if layout == "interleaved":
        return [base + 0.08 * i for i in range(n)], [base + 0.04 + 0.08 * i for i in range(n)]
    first = [base + 0.3 + 0.04 * i for i in range(n)]
    if layout == "before":
        return first, [base + 0.04 * i for i in range(n)]
    if layout == "after":
        return first, [base + 0.6 + 0.04 * i for i in range(n)]
    return first, []


def name_maker(rng, style, words):
    """Variable names: "words" (a held-out word in capitals, as one of vt in phrasing's three
    styles) or "letters" (five random capitals, as RULER's)."""
    if style == "words":
        wl = words.pick(True)
        return lambda: rng.choice(wl).upper()
    return lambda: "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(5))


def phrased_sample(rng, layout, hops, same_pair, chars, words, prose, style="words"):
    names = tasks.distinct(rng, name_maker(rng, style, words), 2 * (hops + 1))
    chain, other = names[:hops + 1], names[hops + 1:]
    value, other_value = tasks.distinct(rng, lambda: tasks.rand_number(rng, 3, 6), 2)
    pairs = list(zip(ph.VT_ASSIGN_VALUE_TRAIN, ph.VT_ASSIGN_COPY_TRAIN))
    av, ac = rng.choice(pairs)
    bv, bc = (av, ac) if same_pair else rng.choice([p for p in pairs if p != (av, ac)])
    needles = [av.format(x=chain[0], v=value)] + [ac.format(x=chain[i + 1], y=chain[i]) for i in range(hops)]
    second = [bv.format(x=other[0], v=other_value)] + [bc.format(x=other[i + 1], y=other[i]) for i in range(hops)]
    d, dd = chain_depths(layout, hops, rng.uniform(0.0, 0.08))
    second = second if dd else []
    hay = tasks.insert_needles(prose.sample(rng, chars), needles + second, d + dd, tasks._PROSE_BOUNDARY)
    q = rng.choice(ph.VT_QUESTIONS_TRAIN).format(v=value)
    prompt = "Track the variable assignments in the text below.\n\n" + hay + "\n\n" + q
    return tasks.Sample("vt_phrased", prompt, " " + tasks.join_values(chain) + ".", chain, "all", d[:1]), other


def ruler_sample(rng, layout, hops, chars, words, prose, style="letters"):
    names = tasks.distinct(rng, name_maker(rng, style, words), 2 * (hops + 1))
    chain, other = names[:hops + 1], names[hops + 1:]
    value, other_value = (str(v) for v in tasks.distinct(rng, lambda: rng.randint(10000, 99999), 2))
    needles = ["VAR %s = %s." % (chain[0], value)] + ["VAR %s = VAR %s." % (chain[i + 1], chain[i]) for i in range(hops)]
    second = ["VAR %s = %s." % (other[0], other_value)]
    second += ["VAR %s = VAR %s." % (other[i + 1], other[i]) for i in range(hops)]
    d, dd = chain_depths(layout, hops, rng.uniform(0.0, 0.08))
    second = second if dd else []
    hay = tasks.insert_needles(prose.sample(rng, chars), needles + second, d + dd, tasks._PROSE_BOUNDARY)
    prompt = ("Memorize and track the chain(s) of variable assignment hidden in the following text."
              "\n\n%s\nQuestion: Find all variables that are assigned the value %s in the text above."
              " Answer: According to the chain(s) of variable assignment in the text above, %d "
              "variables are assigned the value %s, they are:" % (hay, value, len(chain), value))
    return tasks.Sample("vt", prompt, " " + " ".join(chain) + ".", chain, "all", d[:1]), other


def main():
    ap = ee.probe_parser(__doc__, 8)
    ap.add_argument("--show", type=int, default=2, help="misses shown per row")
    args = ap.parse_args()
    probe = ee.Probe(args)
    words, prose = probe.words, probe.prose
    # (format, second chain, its phrasing the same, names); the last two rows swap the names of
    # the two formats, to tell the wording from the names.
    rows = [("phrased", layout, True, "words") for layout in LAYOUTS] + [("phrased", "interleaved", False, "words")]
    rows += [("ruler", layout, True, "letters") for layout in ("absent", "after", "interleaved")]
    rows += [("phrased", "interleaved", True, "letters"), ("ruler", "interleaved", True, "words")]
    print("| format | names | second chain | its phrasing | copies | correct | misses naming the second chain |")
    print("|---|---|---|---|---:|---:|---:|")
    shown = []
    for fmt, layout, same_pair, style in rows:
        for hops in (2, 4):
            ok = crossed = 0
            for i in range(args.n):
                own = style == ("words" if fmt == "phrased" else "letters")  # the rows' first seeds unchanged
                rng = random.Random("probe_vt_layout/%s/%s/%d/%d/%d%s" % (fmt, layout, same_pair, hops, i,
                                                                          "" if own else "/" + style))
                if fmt == "phrased":
                    s, other = phrased_sample(rng, layout, hops, same_pair, args.chars, words, prose, style)
                else:
                    s, other = ruler_sample(rng, layout, hops, args.chars, words, prose, style)
                good, out = probe.answer(s)
                if good:
                    ok += 1
                    continue
                text = out.lower()
                crossed += any(o.lower() in text for o in other) if layout != "absent" else 0
                row = "%s/%s/%s/%s/%d:" % (fmt, style, layout, same_pair, hops)
                if sum(1 for line in shown if line.startswith(row)) < args.show:
                    shown.append("%s want %r, got %r" % (row, s.answer.strip(), out.strip()[:80]))
            pair = "-" if layout == "absent" else ("same" if same_pair else "other")
            pair = pair if fmt == "phrased" else "RULER"
            print("| %s | %s | %s | %s | %d | %d/%d | %d |" % (fmt, style, layout, pair, hops, ok, args.n, crossed),
                  flush=True)
    print()
    for line in shown:
        print("- " + line)


if __name__ == "__main__":
    main()
