"""Retrieval task generators shared by training (train.py), the PyTorch evaluation (eval_torch.py)
and the engine harness (eval_engine.py). Pure standard library, deterministic for a given seed.

A task builds one Sample: the prompt text (everything up to and including the answer's lead-in),
the answer text the model is trained on (" value." with one leading space), the expected values
for scoring, and how to score them. Haystacks are noise lines, prose, or other needles.

Public formats (trained and evaluated exactly as written here):
  passkey   InfiniteBench / Landmark pass key retrieval
  niah_*    RULER needle-in-a-haystack (single, multikey, multivalue, multiquery)
  vt        RULER variable tracking (one chain, no in-context example)
  kv        InfiniteBench kv_retrieval (JSON object of uuid pairs)
Templated families with many phrasings (phrasings.py), train and held-out splits:
  fact_single, fact_multikey, fact_multivalue, fact_multiquery, vt_phrased, kv_list
Training only, free-form wording (random filler around the slots; phrase_grammar.py):
  fact_free_single, fact_free_multivalue, fact_free_multiquery
"""

import json
import os
import re
import zlib

import phrase_grammar as pg
import phrasings as ph

_HELDOUT_LEXICON = pg.HELDOUT_LEXICON

NOISE_UNIT = ("The grass is green. The sky is blue. The sun is yellow. Here we go. "
              "There and back again.")
PASSKEY_HEADER = ("There is an important info hidden inside a lot of irrelevant text. Find it and "
                  "memorize it. I will quiz you about the important information there.")
RULER_TYPES = {"number": "numbers", "uuid": "uuids", "word": "words"}

_PROSE_BOUNDARY = re.compile(r"[.!?][\"')\]]?(?=\s)|\n")
_NOISE_BOUNDARY = re.compile(r"again\.(?= |$)")


class Sample:
    __slots__ = ("family", "prompt", "answer", "expected", "scoring", "depths", "parts", "followups")

    def __init__(self, family, prompt, answer, expected, scoring, depths=(), parts=(), followups=()):
        self.family = family
        self.prompt = prompt          # text given to the model (no BOS: the tokenizer adds it)
        self.answer = answer          # " value." : the continuation trained on / teacher-forced
        self.expected = expected      # values that must all appear in the output
        self.scoring = scoring        # "all" (RULER string_match_all) or "first_number"
        self.depths = list(depths)    # needle depths in [0, 1], for the depth x length grid
        self.parts = list(parts)      # templated texts (needles, question) for the held-out check
        # Training only: further (question, answer) pairs about the same context, asked after the
        # answer and its <|end_of_text|> (mix.Packer). Evaluation prompts have none.
        self.followups = list(followups)

    def to_json(self):
        return {k: getattr(self, k) for k in self.__slots__}


# ---------------------------------------------------------------------------------------------
# Resources: word lists and haystack text


def _stable_bucket(s, n):
    return zlib.crc32(s.encode()) % n


class Words:
    """The system word list (wamerican), split 90/10 by a hash of each word: keys and word
    values in training come from `train`, evaluation keys and values from `heldout`."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            words = [w.strip() for w in f]
        words = sorted({w for w in words if re.fullmatch(r"[a-z]{3,10}", w)})
        self.heldout = [w for w in words if _stable_bucket(w, 10) == 0]
        # Training never sees a held-out phrasing word (names, attributes... of phrasings.py).
        self.train = [w for w in words if _stable_bucket(w, 10) != 0 and w not in _HELDOUT_LEXICON]

    def pick(self, heldout):
        return self.heldout if heldout else self.train


class Prose:
    """A large text to cut haystacks from, at paragraph starts and sentence ends."""

    def __init__(self, text):
        self.text = text

    @classmethod
    def from_files(cls, paths):
        parts = []
        for p in paths:
            with open(p, encoding="utf-8") as f:
                parts.append(f.read())
        return cls("\n".join(parts))

    def sample(self, rng, n_chars):
        n_chars = max(1, n_chars)
        text = self.text
        if n_chars >= len(text) - 2:
            reps = n_chars // max(1, len(text)) + 1
            text = "\n".join([self.text] * (reps + 1))
        start = rng.randrange(0, len(text) - n_chars - 1)
        nl = text.find("\n", start)
        start = nl + 1 if 0 <= nl < start + 2000 else start
        end = min(len(text), start + n_chars)
        m = _PROSE_BOUNDARY.search(text, end)
        end = m.end() if m and m.end() - end < 400 else end
        return text[start:end].strip("\n")


def noise_hay(n_chars):
    n = max(1, round(n_chars / (len(NOISE_UNIT) + 1)))
    return " ".join([NOISE_UNIT] * n)


def insert_needles(hay, needles, depths, boundary):
    """Insert each needle sentence at the first boundary at or after depth * len(hay)."""
    spots = []
    for i, (needle, d) in enumerate(zip(needles, depths)):
        p = int(d * len(hay))
        if p <= 0:
            spots.append((0, i, needle))
            continue
        m = boundary.search(hay, p)
        spots.append((m.end() if m else len(hay), i, needle))
    # Insert from the back so earlier positions stay valid. Needles that share a position go in
    # last-given first, so that they stand in the order given (before session 31 the sort kept
    # only the position and such needles came out reversed: a vt chain's later steps before its
    # first whenever two fell between the same two sentences).
    for pos, _, needle in sorted(spots, reverse=True):
        if pos == 0:
            hay = needle + " " + hay
        elif hay[pos - 1] == "\n":
            hay = hay[:pos] + needle + "\n" + hay[pos:]
        else:
            hay = hay[:pos] + " " + needle + hay[pos:]
    return hay


# ---------------------------------------------------------------------------------------------
# Values


def rand_uuid(rng):
    h = "%032x" % rng.getrandbits(128)
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], "89ab"[int(h[16], 16) % 4], h[17:20], h[20:32])


def rand_number(rng, lo_digits=3, hi_digits=9):
    n = rng.randint(lo_digits, hi_digits)
    return str(rng.randint(10 ** (n - 1), 10 ** n - 1))


def rand_code(rng):
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    style = rng.randrange(5)
    if style == 0:
        return "".join(rng.choice(letters) for _ in range(2)) + "-" + str(rng.randint(1000, 9999))
    if style == 1:
        return "%04X-%04X" % (rng.getrandbits(16), rng.getrandbits(16))
    if style == 2:
        return "".join(rng.choice(letters) for _ in range(3)) + str(rng.randint(100, 999))
    if style == 3:
        return "%s%d%s" % (rng.choice(letters), rng.randint(10, 99), "".join(rng.choice(letters) for _ in range(3)))
    return "#" + str(rng.randint(10000, 99999))


def rand_value(rng, kind, words, hw):
    if kind == "number":
        return rand_number(rng)
    if kind == "uuid":
        return rand_uuid(rng)
    if kind == "code":
        return rand_code(rng)
    wl = words.pick(hw)
    if kind == "word":
        return rng.choice(wl)
    return rng.choice(wl) + "-" + rng.choice(wl)  # phrase


def distinct(rng, make, n):
    out, seen = [], set()
    while len(out) < n:
        v = make()
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def join_values(values):
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + " and " + values[-1]


def cap(s):
    return s[:1].upper() + s[1:]


# ---------------------------------------------------------------------------------------------
# Public formats


def passkey(rng, hay_chars, prose=None, depth=None, hay_kind="noise", **_):
    key = str(rng.randint(10000, 99999))
    d = rng.random() if depth is None else depth
    needle = "The pass key is %s. Remember it. %s is the pass key." % (key, key)
    if hay_kind == "noise" or prose is None:
        hay = insert_needles(noise_hay(hay_chars), [needle], [d], _NOISE_BOUNDARY)
    else:
        hay = insert_needles(prose.sample(rng, hay_chars), [needle], [d], _PROSE_BOUNDARY)
    prompt = "%s\n\n%s\n\nWhat is the pass key? The pass key is" % (PASSKEY_HEADER, hay)
    return Sample("passkey", prompt, " %s." % key, [key], "first_number", [d])


def reordered(rng, n):
    """A random order of range(n) other than the identity (n >= 2)."""
    order = list(range(n))
    while order == sorted(order):
        rng.shuffle(order)
    return order


def ruler_key(rng, words, hw, key_kind):
    if key_kind == "uuid":
        return rand_uuid(rng)
    wl = words.pick(hw)
    return "%s-%s" % (rng.choice(wl), rng.choice(wl))


def ruler_value(rng, kind, words, hw):
    if kind == "number":
        return str(rng.randint(10 ** 6, 10 ** 7 - 1))
    if kind == "uuid":
        return rand_uuid(rng)
    return rng.choice(words.pick(hw))


def niah(rng, hay_chars, words, prose=None, heldout=False, heldout_words=None, depth=None,
         value_kind="number", key_kind="word", hay_kind="prose", n_distract=0, n_values=1, n_queries=1,
         followups=0, requery=False, **_):
    """RULER niah_*: hay_kind "noise" | "prose" | "needles" (the haystack is other needles).
    Training only: requery=True with followups makes a multi-query episode's first follow-up the
    same question with its keys in another order (answered in that order), so that the list
    follows the question rather than the text."""
    hw = heldout if heldout_words is None else heldout_words
    t_pl = RULER_TYPES[value_kind]
    keys = distinct(rng, lambda: ruler_key(rng, words, hw, key_kind), n_queries + n_distract)
    query_keys, distract_keys = keys[:n_queries], keys[n_queries:]
    needles, answers = [], []
    pairs = []  # (key, value) of the needles with one value: what follow-up questions can ask about
    for k in query_keys:
        vals = distinct(rng, lambda: ruler_value(rng, value_kind, words, hw), n_values)
        answers.extend(vals)
        if n_values == 1 and n_queries > 1:
            pairs.append((k, vals[0]))
        needles.extend("One of the special magic %s for %s is: %s." % (t_pl, k, v) for v in vals)
    for k in distract_keys:
        v = ruler_value(rng, value_kind, words, hw)
        pairs.append((k, v))
        needles.append("One of the special magic %s for %s is: %s." % (t_pl, k, v))
    n_true = n_queries * n_values
    if depth is None:
        depths = [rng.random() for _ in needles]
    else:  # the target needles spread around the requested depth, distractors anywhere
        depths = [min(1.0, max(0.0, depth + 0.1 * (i - (n_true - 1) / 2))) for i in range(n_true)]
        depths += [rng.random() for _ in range(len(needles) - n_true)]
    if hay_kind == "needles":
        filler = []
        total = 0
        while total < hay_chars:
            k = ruler_key(rng, words, hw, key_kind)
            v = ruler_value(rng, value_kind, words, hw)
            pairs.append((k, v))
            s = "One of the special magic %s for %s is: %s." % (t_pl, k, v)
            filler.append(s)
            total += len(s) + 1
        hay = insert_needles(" ".join(filler), needles, depths, _PROSE_BOUNDARY)
    elif hay_kind == "noise" or prose is None:
        hay = insert_needles(noise_hay(hay_chars), needles, depths, _NOISE_BOUNDARY)
    else:
        hay = insert_needles(prose.sample(rng, hay_chars), needles, depths, _PROSE_BOUNDARY)
    # Multi-value answers come in the order the needles appear in the text.
    if n_values > 1:
        answers.sort(key=lambda v: hay.find(": " + v + "."))
    header = ("Some special magic %s are hidden within the following text. Make sure to memorize "
              "it. I will quiz you about the %s afterwards.\n" % (t_pl, t_pl))
    qk = join_values(query_keys)

    def single_question(k):
        t = value_kind
        return ("What is the special magic %s for %s mentioned in the provided text? The special magic "
                "%s for %s mentioned in the provided text is" % (t, k, t, k))

    def list_question(keys):
        k = join_values(keys)
        return ("What are all the special magic %s for %s mentioned in the provided text? The special "
                "magic %s for %s mentioned in the provided text are" % (t_pl, k, t_pl, k))

    q = single_question(qk) if n_values == 1 and n_queries == 1 else list_question(query_keys)
    prompt = header + hay + "\n" + q
    extra = []
    if followups and requery and n_queries > 1 and n_values == 1:
        order = reordered(rng, n_queries)
        extra = [("\n" + list_question([query_keys[i] for i in order]),
                  " " + join_values([answers[i] for i in order]) + ".")]
    if followups:
        # Single questions about the other needles (and each key of a multi-query); only keys
        # named by exactly one needle of the text have one answer.
        pool = [(k, v) for k, v in pairs if hay.count(" for %s is: " % k) == 1]
        rng.shuffle(pool)
        extra += [("\n" + single_question(k), " %s." % v) for k, v in pool[:followups - len(extra)]]
    return Sample("niah", prompt, " " + join_values(answers) + ".", answers, "all", depths[:n_true],
                  followups=extra)


def chain_depths(rng, lengths, layout, depth, spacing):
    """Depths of the sentences of several variable chains (training only; chain 0 is the asked
    one), each chain's list in chain order. layout "interleaved": the chains' steps alternate
    (a1 b1 a2 b2 ...); "before" / "after": the other chains wholly before / after chain 0;
    "scattered": every chain at its own random sorted depths. With depth the sentences of
    every layout but "scattered" sit spacing apart from about depth (as the evaluation clusters
    one chain), without it at sorted random depths."""
    if layout == "scattered":
        return [sorted(rng.random() for _ in range(n)) for n in lengths]
    if layout == "interleaved":
        perm = list(range(len(lengths)))
        rng.shuffle(perm)
        order = [c for j in range(max(lengths)) for c in perm if j < lengths[c]]
    elif layout in ("before", "after"):
        others = [c for c in range(1, len(lengths)) for _ in range(lengths[c])]
        order = others + [0] * lengths[0] if layout == "before" else [0] * lengths[0] + others
    else:
        raise ValueError("unknown chain layout " + layout)
    total = len(order)
    if depth is None:
        ds = sorted(rng.random() for _ in range(total))
    else:
        step = min(spacing, 0.9 / total)
        lo = max(0.0, min(depth, 1.0 - step * (total - 1)))
        ds = [lo + step * i for i in range(total)]
    out = [[] for _ in lengths]
    for c, d in zip(order, ds):
        out[c].append(d)
    return out


def vt(rng, hay_chars, n_hops=4, depth=None, prose=None, hay_kind="noise", n_chains=1, layout="scattered",
       followups=0, **_):
    """RULER variable tracking: one chain 'VAR A = 12345. VAR B = VAR A. ...' in noise.
    Training only: n_chains > 1 adds chains of as many copies, each from its own value, placed by
    layout (chain_depths), as RULER's own vt does with num_chains > 1; with followups, the other
    chains are asked after the answer, each by its value. n_chains=1 draws as before."""
    n_all = n_hops + 1
    names = distinct(rng, lambda: "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(5)),
                     n_all * n_chains)
    value = str(rng.randint(10000, 99999))
    needles = ["VAR %s = %s." % (names[0], value)]
    needles += ["VAR %s = VAR %s." % (names[i + 1], names[i]) for i in range(n_hops)]
    if n_chains == 1:
        if depth is None:
            depths = sorted(rng.random() for _ in needles)
        else:
            lo = max(0.0, min(depth, 1.0 - 0.05 * n_hops))
            depths = [lo + 0.05 * i for i in range(len(needles))]
        all_needles, all_depths, others = needles, depths, []
    else:
        values = [value] + [v for v in distinct(rng, lambda: str(rng.randint(10000, 99999)), n_chains + 1)
                            if v != value][:n_chains - 1]
        others = [(names[c * n_all:(c + 1) * n_all], values[c]) for c in range(1, n_chains)]
        per = chain_depths(rng, [n_all] * n_chains, layout, depth, 0.05)
        depths = per[0]
        all_needles, all_depths = list(needles), list(depths)
        for (chain, v), ds in zip(others, per[1:]):
            all_needles += ["VAR %s = %s." % (chain[0], v)]
            all_needles += ["VAR %s = VAR %s." % (chain[i + 1], chain[i]) for i in range(n_hops)]
            all_depths += ds
    if hay_kind == "noise" or prose is None:
        hay = insert_needles(noise_hay(hay_chars), all_needles, all_depths, _NOISE_BOUNDARY)
    else:
        hay = insert_needles(prose.sample(rng, hay_chars), all_needles, all_depths, _PROSE_BOUNDARY)
    ask = ("Question: Find all variables that are assigned the value %s in the text above."
           " Answer: According to the chain(s) of variable assignment in the text above, %d "
           "variables are assigned the value %s, they are:")
    prompt = ("Memorize and track the chain(s) of variable assignment hidden in the following text."
              "\n\n%s\n" % hay) + ask % (value, n_all, value)
    extra = []
    if followups and others:
        picked = rng.sample(others, min(followups, len(others)))
        extra = [("\n" + ask % (v, n_all, v), " " + " ".join(chain) + ".") for chain, v in picked]
    return Sample("vt", prompt, " " + " ".join(names[:n_all]) + ".", names[:n_all], "all", depths[:1],
                  followups=extra)


def kv(rng, hay_chars, depth=None, followups=0, **_):
    """InfiniteBench kv_retrieval: a JSON object of uuid -> uuid; the prompt asks for one key."""
    n = max(2, hay_chars // 84)  # one '"uuid": "uuid", ' pair is 80 characters
    pairs = [(rand_uuid(rng), rand_uuid(rng)) for _ in range(n)]
    i = min(n - 1, int((rng.random() if depth is None else depth) * n))
    body = json.dumps(dict(pairs), ensure_ascii=False)
    ask = "\n\nKey: \"%s\"\nThe value associated with the specified key is:"
    prompt = "Extract the value corresponding to the specified key in the JSON object below.\n\n" + body + ask % pairs[i][0]
    others = _followup_indices(rng, n, i, followups)
    return Sample("kv", prompt, " " + pairs[i][1] + ".", [pairs[i][1]], "all", [i / n],
                  followups=[(ask % pairs[j][0], " " + pairs[j][1] + ".") for j in others])


def _followup_indices(rng, n, i, count):
    """Up to count indices of range(n) other than i, in random order (none when count is 0: the
    evaluation's random draws stay as they were)."""
    if not count:
        return []
    return rng.sample([j for j in range(n) if j != i], min(count, n - 1))


# ---------------------------------------------------------------------------------------------
# Templated families


def _phr(heldout):
    if heldout:
        return dict(first=ph.FIRST_NAMES_HELDOUT, last=ph.LAST_NAMES_HELDOUT, adj=ph.ADJECTIVES_HELDOUT,
                    noun=ph.NOUNS_HELDOUT, place=ph.PLACES_HELDOUT, attr=ph.ATTRIBUTES_HELDOUT,
                    needle=ph.NEEDLES_HELDOUT, q=ph.QUESTIONS_HELDOUT, qmv=ph.QUESTIONS_MULTI_VALUE_HELDOUT,
                    qmq=ph.QUESTIONS_MULTI_QUERY_HELDOUT, instr=ph.INSTRUCTIONS_HELDOUT)
    return dict(first=ph.FIRST_NAMES_TRAIN, last=ph.LAST_NAMES_TRAIN, adj=ph.ADJECTIVES_TRAIN,
                noun=ph.NOUNS_TRAIN, place=ph.PLACES_TRAIN, attr=ph.ATTRIBUTES_TRAIN,
                needle=ph.NEEDLES_TRAIN, q=ph.QUESTIONS_TRAIN, qmv=ph.QUESTIONS_MULTI_VALUE_TRAIN,
                qmq=ph.QUESTIONS_MULTI_QUERY_TRAIN, instr=ph.INSTRUCTIONS_TRAIN)


def rand_subject(rng, p, words, hw):
    kind = rng.randrange(5)
    if kind <= 1:
        return "%s %s" % (rng.choice(p["first"]), rng.choice(p["last"]))
    if kind == 2:
        return "the %s %s" % (rng.choice(p["adj"]), rng.choice(p["noun"]))
    if kind == 3:
        return "the %s of %s" % (rng.choice(p["noun"]), rng.choice(p["place"]))
    return "project %s" % cap(rng.choice(words.pick(hw)))


def _haystack(rng, hay_chars, prose, needles, depths):
    if prose is None or rng.random() < 0.15:
        return insert_needles(noise_hay(hay_chars), needles, depths, _NOISE_BOUNDARY)
    return insert_needles(prose.sample(rng, hay_chars), needles, depths, _PROSE_BOUNDARY)


def fact(rng, hay_chars, words, prose=None, heldout=False, heldout_words=None, depth=None, mode="single",
         combo=False, followups=0, open_slots=0.0, question_order=0.0, mixed_needles=0.0, n_values=None,
         requery=False, **_):
    """Facts about subjects in one of many phrasings; mode single | multikey | multivalue |
    multiquery. Distractors share the attribute so only the subject tells them apart.
    combo=True (training only): subjects, attributes, needles and questions are composed by
    phrase_grammar instead of drawn from the fixed templates; one needle phrasing per episode.
    open_slots=p (training only, with combo): connectives made of random filler words with
    probability p (phrase_grammar._rel).
    Training only, multivalue and multiquery (with or without combo): question_order=p asks with
    probability p a question that names the subject(s) before the attribute
    (phrase_grammar.question_multi*_first); mixed_needles=p draws with probability p every
    needle of the episode in its own phrasing (_own_needle) instead of one for all.
    At 0 (the default) neither draws from rng: the episodes are those of the earlier calls.
    n_values (training only, multivalue): values per subject, instead of drawing 2-4.
    requery=True (training only, multiquery with followups): the first follow-up asks the list
    question again with its subjects in another order, answered in that order."""
    hw = heldout if heldout_words is None else heldout_words
    assert not (combo and (heldout or hw)), "the phrase grammar is for training only"
    assert not (heldout and (question_order or mixed_needles)), "list-question knobs are for training only"
    opn = (pg.free_filler_words(words), open_slots) if (combo and open_slots) else None
    p = _phr(heldout)
    attr, attr_pl, kinds = pg.attribute(rng, words) if combo else rng.choice(p["attr"])
    kind = rng.choice(kinds)
    n_subj = {"single": 1, "multikey": rng.randint(3, 6), "multivalue": 1, "multiquery": rng.randint(2, 4)}[mode]
    assert not (heldout and n_values), "n_values is for training only"
    n_vals = (n_values or rng.randint(2, 4)) if mode == "multivalue" else 1
    if combo:
        subjects = distinct(rng, lambda: pg.subject(rng, words), n_subj)
    else:
        subjects = distinct(rng, lambda: rand_subject(rng, p, words, hw), n_subj)
    values = distinct(rng, lambda: rand_value(rng, kind, words, hw), n_subj * n_vals)
    needles, owner = [], []
    # Short-circuit: no draw at mixed_needles=0, so the default episodes stay as they were.
    mixed = mixed_needles and mode in ("multivalue", "multiquery") and rng.random() < mixed_needles
    if mixed:
        for i, s in enumerate(subjects):
            for j in range(n_vals):
                v = values[i * n_vals + j]
                needles.append(_own_needle(rng, s, attr, v, opn))
                owner.append((s, v))
    elif combo:
        import random as _random
        nrng = _random.Random(rng.getrandbits(32))  # same phrasing draws for every needle of the episode
        state = nrng.getstate()
        for i, s in enumerate(subjects):
            for j in range(n_vals):
                v = values[i * n_vals + j]
                nrng.setstate(state)
                needles.append(pg.needle(nrng, s, attr, v, opn))
                owner.append((s, v))
    else:
        tmpl = rng.choice(p["needle"])
        prefix = ""
        if not heldout and rng.random() < 0.3:
            prefix = rng.choice(ph.NEEDLE_PREFIXES_TRAIN) + " "
        for i, s in enumerate(subjects):
            for j in range(n_vals):
                v = values[i * n_vals + j]
                needles.append(prefix + tmpl.format(s=s, S=cap(s), a=attr, v=v))
                owner.append((s, v))
    n_query = n_subj if mode == "multiquery" else 1
    if depth is None:
        depths = [rng.random() for _ in needles]
    else:
        depths = [min(1.0, max(0.0, depth + 0.08 * (i - (len(needles) - 1) / 2))) for i in range(len(needles))]
    if mode in ("multikey", "multiquery"):  # shuffle which needle sits where
        order = list(range(len(needles)))
        rng.shuffle(order)
        depths = [depths[i] for i in order]
    hay = _haystack(rng, hay_chars, prose, needles, depths)
    if combo:
        if mode in ("single", "multikey"):
            answers = [values[0]]
            q = pg.question(rng, subjects[0], attr, opn)
            target_depths = depths[:1]
        elif mode == "multivalue":
            answers = sorted(values, key=lambda v: hay.find(v))
            if question_order and rng.random() < question_order:
                q = pg.question_multivalue_first(rng, subjects[0], attr, attr_pl, opn)
            else:
                q = pg.question_multivalue(rng, subjects[0], attr, attr_pl, opn)
            target_depths = depths
        else:
            answers = values
            if question_order and rng.random() < question_order:
                q = pg.question_multiquery_first(rng, join_values(subjects), attr, attr_pl, opn)
            else:
                q = pg.question_multiquery(rng, join_values(subjects), attr, attr_pl, opn)
            target_depths = depths
        instr = rng.choice(pg.INSTRUCTIONS)
        prompt = (instr + "\n\n" if instr else "") + hay + "\n\n" + q
        ask_list = lambda lst: pg.question_multiquery(rng, lst, attr, attr_pl, opn)  # noqa: E731
        extra = _requery(rng, mode, subjects, values, followups, requery, ask_list)
        extra += _fact_followups(rng, mode, subjects, values, followups - len(extra),
                                 lambda s: pg.question(rng, s, attr, opn))
        return Sample("fact_%s" % mode, prompt, " " + join_values(answers) + ".", answers, "all", target_depths,
                      parts=needles + [q] + ([instr] if instr else []) + [f for f, _ in extra], followups=extra)
    if mode == "single" or mode == "multikey":
        q_subj = subjects[0]
        answers = [values[0]]
        if not heldout and rng.random() < 0.5:
            form = rng.choice(ph.QUESTION_FORMS_TRAIN) + " " + rng.choice(ph.LEADINS_TRAIN)
        else:
            form = rng.choice(p["q"])
        q = form.format(s=q_subj, S=cap(q_subj), a=attr)
        target_depths = depths[:1]
    elif mode == "multivalue":
        q_subj = subjects[0]
        answers = sorted(values, key=lambda v: hay.find(v))
        if question_order and rng.random() < question_order:  # the fixed lists have no such form
            q = pg.question_multivalue_first(rng, q_subj, attr, attr_pl)
        else:
            q = rng.choice(p["qmv"]).format(s=q_subj, S=cap(q_subj), a=attr, ap=attr_pl)
        target_depths = depths
    else:
        answers = values
        lst = join_values(subjects)
        if question_order and rng.random() < question_order:
            q = pg.question_multiquery_first(rng, lst, attr, attr_pl)
        else:
            q = rng.choice(p["qmq"]).format(s=lst, S=cap(lst), a=attr, ap=attr_pl)
        target_depths = depths
    instr = rng.choice(p["instr"])
    if not heldout:
        qp = rng.choice(ph.QUESTION_PREFIXES_TRAIN)
        q = (qp + " " + q) if qp else q
    prompt = (instr + "\n\n" if instr else "") + hay + "\n\n" + q

    def fixed_question(s):  # as the single question above, for a follow-up (training only)
        if rng.random() < 0.5:
            form = rng.choice(ph.QUESTION_FORMS_TRAIN) + " " + rng.choice(ph.LEADINS_TRAIN)
        else:
            form = rng.choice(p["q"])
        qp = rng.choice(ph.QUESTION_PREFIXES_TRAIN)
        return ((qp + " ") if qp else "") + form.format(s=s, S=cap(s), a=attr)

    def fixed_list_question(lst):  # as the list question above, for a follow-up (training only)
        qp = rng.choice(ph.QUESTION_PREFIXES_TRAIN)
        return ((qp + " ") if qp else "") + rng.choice(p["qmq"]).format(s=lst, S=cap(lst), a=attr, ap=attr_pl)

    assert not (followups and heldout), "follow-up questions are for training only"
    extra = _requery(rng, mode, subjects, values, followups, requery, fixed_list_question)
    extra += _fact_followups(rng, mode, subjects, values, followups - len(extra), fixed_question)
    family = "fact_%s%s" % (mode, "_heldout" if heldout else "")
    return Sample(family, prompt, " " + join_values(answers) + ".", answers, "all", target_depths,
                  parts=needles + [q] + ([instr] if instr else []) + [f for f, _ in extra], followups=extra)


def _own_needle(rng, s, a, v, opn):
    """One needle in a phrasing drawn for it alone (fact with mixed_needles, training only): as
    often as episodes are composed (mix._combo, 0.7) from phrase_grammar, else a fixed training
    template, with a training prefix as often as fixed episodes have one. With every value of a
    list answer in a needle of its own phrasing, the model has to find each by its subject and
    attribute; with one phrasing per episode it could also follow the template (the committed
    model's held-out multi-value answers leave values out or repeat one, docs/demo-model.md)."""
    if rng.random() < 0.7:
        return pg.needle(rng, s, a, v, opn)
    prefix = (rng.choice(ph.NEEDLE_PREFIXES_TRAIN) + " ") if rng.random() < 0.3 else ""
    return prefix + rng.choice(ph.NEEDLES_TRAIN).format(s=s, S=cap(s), a=a, v=v)


def _requery(rng, mode, subjects, values, count, requery, ask_list):
    """The multi-query question again with its subjects in another order (training only), or
    nothing: no draw unless requery, count and a multi-query episode."""
    if not (requery and count and mode == "multiquery"):
        return []
    order = reordered(rng, len(subjects))
    return [("\n\n" + ask_list(join_values([subjects[i] for i in order])),
             " " + join_values([values[i] for i in order]) + ".")]


def _fact_followups(rng, mode, subjects, values, count, ask):
    """Follow-up questions of a fact episode, one subject each: in multikey the distractors'
    subjects, in multiquery any of the queried subjects (one value per subject in both)."""
    if not count or mode not in ("multikey", "multiquery"):
        return []
    first = 1 if mode == "multikey" else 0
    idx = rng.sample(range(first, len(subjects)), min(count, len(subjects) - first))
    return [("\n\n" + ask(subjects[i]), " %s." % values[i]) for i in idx]


FREE_VALUE_KINDS = ("number", "code", "uuid")  # a word value would look like the filler around it


def _apart(make, n, key=lambda x: x, taken=()):
    """n draws of make() whose key strings are distinct and none holds another, nor one of taken
    (case-insensitive): "PIN" beside "bank PIN" would let the filler turn one into the other."""
    out, keys = [], [t.lower() for t in taken]
    while len(out) < n:
        x = make()
        k = key(x).lower()
        if all(k not in y and y not in k for y in keys):
            out.append(x)
            keys.append(k)
    return out


def fact_free(rng, hay_chars, words, prose=None, depth=None, mode="single", heldout=False, heldout_words=None, **_):
    """Facts in free-form wording (training only): random filler around the slots subject,
    attribute and value, so the only signal is the needle that holds both the asked subject and
    the asked attribute. mode single | multivalue | multiquery; distractor needles share either
    the attribute (another subject) or the subject (another attribute)."""
    return _fact_free(rng, hay_chars, words, prose, depth, mode, heldout or bool(heldout_words))[0]


def _fact_free(rng, hay_chars, words, prose, depth, mode, heldout):
    """fact_free's Sample and what the self-check needs: the slots of every needle and the frame."""
    assert not heldout, "fact_free is for training only (its words and fillers are the training split)"
    n_subj = rng.randint(2, 4) if mode == "multiquery" else 1
    n_vals = rng.randint(2, 4) if mode == "multivalue" else 1
    n_distract = rng.randint(0, 5) if mode == "single" else rng.randint(0, 2)
    kinds = [rng.choice(("other_subject", "other_attribute")) for _ in range(n_distract)]
    n_other_s = kinds.count("other_subject")
    attrs = _apart(lambda: pg.attribute(rng, words), 1 + len(kinds) - n_other_s, key=lambda t: t[0])
    attr, attr_pl, attr_kinds = attrs[0]
    subjects = _apart(lambda: pg.subject(rng, words), n_subj + n_other_s, taken=[a[0] for a in attrs])
    kind = rng.choice([k for k in attr_kinds if k in FREE_VALUE_KINDS] or FREE_VALUE_KINDS)
    # (subject, attribute, role) of every needle: the targets first, then the distractors
    slots = [(s, attr, "target") for s in subjects[:n_subj] for _ in range(n_vals)]
    other_s, other_a = iter(subjects[n_subj:]), iter(attrs[1:])
    for k in kinds:
        if k == "other_subject":
            slots.append((next(other_s), attr, k))
        else:
            slots.append((rng.choice(subjects[:n_subj]), next(other_a)[0], k))
    values = distinct(rng, lambda: rand_value(rng, kind, words, False), len(slots))
    pool = pg.free_filler_words(words)
    avoid = {w for x in subjects + [a for t in attrs for a in t[:2]] for w in re.findall(r"[a-z]+", x.lower())}
    frame = pg.free_needle_frame(rng, pool, avoid)  # one needle shape per episode
    needles = [pg.free_render(frame, s, a, v) for (s, a, _), v in zip(slots, values)]
    n_true = n_subj * n_vals
    if depth is None:
        depths = [rng.random() for _ in needles]
    else:  # all needles, distractors too, around the requested depth
        depths = [min(1.0, max(0.0, depth + 0.08 * (i - (len(needles) - 1) / 2))) for i in range(len(needles))]
    rng.shuffle(depths)  # which needle sits where
    hay = _haystack(rng, hay_chars, prose, needles, depths)
    if mode == "multivalue":  # in the order the needles appear in the text
        answers = [v for _, v in sorted(zip(needles[:n_true], values[:n_true]), key=lambda t: hay.find(t[0]))]
    else:
        answers = values[:n_true]
    plural = mode != "single"
    q = pg.free_render(pg.free_question_frame(rng, pool, avoid, plural=plural),
                       join_values(subjects[:n_subj]), attr_pl if plural else attr)
    instr = rng.choice(pg.INSTRUCTIONS)
    prompt = (instr + "\n\n" if instr else "") + hay + "\n\n" + q
    sample = Sample("fact_free_%s" % mode, prompt, " " + join_values(answers) + ".", answers, "all",
                    depths[:n_true], parts=needles + [q] + ([instr] if instr else []))
    info = dict(frame=frame, slots=slots, values=values, needles=needles, question=q, hay=hay,
                subjects=subjects[:n_subj], attr=attr, attr_q=attr_pl if plural else attr)
    return sample, info


def check_fact_free(n, words, prose=None, seed=3):
    """Self-check of fact_free (no torch): n episodes per mode. Fails on a target needle without
    its subject, attribute and value, an answer value missing from the prompt, a distractor that
    holds both the asked subject and attribute, a multi-value answer out of text order, a mode
    without both distractor kinds or without all six slot orders, or any held-out template or
    name in its needles and questions (phrase_grammar.heldout_hits). Returns counts per mode.
    Use n >= 200: with fewer episodes a slot order or a distractor kind may not come up at all."""
    import random
    rng = random.Random(seed)
    stats = {}
    for mode in ("single", "multivalue", "multiquery"):
        st = stats[mode] = {"episodes": n, "other_subject": 0, "other_attribute": 0, "both_kinds": 0,
                            "orders": set()}
        for i in range(n):
            hay_chars = int(rng.uniform(200, 4000))
            s, info = _fact_free(rng, hay_chars, words, prose if i % 2 else None,
                                 rng.random() if i % 3 == 0 else None, mode, False)
            fr = info["frame"]
            assert all(fr.count("{%s}" % c) == 1 for c in "sav"), fr
            st["orders"].add("".join(sorted("sav", key=lambda c: fr.index("{%s}" % c))))
            roles = [r for _, _, r in info["slots"]]
            for k in ("other_subject", "other_attribute"):
                st[k] += roles.count(k)
            st["both_kinds"] += "other_subject" in roles and "other_attribute" in roles
            assert s.family == "fact_free_" + mode and s.scoring == "all"
            assert s.answer == " " + join_values(s.expected) + "." and s.prompt.endswith(info["question"])
            q = info["question"]
            assert info["attr_q"] in q and all(x in q for x in info["subjects"]), q
            for (subj, attr, role), v, ndl in zip(info["slots"], info["values"], info["needles"]):
                assert subj in ndl and attr in ndl and v in ndl and ndl.endswith("."), ndl
                assert info["hay"].count(ndl) == 1 and ndl in s.prompt, ndl
                if role != "target":  # only the target needles hold an asked subject and the attribute
                    assert not (info["attr"] in ndl and any(x in ndl for x in info["subjects"])), (role, ndl)
            for v in s.expected:
                assert v in s.prompt, v
            tv = [v for (_, _, r), v in zip(info["slots"], info["values"]) if r == "target"]
            tn = [x for (_, _, r), x in zip(info["slots"], info["needles"]) if r == "target"]
            if mode == "multivalue":
                pos = [s.prompt.find(tn[tv.index(v)]) for v in s.expected]
                assert pos == sorted(pos) and sorted(s.expected) == sorted(tv), (pos, s.expected)
            else:
                assert s.expected == tv
            assert len(s.depths) == len(tv)
            for text in s.parts:
                hits = pg.heldout_hits(text)
                assert not hits, (text, hits)
                for w in re.findall(r"[A-Za-z]+", text):
                    assert w.lower() not in pg.HELDOUT_NAMES, (text, w)
        assert st["other_subject"] and st["other_attribute"] and st["both_kinds"], (mode, st)
        assert len(st["orders"]) == 6, (mode, st["orders"])
        st["orders"] = len(st["orders"])
    return stats


def vt_phrased(rng, hay_chars, words, prose=None, heldout=False, heldout_words=None, depth=None, combo=False,
               followups=0, hops=None, distractor=True, open_slots=0.0, open_vt=False, n_chains=2,
               layout="scattered", **_):
    """A variable chain in varied phrasing: one value, then 2-5 copies, plus a distractor chain.
    combo=True (training only): assignment and question phrasings from phrase_grammar.
    Training only: hops=n copies instead of 2-5 (a curriculum can start short), distractor=False
    leaves the second chain out, open_vt=True with open_slots=p (and combo) makes each of the
    episode's two assignment phrasings an open one (phrase_grammar.vt_open_template) with
    probability p (open_vt keeps the second recipe's vt as it was under --open-slots).
    Training only: n_chains > 2 adds more distractor chains in the same phrasing, each from its
    own value; layout other than "scattered" places the chains as chain_depths does (the asked
    chain's steps alternating with, or wholly after or before, the others'). With follow-ups,
    every other chain is asked by its value. The defaults draw as before."""
    assert not heldout or (hops is None and distractor and not open_slots and n_chains == 2 and layout == "scattered"), \
        "curriculum knobs are for training only"
    hw = heldout if heldout_words is None else heldout_words
    assert not (combo and (heldout or hw)), "the phrase grammar is for training only"
    a_val = ph.VT_ASSIGN_VALUE_HELDOUT if heldout else ph.VT_ASSIGN_VALUE_TRAIN
    a_cpy = ph.VT_ASSIGN_COPY_HELDOUT if heldout else ph.VT_ASSIGN_COPY_TRAIN
    qs = ph.VT_QUESTIONS_HELDOUT if heldout else ph.VT_QUESTIONS_TRAIN
    wl = words.pick(hw)
    style = rng.randrange(3)

    def name():
        if style == 0:
            return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 6)))
        if style == 1:
            return rng.choice(wl) + "_" + str(rng.randint(1, 99))
        return rng.choice(wl).upper()

    hops = rng.randint(2, 5) if hops is None else hops
    n_all = hops + 1
    names = distinct(rng, name, max(2, n_chains) * n_all)
    chain, other = names[:n_all], names[n_all:2 * n_all]
    values = distinct(rng, lambda: rand_number(rng, 3, 6), max(2, n_chains))
    value, other_value = values[:2]
    more = [(names[c * n_all:(c + 1) * n_all], values[c]) for c in range(2, n_chains)] if distractor else []
    if combo:
        opn = (pg.free_filler_words(words), open_slots) if (open_vt and open_slots) else None
        av = pg.vt_open_template(rng, opn, False) if opn and rng.random() < open_slots else rng.choice(pg.VT_VALUE)
        ac = pg.vt_open_template(rng, opn, True) if opn and rng.random() < open_slots else rng.choice(pg.VT_COPY)
        needles = [pg.vt_step(rng, av, 0, x=chain[0], v=value)]
        needles += [pg.vt_step(rng, ac, i + 1, x=chain[i + 1], y=chain[i]) for i in range(hops)]
        distract = [pg.vt_step(rng, av, 0, x=other[0], v=other_value)]
        distract += [pg.vt_step(rng, ac, i + 1, x=other[i + 1], y=other[i]) for i in range(hops)]
        for c, v in more:
            distract += [pg.vt_step(rng, av, 0, x=c[0], v=v)]
            distract += [pg.vt_step(rng, ac, i + 1, x=c[i + 1], y=c[i]) for i in range(hops)]
    else:
        av, ac = rng.choice(a_val), rng.choice(a_cpy)
        needles = [av.format(x=chain[0], v=value)] + [ac.format(x=chain[i + 1], y=chain[i]) for i in range(hops)]
        distract = [av.format(x=other[0], v=other_value)] + [ac.format(x=other[i + 1], y=other[i]) for i in range(hops)]
        for c, v in more:
            distract += [av.format(x=c[0], v=v)] + [ac.format(x=c[i + 1], y=c[i]) for i in range(hops)]
    if not distractor:
        distract = []
    if layout == "scattered" or not distract:
        if depth is None:
            d = sorted(rng.random() for _ in needles)
        else:
            lo = max(0.0, min(depth, 1.0 - 0.04 * hops))
            d = [lo + 0.04 * i for i in range(len(needles))]
        dd = sorted(rng.random() for _ in distract)
    else:
        per = chain_depths(rng, [n_all] * (1 + len(distract) // n_all), layout, depth, 0.04)
        d, dd = per[0], [x for ds in per[1:] for x in ds]
    hay = _haystack(rng, hay_chars, prose, needles + distract, d + dd)
    q = pg.vt_question(rng, value) if combo else rng.choice(qs).format(v=value)
    prompt = "Track the variable assignments in the text below.\n\n" + hay + "\n\n" + q
    fam = "vt_phrased" + ("_heldout" if heldout else "")
    extra = []
    if followups and distract:  # the other chains, each asked by its own value
        assert not heldout, "follow-up questions are for training only"
        asked = [(other, other_value)] + more
        if more:
            asked = rng.sample(asked, min(followups, len(asked)))
        for c, v in asked:
            q2 = pg.vt_question(rng, v) if combo else rng.choice(qs).format(v=v)
            extra.append(("\n\n" + q2, " " + join_values(c) + "."))
    return Sample(fam, prompt, " " + join_values(chain) + ".", chain, "all", d[:1],
                  parts=needles + distract + [q] + [f for f, _ in extra], followups=extra)


def kv_list(rng, hay_chars, words, heldout=False, heldout_words=None, depth=None, combo=False, followups=0,
            open_slots=0.0, question_order=0.0, **_):
    """A list of key/value lines in one of many formats; ask for one key's value.
    combo=True (training only): line format and question from phrase_grammar; open_slots=p: now and
    then a separator made of marks or a filler word, and a question in filler words (phrase_grammar).
    question_order=p (training only, with or without combo): each question (follow-ups too) names
    the key before it asks with probability p (phrase_grammar.kv_question_first); 0 draws nothing."""
    hw = heldout if heldout_words is None else heldout_words
    assert not (combo and (heldout or hw)), "the phrase grammar is for training only"
    assert not (heldout and question_order), "key-first questions are for training only"
    lines = ph.KV_LINES_HELDOUT if heldout else ph.KV_LINES_TRAIN
    qs = ph.KV_QUESTIONS_HELDOUT if heldout else ph.KV_QUESTIONS_TRAIN
    opn = (pg.free_filler_words(words), open_slots) if (combo and open_slots) else None
    fmt = pg.kv_line_format(rng, opn) if combo else rng.choice(lines)
    key_kind, val_kind = rng.choice(["word", "code", "uuid"]), rng.choice(["number", "word", "uuid", "code"])
    wl = words.pick(hw)

    def key():
        if key_kind == "word":
            return rng.choice(wl) + "-" + rng.choice(wl)
        return rand_code(rng) if key_kind == "code" else rand_uuid(rng)

    probe = fmt.replace("{i}", "1").format(k=key(), v=rand_value(rng, val_kind, words, hw))
    n = max(2, hay_chars // (len(probe) + 1))
    keys = distinct(rng, key, n)
    vals = [rand_value(rng, val_kind, words, hw) for _ in range(n)]
    i = min(n - 1, int((rng.random() if depth is None else depth) * n))
    lines_out = [fmt.replace("{i}", str(j + 1)).format(k=k, v=v) for j, (k, v) in enumerate(zip(keys, vals))]
    body = "\n".join(lines_out)

    def ask(k):
        if question_order and rng.random() < question_order:
            return pg.kv_question_first(rng, k, opn)
        return pg.kv_question(rng, k, opn) if combo else rng.choice(qs).format(k=k)

    q = ask(keys[i])
    prompt = "Here is a list of keys and values.\n\n" + body + "\n\n" + q
    fam = "kv_list" + ("_heldout" if heldout else "")
    assert not (followups and heldout), "follow-up questions are for training only"
    extra = [("\n\n" + ask(keys[j]), " " + vals[j] + ".") for j in _followup_indices(rng, n, i, followups)]
    return Sample(fam, prompt, " " + vals[i] + ".", [vals[i]], "all", [i / n],
                  parts=lines_out[:3] + [q] + [f for f, _ in extra], followups=extra)


# ---------------------------------------------------------------------------------------------
# Evaluation suite: which families, with which settings. Shared by eval_torch and eval_engine.

EVAL_FAMILIES = [
    # name, builder, kwargs, uses held-out phrasing
    ("passkey", passkey, {}, False),
    ("niah_single_1", niah, dict(hay_kind="noise", value_kind="number"), False),
    ("niah_single_2", niah, dict(hay_kind="prose", value_kind="number"), False),
    ("niah_single_3", niah, dict(hay_kind="prose", value_kind="uuid"), False),
    ("niah_multikey_1", niah, dict(hay_kind="prose", value_kind="number", n_distract=3), False),
    ("niah_multikey_2", niah, dict(hay_kind="needles", value_kind="number"), False),
    ("niah_multikey_3", niah, dict(hay_kind="needles", value_kind="uuid", key_kind="uuid"), False),
    ("niah_multivalue", niah, dict(hay_kind="prose", value_kind="number", n_values=4), False),
    ("niah_multiquery", niah, dict(hay_kind="prose", value_kind="number", n_queries=4), False),
    ("vt", vt, {}, False),
    ("kv", kv, {}, False),
    ("fact_single", fact, dict(mode="single"), False),
    ("fact_multikey", fact, dict(mode="multikey"), False),
    ("fact_multivalue", fact, dict(mode="multivalue"), False),
    ("fact_multiquery", fact, dict(mode="multiquery"), False),
    ("vt_phrased", vt_phrased, {}, False),
    ("kv_list", kv_list, {}, False),
    ("fact_single_heldout", fact, dict(mode="single"), True),
    ("fact_multikey_heldout", fact, dict(mode="multikey"), True),
    ("fact_multivalue_heldout", fact, dict(mode="multivalue"), True),
    ("fact_multiquery_heldout", fact, dict(mode="multiquery"), True),
    ("vt_phrased_heldout", vt_phrased, {}, True),
    ("kv_list_heldout", kv_list, {}, True),
]
EVAL_LENGTHS = [1024, 2048, 4096, 8192, 16384]
EVAL_SEED = 20261122


def make_eval_sample(name, target_tokens, index, n_samples, words, prose, count_tokens,
                     seed=EVAL_SEED):
    """One evaluation prompt of about target_tokens tokens (prompt + answer), deterministic.

    Evaluation uses held-out prose as haystack and held-out key/value words for every family;
    needle depths sweep 0..1 over the samples of a cell. count_tokens(text) -> int calibrates
    the haystack size (two passes); the same tokenizer gives the same prompts anywhere.
    """
    import random
    builder, kwargs, heldout = None, None, None
    for n, b, kw, h in EVAL_FAMILIES:
        if n == name:
            builder, kwargs, heldout = b, kw, h
    if builder is None:
        raise KeyError("unknown eval family " + name)
    depth = (index + 0.5) / n_samples
    chars = int(target_tokens * 3.6)
    sample = None
    for _ in range(3):
        rng = random.Random("%d/%s/%d/%d" % (seed, name, target_tokens, index))
        sample = builder(rng, max(200, chars), words=words, prose=prose, heldout=heldout,
                         heldout_words=True, depth=depth, **kwargs)
        n = count_tokens(sample.prompt + sample.answer)
        if abs(n - target_tokens) <= 0.02 * target_tokens:
            break
        chars = max(200, int(chars * target_tokens / n))
    sample.family = name
    return sample


def check_chain_order(n=200, seed=1, words_path=None):
    """Generate n episodes of RULER vt and of vt in phrasing (training knobs: chains, layouts,
    copies, clustered and scattered; and the evaluation's) and fail unless every chain's
    sentences stand in the text in chain order, value first; short haystacks, where many
    sentences share a boundary. Returns the number of chains checked."""
    import random
    rng = random.Random(seed)
    words = Words(words_path or os.environ.get("LTRI_WORDS", "/usr/share/dict/american-english"))
    checked = 0
    for i in range(n):
        layout = ("scattered", "interleaved", "before", "after")[i % 4]
        depth = None if i % 3 == 0 else rng.random()
        hops = 1 + i % 5
        s = vt(rng, 300 + 40 * (i % 7), n_hops=hops, depth=depth, n_chains=1 + i % 4, layout=layout, followups=3)
        chains = [s.expected] + [f[1].strip(" .").split(" ") for f in s.followups]
        for c in chains:
            pos = [s.prompt.find("VAR %s = " % x) for x in c]
            assert -1 not in pos and pos == sorted(pos), "vt chain out of order: %r in %r" % (c, s.prompt)
            checked += 1
        s = vt_phrased(rng, 200 + 40 * (i % 7), words, depth=depth, hops=hops, n_chains=2 + i % 2, layout=layout,
                       combo=i % 2 == 0)
        steps = s.parts[:hops + 1]
        pos = [s.prompt.find(x) for x in steps]
        assert -1 not in pos and pos == sorted(pos), "vt_phrased chain out of order: %r in %r" % (steps, s.prompt)
        checked += 1
    return checked


def max_new_tokens(sample):
    """Tokens to generate when evaluating a sample: enough for the answer with some slack. One
    token a character at most: the demo tokenizer takes about 1.2 characters a token for uuids
    (3 uuids, 117 characters: 97 tokens), so the former len / 1.5 + 8, at most 96, cut answers
    of two or more uuids short."""
    return min(192, len(sample.answer) + 8)


def repo_root():
    return os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def heldout_prose_paths():
    d = os.path.join(repo_root(), "data", "heldout")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".txt"))
