"""Readers that turn the unpacked Debian / npm packages into plain-text documents.

Each reader yields (doc_id, text) pairs where text is a list of paragraphs joined by "\n".
Markup is stripped here; quality filtering and de-duplication happen in prepare_data.py.
Pure standard library: this runs on the development machine, which has no numpy.
"""

import gzip
import html
import html.parser
import os
import re
import struct
import zlib

# Tags whose whole content is dropped: code listings, navigation, scripts.
_SKIP_TAGS = {"script", "style", "pre", "head", "nav", "table", "math", "svg", "footer", "header"}
# Classes of sphinx / docbook / vim-help navigation blocks.
_SKIP_CLASS = re.compile(r"(^|\s)(related|sphinxsidebar|footer|navheader|navfooter|nav|toc|"
                         r"highlight|headerlink|toctree-wrapper|breadcrumb|literal-block|"
                         r"versionmodified|genindex|searchbox)(\s|$)")
_BLOCK_TAGS = {"p", "div", "li", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6", "br",
               "section", "blockquote", "tr", "ul", "ol", "dl", "article", "main", "body"}
_VOID_TAGS = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr"}


class _HtmlText(html.parser.HTMLParser):
    """Collects the visible running text of an HTML page, one paragraph per block element."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.skip_depth = 0
        self.stack = []  # (tag, skipping) for every open non-void tag

    def handle_starttag(self, tag, attrs):
        if tag in _VOID_TAGS:
            if tag == "br":
                self.parts.append("\n")
            return
        cls = dict(attrs).get("class") or ""
        skipping = tag in _SKIP_TAGS or bool(_SKIP_CLASS.search(cls))
        self.stack.append((tag, skipping))
        if skipping:
            self.skip_depth += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        # Pop up to the matching tag; tolerate unclosed <p>/<li> as browsers do.
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for _, skipping in self.stack[i:]:
                    if skipping:
                        self.skip_depth -= 1
                del self.stack[i:]
                break
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        if self.skip_depth == 0:
            # Source line breaks inside a paragraph are not paragraph breaks.
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(raw):
    parser = _HtmlText()
    try:
        parser.feed(raw)
        parser.close()
    except Exception:  # a broken page costs one document, not the run
        return ""
    return "".join(parser.parts)


def read_html_tree(root, exclude=()):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith("_") and d not in exclude)
        for name in sorted(filenames):
            if not (name.endswith(".html") or name.endswith(".html.gz")):
                continue
            if name in ("genindex.html", "search.html", "py-modindex.html") or \
                    name.startswith("genindex-"):
                continue
            path = os.path.join(dirpath, name)
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                raw = f.read().decode("utf-8", "replace")
            yield path, html_to_text(raw)


_POD_CODE = re.compile(r"[BCIFSLXEZ]<+\s*(.*?)\s*>+", re.S)


def pod_to_text(raw):
    paras = []
    in_pod = True
    for block in re.split(r"\n\s*\n", raw):
        if block.startswith("=cut"):
            in_pod = False
            continue
        if block.startswith("=pod") or block.startswith("=head") or block.startswith("=item"):
            in_pod = True
            title = re.sub(r"^=\w+\s*", "", block).strip()
            if title and not block.startswith("=pod"):
                paras.append(title)
            continue
        if block.startswith("="):
            continue
        if not in_pod or block[:1] in (" ", "\t"):  # verbatim (code) paragraphs
            continue
        text = block
        for _ in range(3):  # nested formatting codes
            text = _POD_CODE.sub(lambda m: m.group(1).split("|")[0], text)
        paras.append(re.sub(r"\s+", " ", text))
    return "\n".join(paras)


def read_pod_tree(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".pod") or name.endswith(".pm"):
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    yield path, pod_to_text(f.read().decode("utf-8", "replace"))


_GCIDE_DROP = re.compile(r"\[(1913 Webster|PJC|WordNet 1\.5|Century Dict\.|Webster 1913 Suppl\.|"
                         r"R\.|Obs\.|Colloq\.|Archaic|Poetic)\]|\\[^\\\n]*\\|[{}]|--\s?(?=[A-Z])")


def read_dictd(path, name):
    """A dictd database (.dict.dz, gzip-compatible): one paragraph per entry block.

    Entries are plain text with dictfmt's indentation; GCIDE adds Webster's pronunciation
    marks (\\Ab*jure"\\) and source tags ([1913 Webster]), which are dropped. The database's
    own header entries (00-database-*) are skipped.
    """
    with gzip.open(path, "rb") as f:
        raw = f.read().decode("utf-8", "replace")
    doc, paras = 0, []
    for block in re.split(r"\n\s*\n", raw):
        if block.lstrip().startswith("00-database") or "Begin file" in block or "* * *" in block:
            continue
        if len(paras) >= 2000:
            yield "%s/%03d" % (name, doc), "\n".join(paras)
            doc, paras = doc + 1, []
        text = _GCIDE_DROP.sub("", block)
        text = re.sub(r"\s+", " ", text.replace("*", "")).strip()
        paras.append(text)
    if paras:
        yield "%s/%03d" % (name, doc), "\n".join(paras)


def read_rst_tree(root, skip_dirs):
    """Kernel reStructuredText / plain-text sources: re-flow paragraphs, drop directives,
    literal blocks (indented), tables and section underlines."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
        for name in sorted(filenames):
            base = name[:-3] if name.endswith(".gz") else name
            if not (base.endswith(".rst") or base.endswith(".txt")):
                continue
            opener = gzip.open if name.endswith(".gz") else open
            with opener(os.path.join(dirpath, name), "rb") as f:
                raw = f.read().decode("utf-8", "replace")
            paras = []
            for block in re.split(r"\n\s*\n", raw):
                if block[:1] in (" ", "\t") or block.startswith(".."):
                    continue
                lines = [l for l in block.split("\n") if not re.fullmatch(r"[=\-~^*+#`:.'\"_]{3,}", l.strip())]
                text = " ".join(lines)
                text = re.sub(r":\w+:`([^`<]*?)(\s*<[^>]*>)?`", r"\1", text)
                text = text.replace("``", "").replace("**", "")
                paras.append(text)
            yield os.path.join(dirpath, name), "\n".join(paras)


def read_wordnet(root):
    """WordNet data.* files: 'lemma (pos): gloss' lines, 2000 synsets per document."""
    pos_name = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}
    for part in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(root, "data." + part), "rb") as f:
            lines = f.read().decode("utf-8", "replace").split("\n")
        paras = []
        for line in lines:
            if not line or line.startswith("  "):
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            if len(fields) < 5:
                continue
            n_words = int(fields[3], 16)
            words = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            words = [re.sub(r"\(\w+\)$", "", w) for w in words]
            paras.append("%s (%s): %s" % (", ".join(words), pos_name[part], gloss.strip()))
            if len(paras) == 2000:
                yield "wordnet/%s/%d" % (part, len(lines)), "\n".join(paras)
                paras = []
        if paras:
            yield "wordnet/%s/end" % part, "\n".join(paras)


def read_sword_ztext(root):
    """SWORD zText module (World English Bible): zlib blocks of OSIS markup; one doc per block."""
    for testament in ("ot", "nt"):
        with open(os.path.join(root, testament + ".bzs"), "rb") as f:
            index = f.read()
        with open(os.path.join(root, testament + ".bzz"), "rb") as f:
            data = f.read()
        for i in range(len(index) // 12):
            off, size, _ = struct.unpack("<III", index[i * 12:i * 12 + 12])
            osis = zlib.decompress(data[off:off + size]).decode("utf-8", "replace")
            osis = re.sub(r"<note.*?</note>|<title.*?</title>", "", osis, flags=re.S)
            osis = re.sub(r'<div[^>]*type="x-p"[^>]*/>|<chapter[^>]*/>', "\n", osis)
            text = html.unescape(re.sub(r"<[^>]*>", "", osis))
            yield "web/%s/%d" % (testament, i), text


def read_brown(root):
    """Brown corpus files (word/tag tokens): untag and re-join into running text."""
    for name in sorted(os.listdir(root)):
        if not re.fullmatch(r"c[a-r]\d\d", name):
            continue
        with open(os.path.join(root, name), "rb") as f:
            raw = f.read().decode("latin-1")
        paras = []
        for block in re.split(r"\n\s*\n", raw):
            words = [tok.rsplit("/", 1)[0] for tok in block.split() if "/" in tok]
            text = " ".join(words)
            text = text.replace("``", '"').replace("''", '"')
            text = re.sub(r" ([.,;:!?)])", r"\1", text)
            text = re.sub(r"([(]) ", r"\1", text)
            text = re.sub(r'" (.*?) "', r'"\1"', text)
            text = re.sub(r" (n't|'s|'re|'ll|'d|'ve|'m)\b", r"\1", text)
            if text:
                paras.append(text)
        yield "brown/" + name, "\n".join(paras)


def read_fortunes(root, files):
    for name in files:
        path = os.path.join(root, name)
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            raw = f.read().decode("utf-8", "replace")
        paras = [re.sub(r"\s+", " ", c).strip() for c in raw.split("\n%\n")]
        yield "fortunes/" + name, "\n".join(p for p in paras if p)


def read_plain_gz(path, doc_id):
    with gzip.open(path, "rb") as f:
        raw = f.read().decode("utf-8", "replace")
    # Hard-wrapped text: blank lines separate paragraphs.
    yield doc_id, "\n".join(re.sub(r"\s+", " ", b) for b in re.split(r"\n\s*\n", raw))


def read_rdata_strings(path):
    """R lazy-load database (.rdb): each object is [u32 size][zlib(XDR serialization)].

    janeaustenr stores one character vector (one string per text line) per novel, in the
    order of its index: emma, mansfieldpark, northangerabbey, persuasion, prideprejudice,
    sensesensibility. Returns a list of string lists.
    """
    with open(path, "rb") as f:
        blob = f.read()
    vectors, pos = [], 0
    while pos < len(blob):
        d = zlib.decompressobj()
        out = d.decompress(blob[pos + 4:])
        pos = len(blob) - len(d.unused_data)
        # Header: "X\n", 3 ints, native encoding (int length + bytes), then the STRSXP.
        enc_len = struct.unpack(">i", out[14:18])[0]
        p = 18 + enc_len
        flags, n = struct.unpack(">ii", out[p:p + 8])
        if flags & 0xFF != 16:
            raise ValueError("%s: object is not a character vector (type %d)" % (path, flags & 0xFF))
        p += 8
        strings = []
        for _ in range(n):
            _, length = struct.unpack(">ii", out[p:p + 8])
            p += 8
            if length < 0:
                strings.append("")
                continue
            strings.append(out[p:p + length].decode("utf-8", "replace"))
            p += length
        vectors.append(strings)
    return vectors
