#!/usr/bin/env python3
"""Evaluate a trained demo model with PyTorch on the GPU machine (full attention, greedy).

  python3 tools/train_demo/eval_torch.py -m models/ltri-demo --words data/american-english \\
      --n 16 --out $OUT/eval_torch.md

Same prompts as the training run's final table and as eval_engine.py (tasks.make_eval_sample,
held-out prose of data/heldout, seed tasks.EVAL_SEED). Prints the teacher-forced table and the
real greedy-decoding table (whole answers: every expected value in the output). The engine's own table comes from eval_engine.py;
this one is a fast cross-check of a model before it is committed.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

import gpu_eval  # noqa: E402
import tasks  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--words", default="/usr/share/dict/american-english")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--lengths", default=",".join(str(L) for L in tasks.EVAL_LENGTHS))
    ap.add_argument("--budget", type=float, default=400, help="seconds for greedy decoding")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    from transformers import LlamaForCausalLM
    t0 = time.time()
    lengths = [int(x) for x in args.lengths.split(",")]
    tok_path = os.path.join(args.model, "tokenizer.json")
    fams = [f[0] for f in tasks.EVAL_FAMILIES]
    suite = gpu_eval.build_suite(tok_path, args.words, tasks.heldout_prose_paths(), fams, lengths, args.n)
    model = LlamaForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="sdpa").cuda()
    tf = gpu_eval.teacher_forced(model, [dict(it) for it in suite], "cuda")
    md_tf = gpu_eval.markdown(gpu_eval.table(tf, fams, lengths), fams, lengths, args.n)
    print("teacher-forced (%.0fs)\n%s" % (time.time() - t0, md_tf), flush=True)
    gr = gpu_eval.greedy_all(model, Tokenizer.from_file(tok_path), [dict(it) for it in suite], "cuda",
                             time.time() + args.budget)
    md_gr = gpu_eval.markdown(gpu_eval.table(gr, fams, lengths), fams, lengths, args.n)
    print("greedy (%.0fs)\n%s" % (time.time() - t0, md_gr), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("teacher-forced\n" + md_tf + "\n\ngreedy\n" + md_gr + "\n")


if __name__ == "__main__":
    main()
