#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/goldens_<name>.json: Hugging Face `tokenizers` ids and decodes
for every hard string (tests/fixtures/tokenizer/hard_strings.json) and the prose sample, for the
real Llama-3 and Llama-2 tokenizer.json files fetched by scripts/setup.sh into .deps/tokenizers/.
ltri_test_tokenizer requires its own ids and decodes to equal these.

Run from anywhere with `tokenizers` installed:  python3 tests/reference/make_tokenizer_goldens.py
"""
import json
import pathlib

import tokenizers
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tokenizer"


def case(tok, text):
    with_special = tok.encode(text).ids  # add_special_tokens=True
    plain = tok.encode(text, add_special_tokens=False).ids
    tok.encode_special_tokens = True  # special tokens written in the text stay plain text
    literal = tok.encode(text, add_special_tokens=False).ids
    tok.encode_special_tokens = False
    return {
        "text": text,
        "ids": with_special,
        "ids_no_special": plain,
        "ids_literal_special": literal,
        "decoded": tok.decode(with_special, skip_special_tokens=False),
        "decoded_no_special": tok.decode(plain, skip_special_tokens=False),
        "decoded_skip_special": tok.decode(with_special, skip_special_tokens=True),
    }


def main():
    texts = json.loads((FIXTURES / "hard_strings.json").read_text(encoding="utf-8"))
    texts.append((FIXTURES / "prose_10k.txt").read_bytes().decode("utf-8"))  # keep \r as is
    for name in ("llama3", "llama2"):
        tok = Tokenizer.from_file(str(ROOT / ".deps" / "tokenizers" / name / "tokenizer.json"))
        out = {
            "tokenizer": f".deps/tokenizers/{name}/tokenizer.json",
            "generator": f"tests/reference/make_tokenizer_goldens.py, tokenizers {tokenizers.__version__}",
            "cases": [case(tok, t) for t in texts],
        }
        path = FIXTURES / f"goldens_{name}.json"
        path.write_text(json.dumps(out, ensure_ascii=True, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}: {len(texts)} cases")


if __name__ == "__main__":
    main()
