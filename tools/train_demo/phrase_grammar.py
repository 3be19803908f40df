"""Combinatorial TRAINING phrasings: needles, questions and answer lead-ins composed from parts.

The fixed templates of phrasings.py are few (20-30 per slot); a small model trained on them
learns the templates, not the skill, and phrasings held out of training stay near chance. Here
every needle, question and lead-in is assembled from independent parts (subject kinds x relation
words x verb phrases x frames x prefixes x value kinds), which gives tens of thousands of
distinct surface forms per slot.

Held-out guarantee (checked by check_no_heldout, run by train.py before training and by
`python3 tools/train_demo/phrase_grammar.py`):
  - no part contains a BANNED fragment (the distinctive words of the held-out templates),
  - subject and attribute pools exclude every held-out name, adjective, noun, place and
    attribute of phrasings.py (whole words, case-insensitive),
  - no generated needle or question matches any held-out template of phrasings.py as a regex
    (placeholders -> any text), over many thousand generated samples,
  - the random filler of the free-form facts (tasks.fact_free) never draws a held-out name,
    attribute or template word, and no BANNED fragment can be made of it.
Only the training split uses this module; the evaluation's held-out families use the held-out
lists of phrasings.py alone.
"""

import re

import phrasings as ph

# Distinctive words of the held-out templates (phrasings.*_HELDOUT): no grammar part may contain
# one, so held-out wording is new to the model, not only its exact sentence shape.
BANNED = ["keep this safe", "goes by", "registry", "notes show", "listed under", "memorize this",
          "issued", "on file", "reads", "remind", "of course", "goes with", "from the passage",
          "retriev", "recalled", "tied to", "enumerate", "certainly", "respectively", "one each",
          "stored in:", "reached", "after all assignments", "register", "loaded", "paired",
          "read off", "a question about the text below", "what does the", "it says",
          "identify"]


def _heldout_lexicon():
    words = set()
    for lst in (ph.FIRST_NAMES_HELDOUT, ph.LAST_NAMES_HELDOUT, ph.ADJECTIVES_HELDOUT, ph.NOUNS_HELDOUT,
                ph.PLACES_HELDOUT):
        words.update(w.lower() for w in lst)
    for a, ap, _ in ph.ATTRIBUTES_HELDOUT:
        words.update(a.lower().split())
    return words


HELDOUT_LEXICON = _heldout_lexicon()
# Held-out attribute heads that training keeps (generic nouns), all other held-out attribute
# words (vault, launch, membership, security, confirmation, parcel) are banned from training.
_GENERIC_HEADS = {"code", "number", "token", "word", "id", "combination"}
HELDOUT_NAMES = HELDOUT_LEXICON - _GENERIC_HEADS


def _clean(parts):
    """Parts taken over from phrasings.py's fixed training lists, less any with a banned fragment."""
    return [p for p in parts if not any(b in p.lower() for b in BANNED)]

# ---------------------------------------------------------------------------------------------
# Parts

TITLES = ["Dr.", "Mr.", "Mrs.", "Ms.", "Captain", "Professor", "Agent", "Sergeant", "Judge", "Uncle",
          "Aunt", "Chef", "Coach", "Officer", "Sister", "Brother", "Lady", "Sir", "Detective", "Nurse"]
ORG_KINDS = ["project", "operation", "team", "unit", "account", "server", "station", "file", "ship",
             "company", "club", "department", "camp", "mission", "lab", "desk", "branch", "ward",
             "shop", "robot", "satellite", "channel", "district", "course", "band", "crew"]
PLACE_NOUNS = ["village", "town", "city", "county", "valley", "island", "kingdom", "harbor", "province"]

ATTR_MODIFIERS = ["gate", "door", "alarm", "backup", "master", "admin", "guest", "entry", "office",
                  "garage", "locker", "bank", "train", "flight", "hotel", "library", "gym", "storage",
                  "mailbox", "printer", "network", "cabinet", "drawer", "bike", "car", "boat", "studio",
                  "server", "billing", "shipping", "warehouse", "attic", "laptop", "radio", "museum",
                  "archive", "lab", "kitchen", "harbor", "bridge", "tower", "locker room", "project",
                  "unlock", "emergency", "reset", "login", "secret", "private", "personal", "daily",
                  "weekly", "winning", "starting", "final", "current", "old", "new", "spare", "main"]
# head, plural, value kinds (tasks.rand_value kinds)
ATTR_HEADS = [("code", "codes", ("code", "number")), ("number", "numbers", ("number",)),
              ("PIN", "PINs", ("number",)), ("password", "passwords", ("word", "phrase", "code")),
              ("key", "keys", ("uuid", "code")), ("id", "ids", ("uuid", "code", "number")),
              ("token", "tokens", ("uuid", "code")), ("word", "words", ("word",)),
              ("phrase", "phrases", ("phrase",)), ("name", "names", ("word",)), ("tag", "tags", ("code", "word")),
              ("reference", "references", ("code", "uuid")), ("combination", "combinations", ("number",)),
              ("identifier", "identifiers", ("uuid", "code")), ("label", "labels", ("word", "code")),
              ("value", "values", ("number", "word", "code")), ("serial", "serials", ("code", "uuid")),
              ("extension", "extensions", ("number",)), ("setting", "settings", ("number", "word"))]

REL = ["of", "for", "belonging to", "assigned to", "used by", "linked to", "given to", "chosen by",
       "associated with", "that belongs to", "reserved for", "set for", "noted for",
       "owned by", "kept by", "attached to", "connected to", "picked by", "meant for", "created for"]
VERB_HAS = ["has the", "was given the", "uses the", "received the", "got the", "owns the",
            "was assigned the", "keeps the", "picked the", "chose the", "holds the", "carries the",
            "is using the", "was handed the", "selected the", "set up the", "now has the", "shares the",
            "kept the", "obtained the"]
COPULA = ["is", "was", "is set to", "equals", "is now", "has been", "became", "is exactly",
          "is currently", "was changed to", "=", ":", "is still", "turned out to be"]
FRAMES = ["{S} mentioned that", "{S} told us that", "It was announced that", "Rumor has it that",
          "Someone noted that", "A memo confirms that", "The manager said that", "We learned that",
          "As everyone knows,", "It is well known that", "The report states that", "A letter revealed that",
          "In the end,", "Last week,", "Yesterday", "Strangely,", "According to the log,", "I heard that",
          "The clerk confirmed that", "Surprisingly,", "To be precise,", "The archive shows that",
          "The email said that", "People say that", "In short,"]
NEEDLE_PREFIXES = _clean(ph.NEEDLE_PREFIXES_TRAIN) + ["Important:", "Info:", "Note well:", "Data:", "Entry:",
                                              "Fact #%d:", "Item %d:", "(%d)", "%d.", "Line %d:"]
NEEDLE_SUFFIXES = [" Remember it.", " Do not share it.", " This is important.", " Keep it in mind.",
                   " (confidential)", " Do not forget it.", " That is all.", " It never changes.",
                   " Nobody else knows it.", " Write it down."]

Q_FORMS = [
    "what is the {a} {r} {s}?", "what {a} does {s} have?", "which {a} {vhp} {s}?",
    "what is {s}'s {a}?", "{s}'s {a}?", "tell me {s}'s {a}.", "give me the {a} {r} {s}.",
    "I need to know the {a} {r} {s}.", "do you know the {a} {r} {s}?", "look up the {a} {r} {s}.",
    "find the {a} {r} {s}.", "please provide the {a} {r} {s}.", "can you find the {a} {r} {s}?",
    "what did the text say about the {a} {r} {s}?", "search for the {a} {r} {s}.",
    "report {s}'s {a}.", "quick: the {a} {r} {s}?", "the {a} {r} {s}?", "which {a} did {s} get?",
    "what was the {a} {r} {s}?", "state the {a} {r} {s}.", "what {a} was mentioned for {s}?",
    "name the {a} {r} {s}.", "what value does the {a} {r} {s} have?", "show the {a} {r} {s}.",
    "which value is the {a} {r} {s}?", "what is the {a} that {s} {vpast}?", "what {a} did {s} use?",
    "remember the {a} {r} {s}? What is it?", "{s} - what is the {a}?", "the {a} {r} {s} is what?",
    "find out which {a} {s} has.", "what was written about {s}'s {a}?",
]
VHP = ["belongs to", "was assigned to", "was given to", "is linked to", "is used by", "was chosen by",
       "is associated with", "was set for", "is reserved for", "was picked by"]
VPAST = ["has", "uses", "received", "got", "owns", "keeps", "picked", "chose", "holds", "carries"]
Q_OPENERS = ["", "", "", "Based on the text,", "According to the document,", "From the text above,",
             "In the text,", "Using the notes above,", "Now,", "So,", "Question:", "Q:", "Quiz:",
             "Final question:", "Next question:", "One more thing:", "Tell me,", "OK,", "Please,",
             "Looking back at the text,", "Reading the text again,", "Hey,"]
RESTATE = ["the {a} {r} {s} is", "{s}'s {a} is", "it is", "it's", "that is", "the answer is",
           "the {a} is", "its value is", "the value is", "{s} has the {a}", "the requested {a} is",
           "I found", "the text says", "the text states that it is", "the {a} {r} {s} was",
           "it was", "the correct {a} is", "{s} uses", "the {a} in question is", "this is",
           "that would be", "my answer is", "the {a} mentioned is", "I believe it is", "we have",
           "the number you want is", "you are looking for", "the {a} {r} {s} is simply"]
LABELS = ["Answer", "Value", "Result", "Output", "Response", "Reply", "Solution", "Found", "A",
          "Final answer", "Correct answer", "{A}", "{S}'s {a}", "Lookup result", "Match",
          "Extracted value", "Stored value", "Ans", "The {a}", "{A} {r} {s}", "Answer (the {a})", "Result found"]
LEAD_OPENERS = ["", "", "", "Sure.", "Sure,", "OK.", "Yes.", "Let me check.", "Looking at the text,",
                "Easy.", "Got it.", "Alright,", "Right,", "Okay,", "Well,", "Hmm.", "Checking the text,",
                "As stated above,", "Found it.", "No problem."]

MV_FORMS = ["what are all the {ap} {r} {s}?", "list the {ap} {r} {s}.", "which {ap} does {s} have?",
            "name every {a} {r} {s}.", "give all {ap} {r} {s}.", "tell me all of {s}'s {ap}.",
            "what {ap} were mentioned for {s}?", "list every {a} that {s} {vpast}.",
            "which {ap} are {r} {s}?", "show all {ap} {r} {s}.", "find each {a} {r} {s}.",
            "what are {s}'s {ap}?", "all {ap} {r} {s}?", "how about the {ap} {r} {s}?",
            "collect the {ap} {r} {s}.", "write down every {a} {r} {s}."]
MV_LEADS = ["the {ap} {r} {s} are", "they are", "the {ap} are", "{s}'s {ap} are", "Answer:",
            "All of them:", "In order:", "The full list is", "Here they are:", "List:", "Values:",
            "{s} has", "in order of appearance:", "The text lists", "{AP}:", "All {ap}:", "They were",
            "The {ap} mentioned are"]
MQ_FORMS = ["what are the {ap} of {s}?", "give the {a} of each of {s}.", "tell me the {ap} for {s}, in order.",
            "list the {a} of {s}, in that order.", "which {ap} belong to {s}?", "what {ap} do {s} have?",
            "name the {ap} of {s} in order.", "{ap} of {s}?", "show the {a} for each of {s}.",
            "for each of {s}, give the {a}.", "find the {ap} of {s}.", "what is the {a} of each of {s}?"]
MQ_LEADS = ["In order, they are", "They are", "The {ap} are", "Answer:", "In that order:", "One by one:",
            "In the same order:", "Here they are:", "List:", "Values:", "Ordered:", "The {ap} of {s} are",
            "Answer, in order:", "In order:"]

# Subjects-first list questions (training only, tasks.fact / tasks.kv_list with question_order=p).
# Nearly every form above names the attribute before the subjects ("what are the {ap} of {s}?").
# The held-out multi-query question names the subjects first, and with only the question held
# out the committed model's multi-query answers drop from 12/16 to 8/16 (docs/demo-model.md,
# "Which held-out part"). So a list question is also asked the other way round: a front that
# names {s}, then an ask that only refers back to it ("as for {s}, which {ap} do they have?"), or a
# whole sentence that starts with {s}. No front is a bare "for {s}," and no ask starts with "what
# are", so none of them is the held-out "For {s}, what are the {ap}?" with another lead-in
# (check_no_heldout also matches the held-out questions without their lead-ins,
# HELDOUT_QUESTION_SENTENCES).
FIRST_FRONTS = ["as for {s},", "about {s}:", "regarding {s}:", "{s} -", "{s}:", "take {s}.",
                "consider {s}.", "when it comes to {s},", "looking at {s},", "concerning {s},",
                "on the subject of {s},", "with {s} in mind,", "now {s}:", "speaking of {s},", "{s} again:",
                "starting with {s},", "in the case of {s},", "{s} (see the text):"]
MQ_FIRST_ASKS = ["which {ap} do they have?", "list their {ap}.", "give the {a} of each.", "what is each one's {a}?",
                 "name each {a}, in order.", "tell me their {ap} in that order.", "which {a} does each have?",
                 "what {ap} were mentioned for them?", "the {a} of each, please.", "show their {ap}.",
                 "find the {a} for every one.", "what {a} did each get?", "their {ap}?", "in order, which {ap}?",
                 "write down each one's {a}.", "which {ap} belong to them?", "what {a} {vhp} each of them?",
                 "which {a} was given to each?", "each one's {a}?", "give me their {ap}, one by one."]
MQ_FIRST_FORMS = ["{s} each have a {a}. Which?", "{s} were each given a {a}; list them in order.",
                  "{s} all have {ap}. Name them in order.", "{s} - their {ap}?", "{s}: {ap}?",
                  "of {s}, give every {a} in order.", "given {s}, list the {ap}.",
                  "{s} appear in the text with {ap}. Which ones?", "subjects: {s}. Wanted: their {ap}.",
                  "starting from {s}, give the {ap}.", "{s} and their {ap}?", "{s}, one {a} each: which?"]
MQ_FIRST_LEADS = ["In the order named:", "Each in turn:", "Name by name:", "Following that order:",
                  "Their {ap}, in order:", "Their {ap} are", "Each one's {a}:", "In the order given:",
                  "{AP}, in order:", "Going through them:"]
MV_FIRST_ASKS = ["list every {a}.", "which {ap} appear in the text?", "what {ap} were mentioned?", "name all the {ap}.",
                 "give each {a}.", "which {ap} does the text give?", "what {ap} are recorded?", "find all the {ap}.",
                 "tell me every {a}.", "all the {ap}, please.", "show every {a} in the text.", "collect the {ap}.",
                 "which {ap} came up?", "write down the {ap}.", "which {ap} turn up in the text?",
                 "what {ap} did the text mention?", "every {a}?"]
MV_FIRST_FORMS = ["{s} has more than one {a}. Which?", "{s} was given several {ap}; list them all.",
                  "{s} - every {a}?", "{s}: all {ap}?", "given {s}, list each {a}.",
                  "{s} appears in the text with several {ap}. Which ones?", "subject: {s}. Wanted: every {a}.",
                  "{s} {vpast} several {ap}. Name them."]
MV_FIRST_LEADS = ["Every {a}:", "In order of the text:", "They appear as", "The {ap} found are", "Each {a}:",
                  "All {ap} of {s}:"]
INSTRUCTIONS = _clean(ph.INSTRUCTIONS_TRAIN) + [
    "Pay attention to the facts below.", "Several details are mentioned in the document below.",
    "Read this document. Questions may follow.", "The text below contains a few key details.",
    "Study the following passage closely.", "Here is a long text with a few facts in it.",
    "Below are some notes mixed with other text.", "Remember the numbers and names in this text."]

# Variable tracking: assignment of a value, copy of a variable, questions and lead-ins.
VT_VALUE = ["Let {x} be {v}.", "Set {x} to {v}.", "{x} := {v}.", "{x} = {v}.", "{x} gets {v}.",
            "Assign the value {v} to {x}.", "{x} starts at {v}.", "Initialize {x} with {v}.",
            "{x} is set to {v}.", "The value of {x} is {v}.", "Variable {x} contains {v}.",
            "Write {v} into {x}.", "{x} now stores {v}.", "{x} holds {v}.", "{x} receives {v}.",
            "var {x} = {v};", "{x} is {v}.", "Make {x} equal to {v}.", "{x} <- {v}.", "let {x} = {v};",
            "Put {v} in {x}.", "{x} takes the value {v}.", "Store the number {v} in {x}.",
            "Variable {x} is assigned {v}."]
VT_COPY = ["{x} := {y}.", "{x} = {y}.", "Let {x} be equal to {y}.", "Set {x} to the value of {y}.",
           "{x} gets {y}.", "Copy {y} to {x}.", "{x} takes the value of {y}.", "Assign {y} to {x}.",
           "The value of {y} is copied into {x}.", "{x} mirrors {y}.", "var {x} = {y};",
           "{x} is set equal to {y}.", "Make {x} equal to {y}.", "{x} becomes {y}.",
           "{x} inherits the value of {y}.", "{x} <- {y}.", "let {x} = {y};", "Put the value of {y} in {x}.",
           "Variable {x} is assigned {y}.", "{x} receives the value held by {y}.", "Copy the value of {y} into {x}.",
           "{x} is a copy of {y}."]
VT_STEP_PREFIXES = ["", "", "", "First,", "Then", "Next,", "Later,", "Step %d:", "Meanwhile,", "Note:",
                    "After that,", "Also,", "(%d)", "Line %d:"]
VT_Q = ["which variables hold {v}?", "list all variables equal to {v}.", "find every variable whose value is {v}.",
        "which names end up with the value {v}?", "which variables contain {v} in the end?",
        "variables with value {v}?", "name every variable that equals {v}.", "what variables have the value {v}?",
        "follow the chain: which variables are equal to {v}?", "track {v}: which variables hold it?",
        "which variables were given {v}, directly or by copying?", "list the variables whose value is {v}, in order."]
VT_LEADS = ["They are:", "Answer:", "The variables are", "Variables:", "In order of assignment:", "They are",
            "The variables holding {v} are", "Result:", "In order:", "Variables equal to {v}:", "These are:",
            "The answer is", "Found:", "List:"]

KV_SEPS = [": ", " = ", " -> ", " => ", "\t", " | ", " : ", " == ", ", ", " ; ", "  ", " := ", " is ", " -- ",
           " maps to ", " --> ", " :: "]
KV_WRAP = ["{line}", "{line}", "- {line}", "* {line}", "{i}. {line}", "[{line}]", "({line})", "{line};",
           "{line},", "{line}.", "| {line} |", "#{i} {line}", "entry {i}: {line}"]
KV_Q = ["what is the value for {k}?", "look up {k}.", "find {k} in the list.", "which value does {k} have?",
        "what does {k} map to?", "value of {k}?", "get {k}.", "query: {k}", "what is stored under {k}?",
        "what value is associated with {k}?", "key {k}: what is its value?", "what comes after {k} in the list?",
        "search the list for {k}.", "which value belongs to {k}?", "give the value of the key {k}.",
        "what is {k} set to?"]
KV_LEADS = ["The value is", "Value:", "Answer:", "It maps to", "{k} maps to", "{k} ->", "The value for {k} is",
            "Result:", "It is", "Output:", "Its value is", "Found:", "{k}:", "The entry says", "Match:",
            "The answer is", "Value found:", "It has the value"]
# Key-first kv questions (training only, with question_order; see FIRST_FRONTS): the key, then the ask.
KV_FIRST_Q = ["{k}: what is its value?", "{k} - which value?", "for the key {k}, what is the value?",
              "as for {k}, what value does the list give?", "{k}? Its value, please.", "take the key {k}. What is its value?",
              "{k} maps to what?", "{k} is set to what?", "about {k}: what value?", "starting from {k}, find the value.",
              "{k}, value?", "with the key {k}, return the value.", "the key is {k}. The value?",
              "{k} in the list has which value?", "{k} belongs with which value?", "{k} = ?", "{k} -> ?",
              "with {k} as the key, what is the value?"]


def _check_parts():
    """No grammar part may hold a banned held-out fragment (raised at import: a bad edit fails fast)."""
    pools = [TITLES, ORG_KINDS, PLACE_NOUNS, ATTR_MODIFIERS, [h[0] for h in ATTR_HEADS], REL, VERB_HAS,
             COPULA, FRAMES, NEEDLE_PREFIXES, NEEDLE_SUFFIXES, Q_FORMS, VHP, VPAST, Q_OPENERS, RESTATE,
             LABELS, LEAD_OPENERS, MV_FORMS, MV_LEADS, MQ_FORMS, MQ_LEADS, INSTRUCTIONS, VT_VALUE, VT_COPY,
             VT_STEP_PREFIXES, VT_Q, VT_LEADS, KV_SEPS, KV_WRAP, KV_Q, KV_LEADS, FIRST_FRONTS, MQ_FIRST_ASKS,
             MQ_FIRST_FORMS, MQ_FIRST_LEADS, MV_FIRST_ASKS, MV_FIRST_FORMS, MV_FIRST_LEADS, KV_FIRST_Q]
    for pool in pools:
        for part in pool:
            low = part.lower()
            for b in BANNED:
                if b in low:
                    raise AssertionError("training phrasing part %r holds held-out fragment %r" % (part, b))
            for w in re.findall(r"[a-z]+", low):
                if w in HELDOUT_NAMES:
                    raise AssertionError("training phrasing part %r holds held-out word %r" % (part, w))


_check_parts()

# ---------------------------------------------------------------------------------------------
# Generators (rng: random.Random; words: tasks.Words; all draws from the training split)


def cap(s):
    return s[:1].upper() + s[1:]


# Open connectives (training only, `opn` = (filler pool, probability)): in place of a relation,
# copula or verb from the closed lists above, now and then one made of random filler words
# ("glimmer for", "tusk with the", "bristles as"). A model that has only seen the closed lists
# learns them and copies whatever follows the attribute when a needle joins its slots with words
# it never saw (a held-out needle's "on file for ... reads ..." came back as the answer); with
# open connectives the slots, not the words between them, have to carry the lookup. The pool is
# free_filler_words (no held-out template word, no word of a BANNED fragment).
OPEN_PREPS = ["of", "for", "to", "with", "by", "at", "in", "from", "under", "about"]


def _open_word(rng, opn):
    return rng.choice(opn[0])


def _rel(rng, opn=None):
    if opn and rng.random() < opn[1]:
        w, p = _open_word(rng, opn), rng.choice(OPEN_PREPS)
        return rng.choice(["%s %s" % (w, p), "%s the %s %s" % (p, w, rng.choice(OPEN_PREPS)), "now %s %s" % (w, p)])
    return rng.choice(REL)


def _cop(rng, opn=None):
    if opn and rng.random() < opn[1]:
        w = _open_word(rng, opn)
        return rng.choice([w, "%s as" % w, "is %s at" % w, "%s to be" % w, "was %s as" % w])
    return rng.choice(COPULA)


def _has(rng, opn=None):
    if opn and rng.random() < opn[1]:
        w = _open_word(rng, opn)
        return rng.choice(["%s the" % w, "%s with the" % w, "was %s the" % w, "has %s the" % w])
    return rng.choice(VERB_HAS)


def _vhp(rng, opn=None):
    if opn and rng.random() < opn[1]:
        return "%s %s" % (_open_word(rng, opn), rng.choice(OPEN_PREPS))
    return rng.choice(VHP)


def _vpast(rng, opn=None):
    if opn and rng.random() < opn[1]:
        return _open_word(rng, opn)
    return rng.choice(VPAST)


def _fill(rng, t, s, a, ap="", k="", v="", opn=None):
    """Fill a template; {r} relation, {vhp}/{vpast} verbs, {A}/{S}/{AP} capitalised forms."""
    return (t.replace("{r}", _rel(rng, opn)).replace("{vhp}", _vhp(rng, opn))
            .replace("{vpast}", _vpast(rng, opn)).replace("{S}", cap(s)).replace("{s}", s)
            .replace("{AP}", cap(ap)).replace("{ap}", ap).replace("{A}", cap(a)).replace("{a}", a)
            .replace("{k}", k).replace("{v}", v))


def train_words(words):
    """The training key-word list minus every held-out phrasing word (cached on the Words object)."""
    tw = getattr(words, "_grammar_train", None)
    if tw is None:
        tw = [w for w in words.train if w not in HELDOUT_LEXICON]
        words._grammar_train = tw
    return tw


def subject(rng, words):
    tw = train_words(words)
    k = rng.randrange(12)
    if k <= 2:
        return "%s %s" % (rng.choice(ph.FIRST_NAMES_TRAIN), rng.choice(ph.LAST_NAMES_TRAIN))
    if k == 3:
        return "%s %s" % (rng.choice(ph.FIRST_NAMES_TRAIN), cap(rng.choice(tw)))
    if k == 4:
        return "%s %s" % (cap(rng.choice(tw)), cap(rng.choice(tw)))
    if k == 5:
        return "%s %s" % (rng.choice(TITLES), rng.choice(ph.LAST_NAMES_TRAIN + [cap(rng.choice(tw))]))
    if k == 6:
        return "the %s %s" % (rng.choice(ph.ADJECTIVES_TRAIN), rng.choice(ph.NOUNS_TRAIN))
    if k == 7:
        return "the %s %s" % (rng.choice(tw), rng.choice(ph.NOUNS_TRAIN + [rng.choice(tw)]))
    if k == 8:
        return "the %s of %s" % (rng.choice(ph.NOUNS_TRAIN), rng.choice(ph.PLACES_TRAIN + [cap(rng.choice(tw))]))
    if k == 9:
        return "%s %s" % (rng.choice(ORG_KINDS), cap(rng.choice(tw)))
    if k == 10:
        return "%s %s-%d" % (rng.choice(ORG_KINDS), rng.choice(tw), rng.randint(1, 99))
    return "the %s of %s" % (rng.choice(PLACE_NOUNS), cap(rng.choice(tw)))


def attribute(rng, words):
    """(attribute, plural, value kinds); never a held-out attribute."""
    heldout = {a for a, _, _ in ph.ATTRIBUTES_HELDOUT}
    while True:
        k = rng.randrange(3)
        if k == 0:
            a = rng.choice(ph.ATTRIBUTES_TRAIN)
        else:
            head, plural, kinds = rng.choice(ATTR_HEADS)
            mod = rng.choice(ATTR_MODIFIERS) if k == 1 else rng.choice(train_words(words))
            a = ("%s %s" % (mod, head), "%s %s" % (mod, plural), kinds)
        if a[0] not in heldout:
            return a


def _prefix(rng):
    p = rng.choice(NEEDLE_PREFIXES)
    return (p % rng.randint(1, 99)) if "%d" in p else p


def needle(rng, s, a, v, opn=None):
    """One fact sentence in a freshly composed phrasing (opn: open connectives, see _rel)."""
    k = rng.randrange(7)
    if k == 0:
        core = "%s %s %s %s." % (cap(s), _has(rng, opn), a, v)
    elif k == 1:
        cop = _cop(rng, opn)
        sep = "" if cop == ":" else " "
        core = "The %s %s %s%s%s %s." % (a, _rel(rng, opn), s, sep, cop, v)
    elif k == 2:
        core = rng.choice(["%s is the %s %s %s.", "%s - the %s %s %s.", "%s was chosen as the %s %s %s.",
                           "%s: that is the %s %s %s.", "%s, the %s %s %s."]) % (v, a, _rel(rng, opn), s)
        core = cap(core)
    elif k == 3:
        core = rng.choice(["%s's %s is %s.", "%s's %s: %s.", "%s's %s was changed to %s.", "%s's %s equals %s.",
                           "%s's %s, by the way, is %s."]) % (cap(s), a, v)
    elif k == 4:
        core = rng.choice(["%s | %s | %s", "[%s] %s = %s", "(%s; %s: %s)", "%s -- %s: %s.", "%s / %s / %s"]) % (s, a, v)
    elif k == 5:
        frame = rng.choice(FRAMES).replace("{S}", cap(s))
        inner = rng.choice(["the %s %s %s is %s." % (a, _rel(rng, opn), s, v), "%s's %s is %s." % (s, a, v),
                            "%s %s %s %s." % (s, _has(rng, opn), a, v)])
        core = frame + " " + inner
    else:
        core = rng.choice(["For %s, the %s is %s.", "As for %s, the %s is %s.", "Regarding %s: %s %s.",
                           "When it comes to %s, the %s is %s."]) % (s, a, v)
    if rng.random() < 0.3:
        core = _prefix(rng) + " " + core
    if rng.random() < 0.15:
        core += rng.choice(NEEDLE_SUFFIXES)
    return core


def _question(rng, form, s, a, ap="", opn=None):
    op = rng.choice(Q_OPENERS)
    q = _fill(rng, form, s, a, ap, opn=opn)
    return (op + " " + q) if op else cap(q)


def _lead(rng, restate, labels, s, a, ap="", opn=None):
    if rng.random() < 0.35:
        lab = _fill(rng, rng.choice(labels), s, a, ap, opn=opn)
        return cap(lab) + ":"
    op = rng.choice(LEAD_OPENERS)
    r = _fill(rng, rng.choice(restate), s, a, ap, opn=opn)
    if not op:
        return cap(r)
    return op + " " + (r if op.endswith(",") else cap(r))


def question(rng, s, a, opn=None):
    return _question(rng, rng.choice(Q_FORMS), s, a, opn=opn) + " " + _lead(rng, RESTATE, LABELS, s, a, opn=opn)


def question_multivalue(rng, s, a, ap, opn=None):
    lead = _fill(rng, rng.choice(MV_LEADS), s, a, ap, opn=opn)
    return _question(rng, rng.choice(MV_FORMS), s, a, ap, opn=opn) + " " + cap(lead)


def question_multiquery(rng, s, a, ap, opn=None):
    lead = _fill(rng, rng.choice(MQ_LEADS), s, a, ap, opn=opn)
    return _question(rng, rng.choice(MQ_FORMS), s, a, ap, opn=opn) + " " + cap(lead)


def _subjects_first(rng, asks, forms, s, a, ap, opn):
    """A question that names {s} before the attribute: a front and an ask (most of the variety:
    18 fronts x 17-20 asks), or a whole sentence that starts with {s}."""
    if rng.random() < 0.75:
        front, ask = rng.choice(FIRST_FRONTS), rng.choice(asks)
        t = front + " " + (cap(ask) if front.endswith(".") else ask)  # "take {s}. List their {ap}."
    else:
        t = rng.choice(forms)
    return _question(rng, t, s, a, ap, opn=opn)


def question_multivalue_first(rng, s, a, ap, opn=None):
    """A multi-value question about one subject, the subject named first (training only)."""
    lead = _fill(rng, rng.choice(MV_LEADS + MV_FIRST_LEADS), s, a, ap, opn=opn)
    return _subjects_first(rng, MV_FIRST_ASKS, MV_FIRST_FORMS, s, a, ap, opn) + " " + cap(lead)


def question_multiquery_first(rng, s, a, ap, opn=None):
    """A multi-query question, the subject list (s, already joined) named first (training only)."""
    lead = _fill(rng, rng.choice(MQ_LEADS + MQ_FIRST_LEADS), s, a, ap, opn=opn)
    return _subjects_first(rng, MQ_FIRST_ASKS, MQ_FIRST_FORMS, s, a, ap, opn) + " " + cap(lead)


def vt_step(rng, template, i, **kw):
    p = rng.choice(VT_STEP_PREFIXES)
    p = (p % (i + 1)) if "%d" in p else p
    t = template.format(**kw)
    if (p.endswith(",") or p == "Then") and not template.startswith("{"):
        t = t[:1].lower() + t[1:]  # "Then set X to 5." / "Next, the value of ..."
    return (p + " " + t) if p else t


def vt_open_template(rng, opn, copy):
    """An assignment with an open verb (training only, with opn): a random filler word from opn's
    pool in a frame no closed template has, e.g. "{x} ventures with {v}." or "Pollinate {x} from
    the value of {y}."; copy=True takes {y} (a copy of another variable), else {v}."""
    w = _open_word(rng, opn)
    src = ("the value of {y}" if rng.random() < 0.5 else "{y}") if copy else "{v}"
    p = rng.choice(OPEN_PREPS)
    return rng.choice(["{x} %s %s %s." % (w, p, src), "%s {x} %s %s." % (cap(w), p, src),
                       "{x} is %s %s %s." % (w, p, src), "{x}, %s %s %s." % (w, p, src)])


def vt_question(rng, v):
    op = rng.choice(Q_OPENERS)
    q = rng.choice(VT_Q).format(v=v)
    q = (op + " " + q) if op else cap(q)
    return q + " " + rng.choice(VT_LEADS).format(v=v)


# Open key/value separators (training only, with opn): one or two marks or a filler word.
OPEN_MARKS = "!$%&*+=:;|/^_.,#@"


def kv_line_format(rng, opn=None):
    sep, wrap = rng.choice(KV_SEPS), rng.choice(KV_WRAP)
    if opn and rng.random() < opn[1]:
        marks = "".join(rng.choice(OPEN_MARKS) for _ in range(rng.randint(1, 2)))
        sep = rng.choice([" %s " % marks, "%s " % marks, " %s " % _open_word(rng, opn)])
    return wrap.replace("{line}", "{k}" + sep + "{v}")


def kv_question(rng, k, opn=None):
    op = rng.choice(Q_OPENERS)
    if opn and rng.random() < opn[1]:
        w, w2 = _open_word(rng, opn), _open_word(rng, opn)
        q = rng.choice(["%s the value for %s." % (w, k), "which value %s %s?" % (w, k),
                        "the value %s %s?" % (w, k), "%s %s?" % (w, k)])
        lead = rng.choice(["%s:" % cap(w2), "It %s" % w2, "The value %s" % w2, "%s value:" % cap(w2)])
    else:
        q = rng.choice(KV_Q).format(k=k)
        lead = rng.choice(KV_LEADS).format(k=k)
    q = (op + " " + q) if op else cap(q)
    return q + " " + lead


def kv_question_first(rng, k, opn=None):
    """A kv-list question that names the key before it asks (training only, KV_FIRST_Q); with opn,
    now and then the ask in filler words as kv_question's. A question that starts with the key
    keeps its case (cap() would turn a uuid or word key into one the list does not hold)."""
    op = rng.choice(Q_OPENERS)
    if opn and rng.random() < opn[1]:
        w, w2 = _open_word(rng, opn), _open_word(rng, opn)
        t = rng.choice(["{k} %s which value?" % w, "{k}: the value %s?" % w, "for {k}, %s the value." % w,
                        "{k} - %s what?" % w])
        lead = rng.choice(["%s:" % cap(w2), "It %s" % w2, "The value %s" % w2, "%s value:" % cap(w2)])
    else:
        t = rng.choice(KV_FIRST_Q)
        lead = rng.choice(KV_LEADS).format(k=k)
    q = t.replace("{k}", k)
    q = (op + " " + q) if op else (q if t.startswith("{k}") else cap(q))
    return q + " " + lead


# ---------------------------------------------------------------------------------------------
# Free-form facts (tasks.fact_free, training only): needles and questions whose wording is random
# filler around the slots, so that nothing but the subject and the attribute tells the target
# needle apart. A frame is a template with the placeholders {s}, {a}, {v}; one frame serves every
# needle of an episode.

# Common function words mixed into the filler. None holds a BANNED fragment, none is a held-out
# name, and no BANNED fragment is made of them alone (checked below): every fragment needs a word
# that the random filler pool (free_filler_words) never draws either.
FREE_FUNCTION_WORDS = ["the", "of", "is", "for", "to", "has", "with", "was", "a", "its", "and", "in", "on",
                       "at", "as", "by", "an", "be", "are", "or", "so", "then", "now", "also", "all", "not",
                       "but", "here", "there", "our", "their", "his", "her", "we", "they", "it", "that",
                       "very", "just", "only", "some", "no", "into", "than", "had", "were", "from", "new"]
# Marks between the slots (never first or last): "," ":" ";" cling to the word before them.
FREE_MARKS = [",", ":", ";", "-", "=", "|", "/", "->", "--"]
_FREE_CLING = re.compile(r" ([,:;])")
_SLOT = re.compile(r"\{([sav])\}")


def _check_free_words():
    for w in FREE_FUNCTION_WORDS:
        if w in HELDOUT_NAMES or any(b in w for b in BANNED):
            raise AssertionError("free filler word %r is held out" % w)
    for b in BANNED:
        if all(w in FREE_FUNCTION_WORDS for w in re.findall(r"[a-z]+", b)):
            raise AssertionError("held-out fragment %r can be made of free filler words" % b)


_check_free_words()


def free_filler_words(words):
    """The random filler pool: training words (no held-out name or attribute word, train_words)
    less every word of a held-out template and every word holding a word of a BANNED fragment
    (so 'on' + 'file' can never meet). Cached on the Words object."""
    pool = getattr(words, "_free_filler", None)
    if pool is None:
        template_words = {w for t in HELDOUT_TEMPLATES + BANNED for w in re.findall(r"[a-z]+", t.lower())}
        fragment_words = {w for b in BANNED for w in re.findall(r"[a-z]+", b) if len(w) >= 4}
        pool = [w for w in train_words(words) if w not in template_words and w not in FREE_FUNCTION_WORDS
                and not any(f in w for f in fragment_words)]
        words._free_filler = pool
    return pool


def _free_filler(rng, pool, avoid, n, marks=False):
    """n filler tokens: function words, random pool words (never one of the episode's slot words,
    avoid), and with marks=True now and then a punctuation mark."""
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.45:
            out.append(rng.choice(FREE_FUNCTION_WORDS))
        elif r < 0.85 or not marks:
            w = rng.choice(pool)
            while w in avoid:
                w = rng.choice(pool)
            out.append(w)
        else:
            out.append(rng.choice(FREE_MARKS))
    return out


def _free_join(rng, toks):
    text = _FREE_CLING.sub(r"\1", " ".join(toks))
    if not text.startswith("{") and rng.random() < 0.5:
        text = cap(text)
    return text


def free_needle_frame(rng, pool, avoid=()):
    """'<0-4 filler> X <0-4> Y <0-4> Z <0-4>.' with X, Y, Z the slots {s}, {a}, {v} in a random
    order (all six occur); marks only between slots."""
    order = rng.sample("sav", 3)
    toks = _free_filler(rng, pool, avoid, rng.randint(0, 4))
    for i, slot in enumerate(order):
        if i:
            toks += _free_filler(rng, pool, avoid, rng.randint(0, 4), marks=True)
        toks.append("{%s}" % slot)
    toks += _free_filler(rng, pool, avoid, rng.randint(0, 4))
    return _free_join(rng, toks) + "."


def free_question_frame(rng, pool, avoid=(), plural=False):
    """'<filler> {a}/{s} in a random order <filler>?' then an answer lead-in of 1-6 filler words
    that may repeat {s} and/or {a}, ending in ':', 'is' / 'are' (plural) or nothing."""
    order = rng.sample("as", 2)
    toks = _free_filler(rng, pool, avoid, rng.randint(0, 4)) + ["{%s}" % order[0]]
    toks += _free_filler(rng, pool, avoid, rng.randint(0, 3), marks=True) + ["{%s}" % order[1]]
    toks += _free_filler(rng, pool, avoid, rng.randint(0, 3))
    lead = _free_filler(rng, pool, avoid, rng.randint(1, 6))
    for slot in "sa":
        if rng.random() < 0.3:
            lead.insert(rng.randint(0, len(lead)), "{%s}" % slot)
    end = rng.choice([":", " are" if plural else " is", ""])
    lead = _free_join(rng, lead) + end
    return _free_join(rng, toks) + "? " + lead


def free_render(frame, s, a, v=""):
    slots = {"s": s, "a": a, "v": v}
    return _SLOT.sub(lambda m: slots[m.group(1)], frame)


def check_free_frames(n, words):
    """Fail if the filler pool holds a held-out word or a frame (placeholders left in) holds a
    BANNED fragment or a held-out name. Returns the number of frames checked."""
    import random
    pool = free_filler_words(words)
    bad = [w for w in pool if w in HELDOUT_LEXICON or any(b in w for b in BANNED)]
    if bad:
        raise AssertionError("free filler pool holds held-out words %r" % bad[:5])
    rng = random.Random(2)
    for i in range(n):
        for frame in (free_needle_frame(rng, pool), free_question_frame(rng, pool, plural=i % 2 == 1)):
            low = _SLOT.sub(" ", frame).lower()
            for b in BANNED:
                if b in low:
                    raise AssertionError("free frame %r holds held-out fragment %r" % (frame, b))
            for w in re.findall(r"[a-z]+", low):
                if w in HELDOUT_NAMES:
                    raise AssertionError("free frame %r holds held-out word %r" % (frame, w))
    return 2 * n


# ---------------------------------------------------------------------------------------------
# Held-out check


def _template_regex(t):
    parts = re.split(r"\{[a-zA-Z]+\}", t)
    return re.compile(".{1,120}?".join(re.escape(p) for p in parts), re.IGNORECASE | re.DOTALL)


HELDOUT_TEMPLATES = (ph.NEEDLES_HELDOUT + ph.QUESTIONS_HELDOUT + ph.QUESTIONS_MULTI_VALUE_HELDOUT
                     + ph.QUESTIONS_MULTI_QUERY_HELDOUT + ph.VT_ASSIGN_VALUE_HELDOUT + ph.VT_ASSIGN_COPY_HELDOUT
                     + ph.VT_QUESTIONS_HELDOUT + ph.KV_LINES_HELDOUT + ph.KV_QUESTIONS_HELDOUT
                     + [i for i in ph.INSTRUCTIONS_HELDOUT if i])
_HELDOUT_RES = [(t, _template_regex(t)) for t in HELDOUT_TEMPLATES]


def _question_sentence(t):
    """A held-out question template without its answer lead-in: up to its first '?' or '. '."""
    m = re.match(r".*?[?.](?= )", t)
    return m.group(0) if m else t


# The held-out questions' own sentences, matched on their own: a training question must not be a
# held-out one with another lead-in either. Some hold a BANNED fragment only in their lead-in:
# "For {s}, what are the {ap}?" holds none, its "Respectively:" does (see FIRST_FRONTS).
HELDOUT_QUESTION_SENTENCES = [_question_sentence(t) for t in (
    ph.QUESTIONS_HELDOUT + ph.QUESTIONS_MULTI_VALUE_HELDOUT + ph.QUESTIONS_MULTI_QUERY_HELDOUT
    + ph.VT_QUESTIONS_HELDOUT + ph.KV_QUESTIONS_HELDOUT)]
_HELDOUT_RES += [(t, _template_regex(t)) for t in HELDOUT_QUESTION_SENTENCES]


def heldout_hits(text):
    """Held-out templates (and held-out question sentences) that match somewhere in text
    (needles/questions of one sample)."""
    return [t for t, r in _HELDOUT_RES if r.search(text)]


def check_no_heldout(n=3000, seed=1, words_path=None):
    """Generate n training samples of every templated family (grammar and fixed train templates,
    with and without open connectives and follow-up questions, list questions with and without
    the subjects-first forms and mixed needle phrasings, and the free-form facts of
    tasks.fact_free) and fail on any held-out template match or
    held-out name in their needles and questions; check the free-form filler pool and n frames
    (check_free_frames). Returns the number of texts checked."""
    import os
    import random
    import tasks
    words = tasks.Words(words_path or os.environ.get("LTRI_WORDS", "/usr/share/dict/american-english"))
    rng = random.Random(seed)
    checked = 0
    for i in range(n):
        for builder, kw in ((tasks.fact, dict(mode="single")), (tasks.fact, dict(mode="multikey")),
                            (tasks.fact, dict(mode="multivalue")), (tasks.fact, dict(mode="multiquery")),
                            (tasks.vt_phrased, {}), (tasks.kv_list, {}), (tasks.fact_free, dict(mode="single")),
                            (tasks.fact_free, dict(mode="multivalue")), (tasks.fact_free, dict(mode="multiquery")),
                            # subjects-first list questions, and needles in independent phrasings
                            (tasks.fact, dict(mode="multivalue", question_order=0.7, mixed_needles=0.7)),
                            (tasks.fact, dict(mode="multiquery", question_order=0.7, mixed_needles=0.7)),
                            (tasks.kv_list, dict(question_order=0.7)),
                            # more chains, placed around the asked one; multi-query asked again
                            (tasks.vt_phrased, dict(n_chains=3, layout="interleaved")),
                            (tasks.fact, dict(mode="multiquery", requery=True))):
            # every other composed sample with open connectives and follow-up questions
            extra = dict(open_slots=0.5, followups=2, open_vt=True) if i % 4 in (1, 3) else {}
            s = builder(rng, 200, words=words, prose=None, heldout=False, combo=(i % 4 != 0), **kw, **extra)
            for text in s.parts:
                checked += 1
                hits = heldout_hits(text)
                if hits:
                    raise AssertionError("training text %r matches held-out template %r" % (text, hits[0]))
                for w in re.findall(r"[A-Za-z]+", text):
                    if w.lower() in HELDOUT_NAMES:
                        raise AssertionError("training text %r holds held-out word %r" % (text, w))
    return checked + check_free_frames(n, words)


if __name__ == "__main__":
    import random
    import sys
    rng = random.Random(0)

    class _W:  # a stand-in word list for the printed examples
        train = ["alpha", "bravo", "cedar", "delta", "ember", "fjord", "gusto", "haven"]
    for _ in range(8):
        s, (a, ap, _k) = subject(rng, _W), attribute(rng, _W)
        print(needle(rng, s, a, "4711"), "||", question(rng, s, a))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print("checked %d training texts: no held-out template or word" % check_no_heldout(n))

    # Free-form facts (tasks.fact_free): examples and the self-check, n episodes per mode. The
    # held-out Austen novels serve only as haystack text here to exercise the prose path; nothing
    # is trained by this script.
    import os
    import tasks
    words = tasks.Words(os.environ.get("LTRI_WORDS", "/usr/share/dict/american-english"))
    prose = tasks.Prose.from_files(tasks.heldout_prose_paths()[:1])
    for mode in ("single", "single", "multivalue", "multiquery"):
        smp, info = tasks._fact_free(rng, 200, words, None, None, mode, False)
        print("\n[fact_free_%s] frame: %s" % (mode, info["frame"]))
        for (_, _, role), text in zip(info["slots"], info["needles"]):
            print("  %-15s %s" % (role, text))
        print("  question        %s%s" % (info["question"], smp.answer))
    for mode, st in tasks.check_fact_free(n, words, prose).items():
        print("fact_free_%s: %d episodes ok; distractors: %d other subject, %d other attribute, %d episodes "
              "with both; %d of 6 slot orders" % (mode, st["episodes"], st["other_subject"],
                                                  st["other_attribute"], st["both_kinds"], st["orders"]))
