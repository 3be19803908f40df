#!/usr/bin/env python3
"""How far apart needles and questions stand in the training sequences of a mix (CPU, no PyTorch).

  python3 tools/train_demo/coverage.py --mix queries --seq 8192 --sequences 200 [--full-episodes 0.3]

Packs sequences exactly as a training call does (mix.Packer, the demo model's tokenizer through
eval_engine.PyBpe, held-out prose standing in for the training prose) and prints, per 1K tokens
of distance, the share of episodes whose farthest needle stands that far before the end of its
first question. The evaluation asks across the whole length of a prompt (needle depths sweep
0..1), so a distance the training sequences hardly hold is one the model is rarely taught.
"""
import argparse
import collections
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval_engine  # noqa: E402
import mix  # noqa: E402
import tasks  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


class _Encoding:
    def __init__(self, ids, offsets):
        self.ids, self.offsets = ids, offsets


class BpeWithOffsets:
    """The `tokenizers` calls mix.Packer makes (ids and character offsets), from the pure-Python
    byte-level BPE that eval_engine sizes prompts with: the same token counts as the engine."""

    def __init__(self, path):
        self.bpe = eval_engine.PyBpe(path)
        self.cache = {}

    def _piece(self, piece):
        got = self.cache.get(piece)
        if got is None:
            char_of_byte = [i for i, ch in enumerate(piece) for _ in ch.encode("utf-8")]
            got, at = [], 0
            for part in self.bpe._bpe(piece):
                got.append((self.bpe.vocab[part], char_of_byte[at]))
                at += len(part)  # one character of the byte map a byte
            if len(self.cache) < 500000:
                self.cache[piece] = got
        return got

    def encode(self, text, add_special_tokens=False):
        ids, offsets = [], []
        for m in eval_engine._SPLIT.finditer(text):
            for tid, start in self._piece(m.group(0)):
                ids.append(tid)
                offsets.append((m.start() + start, m.start() + start + 1))
        return _Encoding(ids, offsets)


def measure(args):
    tok = BpeWithOffsets(os.path.join(args.model, "tokenizer.json"))
    words = tasks.Words(args.words)
    prose = tasks.Prose.from_files(tasks.heldout_prose_paths())
    record = []
    packer = mix.Packer(tok, prose, words, args.seed, 0, args.mix, args.followups, args.open_slots,
                        args.question_order, args.mixed_needles, full_episodes=args.full_episodes, record=record)
    for _ in range(args.sequences):
        packer.sequence(args.seq)
    return record


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mix", choices=sorted(mix.MIXES), default="queries")
    ap.add_argument("--seq", type=int, default=8192, help="training sequence length")
    ap.add_argument("--sequences", type=int, default=200)
    ap.add_argument("--full-episodes", type=float, default=0.0)
    ap.add_argument("--followups", type=int, default=4)
    ap.add_argument("--open-slots", type=float, default=0.5)
    ap.add_argument("--question-order", type=float, default=0.3)
    ap.add_argument("--mixed-needles", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-m", "--model", default=os.path.join(REPO, "models", "ltri-demo"))
    ap.add_argument("--words", default=os.environ.get("LTRI_WORDS", "/usr/share/dict/american-english"))
    args = ap.parse_args()
    if not 0.0 <= args.full_episodes <= 1.0:
        ap.error("--full-episodes: a probability in [0, 1], not %g" % args.full_episodes)
    record = measure(args)
    reaches = [r for _, r in record if r is not None]
    bins = collections.Counter(min(r * 8 // args.seq, 7) for r in reaches)
    print("%d sequences of %d tokens, mix %s, --full-episodes %g: %d episodes (%.2f a sequence), "
          "longest %d tokens" % (args.sequences, args.seq, args.mix, args.full_episodes, len(record),
                                 len(record) / args.sequences, max(n for n, _ in record)))
    print("| farthest needle before the question | episodes | share |")
    print("|---|---:|---:|")
    for b in range(8):
        lo, hi = b * args.seq // 8, (b + 1) * args.seq // 8
        print("| %d-%d tokens | %d | %.1f%% |" % (lo, hi, bins[b], 100.0 * bins[b] / max(1, len(reaches))))


if __name__ == "__main__":
    main()
