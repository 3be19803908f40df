#!/usr/bin/env python3
"""Train the bundled demo model on the GPU machine (one H100/H200, calls of at most 10 minutes).

  python3 tools/train_demo/train.py --data .train/data --out $OUT [--budget 540]
      [--init models/ltri-demo --lr 1e-3 --warmup-restart 100]   # continue a committed model

1. tokenizer: models/ltri-demo/tokenizer.json if committed, else train the byte-level BPE
   (vocab 8192, Llama-3 pre-tokenizer) on a sample of the training prose (--train-tokenizer)
2. model: LlamaForCausalLM 15.7M (hidden 384, 6 layers, 6 heads / 2 KV heads, FFN 1024),
   SDPA attention, bf16 autocast, AdamW; answer tokens and the <|end_of_text|> that closes
   every answer weighted x5 (mix.py; --answer-weight); --init continues from a saved model (warm restart)
3. curriculum by wall time (--phases): short sequences first, then 4096, then 8192
   (same tokens per step); training phrasings are checked against the held-out ones first
4. every --eval-every seconds: retrieval accuracy at the current length (teacher-forced)
5. at the end: held-out loss (val split + Austen), the accuracy table (gpu_eval.py, lengths
   --final-lengths), how often greedy decoding stops by itself, save_pretrained in bf16 as
   shards of < 16 MiB plus a tar of the small files and train_log.json
Everything stops inside --budget seconds (counted from the start of this script).
"""

import argparse
import io
import json
import lzma
import math
import os
import random
import sys
import tarfile
import tempfile
import time

T0 = time.time()
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402

import gpu_eval  # noqa: E402
import mix  # noqa: E402
import phrase_grammar  # noqa: E402
import tasks  # noqa: E402

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>"]
VOCAB = 8192


def log(*a):
    print("[%6.1fs]" % (time.time() - T0), *a, flush=True)


def read_xz(path):
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return f.read()


def train_tokenizer(text_sample, path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    chunk = 1 << 16
    tok.train_from_iterator((text_sample[i:i + chunk] for i in range(0, len(text_sample), chunk)), trainer)
    bos = tok.token_to_id(SPECIALS[0])
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A:0 <|begin_of_text|>:1 $B:1",
        special_tokens=[("<|begin_of_text|>", bos)])
    tok.save(path)
    return tok


def tokenizer_config():
    return {
        "bos_token": SPECIALS[0], "eos_token": SPECIALS[1], "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"], "model_max_length": 8192,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True} for i, t in enumerate(SPECIALS)},
    }


class SeqStream(torch.utils.data.IterableDataset):
    """Endless packed training sequences (mix.Packer) of one length, one RNG stream per worker."""

    def __init__(self, tok_path, prose, words, seq_len, seed, bos, mix_name, followups=0, open_slots=0.0,
                 question_order=0.0, mixed_needles=0.0, answer_weight=mix.ANSWER_WEIGHT, full_episodes=0.0):
        self.tok_path, self.prose, self.words = tok_path, prose, words
        self.seq_len, self.seed, self.bos, self.mix_name = seq_len, seed, bos, mix_name
        self.followups, self.open_slots = followups, open_slots
        self.question_order, self.mixed_needles = question_order, mixed_needles
        self.answer_weight = answer_weight
        self.full_episodes = full_episodes

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        tok = Tokenizer.from_file(self.tok_path)
        packer = mix.Packer(tok, self.prose, self.words, self.seed * 1000 + wid, self.bos, self.mix_name,
                            self.followups, self.open_slots, self.question_order, self.mixed_needles,
                            self.answer_weight, self.full_episodes)
        while True:
            ids, w = packer.sequence(self.seq_len)
            yield torch.tensor(ids, dtype=torch.int32), torch.tensor(w, dtype=torch.float32)


def make_loader(ds, batch, workers):
    return iter(torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, pin_memory=True,
                                            prefetch_factor=4, persistent_workers=False))


def build_model(args):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=args.hidden, intermediate_size=args.ffn,
                      num_hidden_layers=args.layers, num_attention_heads=args.heads,
                      num_key_value_heads=args.kv_heads, max_position_embeddings=8192,
                      rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=0, eos_token_id=1,
                      rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
                      attn_implementation="sdpa")
    torch.manual_seed(args.seed)
    return LlamaForCausalLM(cfg)


def grow_depth(model, after):
    """Inserts a new decoder layer after each listed layer index (of the original model). The new
    layer starts as a copy of the one before it with its output projections (attention o_proj and
    MLP down_proj) zeroed: the residual stream passes through unchanged, so the grown model
    computes exactly what the original did, and training then gives it something to do. This
    adds capacity to a trained model without starting over."""
    import copy
    layers = list(model.model.layers)
    grown = []
    for i, layer in enumerate(layers):
        grown.append(layer)
        if i in after:
            new = copy.deepcopy(layer)
            torch.nn.init.zeros_(new.self_attn.o_proj.weight)
            torch.nn.init.zeros_(new.mlp.down_proj.weight)
            grown.append(new)
    for i, layer in enumerate(grown):
        layer.self_attn.layer_idx = i
    model.model.layers = torch.nn.ModuleList(grown)
    model.config.num_hidden_layers = len(grown)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[0]] * len(grown)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(REPO, ".train", "data"))
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/out"))
    ap.add_argument("--budget", type=float, default=560, help="seconds for the whole script")
    ap.add_argument("--final-reserve", type=float, default=75, help="seconds kept for final eval + save")
    ap.add_argument("--phases", default="0.30:1024,0.35:4096,0.35:8192", help="fraction:seq_len,...")
    ap.add_argument("--tokens-per-step", type=int, default=65536)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mix", choices=sorted(mix.MIXES), default="second",
                    help="training mix (mix.py): second = calls 2-8's recipe, free = with free-form facts, "
                         "third = vt in phrasing on a curriculum, broad = free and third together (calls 12-13), "
                         "lists = broad with more multi-value episodes of 2-5 values (call 14), "
                         "chains = lists with 1-4 variable chains around the asked one and multi-query lists asked again "
                         "in another order (call 15), long_chains = chains with longer phrased chains (call 16), "
                         "queries = long_chains with multi-query episodes x1.5 and one-copy phrased chains back (calls 17-18, not adopted)")
    ap.add_argument("--followups", type=int, default=0,
                    help="up to N further questions about an episode's context after its answer (mix.Packer); 0 = off (calls 1-3)")
    ap.add_argument("--open-slots", type=float, default=0.0,
                    help="probability of a connective made of random filler words in composed fact phrasings; 0 = off (calls 1-6)")
    ap.add_argument("--question-order", type=float, default=0.0,
                    help="probability that a multi-value / multi-query fact or kv-list question names its subjects or key "
                         "before the attribute (training forms only); 0 = off (calls 1-10)")
    ap.add_argument("--mixed-needles", type=float, default=0.0,
                    help="probability that a multi-value / multi-query fact episode draws each needle's phrasing on its "
                         "own; 0 = off (calls 1-10)")
    ap.add_argument("--answer-weight", type=float, default=mix.ANSWER_WEIGHT,
                    help="loss weight of answer tokens and their end token (prose and prompts weigh 1); "
                         "%g = calls 1-12; call 13 used 20, the committed model's last call (14) 40" % mix.ANSWER_WEIGHT)
    ap.add_argument("--full-episodes", type=float, default=0.0,
                    help="probability that a training sequence starts with one episode as long as the whole sequence, "
                         "so that needles stand up to a sequence before their question (coverage.py); 0 = off (calls 1-20)")
    ap.add_argument("--workers", type=int, default=13)
    ap.add_argument("--eval-every", type=float, default=90)
    ap.add_argument("--eval-n", type=int, default=16, help="samples per cell, final table")
    ap.add_argument("--train-tokenizer", action="store_true")
    ap.add_argument("--init", default="", help="model dir to continue from (bf16 weights)")
    ap.add_argument("--final-greedy", action="store_true", help="final table by real greedy decoding")
    ap.add_argument("--grow-after", default="", help="with --init: insert a new layer after these layer indices, e.g. 2,4")
    ap.add_argument("--warmup-restart", type=int, default=0, help="with --init: warmup steps")
    ap.add_argument("--final-lengths", default="1024,2048,4096,8192", help="lengths of the final table")
    ap.add_argument("--no-final-table", action="store_true",
                    help="skip the final accuracy table (a piece of a longer run: held-out loss and save only)")
    # One run in several calls: the lr schedule and the --phases curriculum span --schedule-total
    # seconds of training over all pieces; this piece starts --schedule-offset seconds in. With
    # --state, the fp32 weights, the optimiser and the run's clock are kept in a file between
    # pieces (on the GPU machine: it survives while the machine stays held) and override --init
    # and --schedule-offset when present; without it a piece is a warm restart of --init.
    ap.add_argument("--schedule-total", type=float, default=0, help="seconds of training over all pieces (0: this call)")
    ap.add_argument("--schedule-offset", type=float, default=0, help="seconds of the run before this piece")
    ap.add_argument("--last-piece", action="store_true", help="end the schedule with this piece, whatever its planned total")
    ap.add_argument("--state", default="", help="file for the full training state between pieces")
    args = ap.parse_args()
    resumable = (args.state and os.path.exists(args.state)) or args.init
    if args.schedule_offset > 0 and not resumable:
        # A later piece whose state file is gone (another machine) must not quietly start a new model.
        ap.error("--schedule-offset %g: no --state file (%s) and no --init model to continue" % (
            args.schedule_offset, args.state or "none given"))
    if not 0.0 <= args.full_episodes <= 1.0:
        ap.error("--full-episodes: a probability in [0, 1], not %g" % args.full_episodes)
    os.makedirs(args.out, exist_ok=True)
    if args.state:
        os.makedirs(os.path.dirname(os.path.abspath(args.state)), exist_ok=True)
    # private scratch folders, so that two calls can train side by side on one GPU
    work = tempfile.mkdtemp(prefix="ltri_train-")
    device = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    record = {"args": vars(args), "steps": [], "evals": []}

    text = read_xz(os.path.join(args.data, "train.txt.xz"))
    val_text = read_xz(os.path.join(args.data, "val.txt.xz"))
    log("train prose %.1f MB, val %.2f MB" % (len(text) / 1e6, len(val_text) / 1e6))
    tok_path = os.path.join(work, "tokenizer.json")
    committed = os.path.join(REPO, "models", "ltri-demo", "tokenizer.json")
    if os.path.exists(committed) and not args.train_tokenizer:
        Tokenizer.from_file(committed).save(tok_path)
        log("tokenizer: committed", committed)
    else:
        rng = random.Random(7)
        pieces = []
        for _ in range(600):  # 600 x 64 KB slices spread over all sources
            s = rng.randrange(0, len(text) - 65536)
            pieces.append(text[s:s + 65536])
        train_tokenizer("".join(pieces), tok_path)
        log("tokenizer: trained on %.1f MB" % (sum(map(len, pieces)) / 1e6))
    tok = Tokenizer.from_file(tok_path)
    bos = tok.token_to_id(SPECIALS[0])
    assert bos == 0 and tok.token_to_id(SPECIALS[1]) == 1

    words = tasks.Words(os.path.join(args.data, "american-english"))
    n_checked = phrase_grammar.check_no_heldout(300, words_path=os.path.join(args.data, "american-english"))
    log("held-out check: %d generated training texts, no held-out template or word" % n_checked)
    n_chains = tasks.check_chain_order(200, words_path=os.path.join(args.data, "american-english"))
    log("chain-order check: %d variable chains, each in chain order in its text" % n_chains)
    prose = tasks.Prose(text)
    heldout_paths = tasks.heldout_prose_paths()

    # Held-out loss streams: the val split of the training sources, and Austen (other domain).
    val_ids = tok.encode(val_text, add_special_tokens=False).ids
    austen = open(heldout_paths[0], encoding="utf-8").read()[:600000]
    austen_ids = tok.encode(austen, add_special_tokens=False).ids
    log("val tokens %d (%.2f chars/token), austen tokens %d" % (len(val_ids), len(val_text) / len(val_ids), len(austen_ids)))

    # Evaluation prompts, built once up front in a process pool (also catches task bugs early).
    fam_all = [f[0] for f in tasks.EVAL_FAMILIES]
    fam_watch = ["passkey", "niah_multikey_2", "niah_multivalue", "kv", "fact_single", "fact_single_heldout",
                 "fact_multivalue_heldout", "vt_phrased"]
    final_lengths = [int(x) for x in args.final_lengths.split(",")]
    watch = gpu_eval.build_suite(tok_path, os.path.join(args.data, "american-english"), heldout_paths,
                                 fam_watch, [1024, 4096, 8192], 8)
    final = [] if args.no_final_table else gpu_eval.build_suite(
        tok_path, os.path.join(args.data, "american-english"), heldout_paths, fam_all, final_lengths, args.eval_n)
    log("eval prompts: %d watch, %d final" % (len(watch), len(final)))

    state = None
    if args.state and os.path.exists(args.state):
        state = torch.load(args.state, map_location="cpu", weights_only=False)
        model = build_model(args)
        model.load_state_dict(state["model"])
        log("resumed from %s: step %d, %.0f s and %.1fM tokens of the run" % (
            args.state, state["step"], state["run_seconds"], state["run_tokens"] / 1e6))
    elif args.init:
        from transformers import LlamaForCausalLM
        model = LlamaForCausalLM.from_pretrained(args.init, dtype=torch.float32, attn_implementation="sdpa")
        if args.grow_after:
            probe = torch.randint(2, VOCAB, (1, 64))
            with torch.no_grad():
                before = model(probe).logits
            model = grow_depth(model, {int(x) for x in args.grow_after.split(",")})
            with torch.no_grad():
                diff = (model(probe).logits - before).abs().max().item()
            log("grown to %d layers (new after %s); logits change %.2e" % (
                model.config.num_hidden_layers, args.grow_after, diff))
            assert diff < 1e-4, "growth must not change the function"
    else:
        model = build_model(args)
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log("model params %.2fM" % (n_params / 1e6))
    record["params"] = n_params
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    body = model.model
    warmup = args.warmup_restart if args.init and args.warmup_restart else args.warmup
    step0 = 0
    offset = args.schedule_offset
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        step0, offset = state["step"], state["run_seconds"]
        warmup = 1  # the optimiser's moments came along: no new warm-up

    phases = [(float(f), int(L)) for f, L in (p.split(":") for p in args.phases.split(","))]
    t_train0 = time.time()
    train_end = T0 + args.budget - args.final_reserve
    train_secs = train_end - t_train0
    total = args.schedule_total if args.schedule_total and not args.last_piece else offset + train_secs
    total = max(total, offset + 1.0)
    log("training for %.0f s (run seconds %.0f-%.0f of %.0f), phases %s" % (
        train_secs, offset, offset + train_secs, total, phases))
    step, tokens, last_eval = step0, 0, time.time()
    ema = None
    for pi, (frac, L) in enumerate(phases):
        # Phase boundaries are fractions of the whole run; this piece plays the part that falls in it.
        phase_end = t_train0 + total * sum(f for f, _ in phases[:pi + 1]) - offset
        if phase_end - time.time() < (15 if pi + 1 < len(phases) else 0):
            continue  # over, or too short a remainder to start its loader for: the next phase starts now
        phase_end = min(phase_end, train_end)
        batch = max(1, args.tokens_per_step // L)
        loader = make_loader(SeqStream(tok_path, prose, words, L, args.seed * 10 + pi, bos, args.mix, args.followups,
                                         args.open_slots, args.question_order, args.mixed_needles, args.answer_weight,
                                         args.full_episodes),
                             batch, args.workers)
        log("phase %d: seq %d x batch %d" % (pi, L, batch))
        t_phase = time.time()
        while time.time() < phase_end:
            ids, w = next(loader)
            ids = ids.to(device, non_blocking=True).long()
            w = w.to(device, non_blocking=True)
            frac_done = (offset + time.time() - t_train0) / total
            lr = args.lr * min(1.0, (step - step0 + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac_done))))
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast("cuda", dtype=torch.bfloat16):
                h = body(input_ids=ids[:, :-1]).last_hidden_state
                logits = model.lm_head(h)
            ce = F.cross_entropy(logits.float().reshape(-1, VOCAB), ids[:, 1:].reshape(-1), reduction="none")
            wt = w[:, 1:].reshape(-1)
            loss = (ce * wt).sum() / wt.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            tokens += ids[:, 1:].numel()
            if step % 50 == 0:
                with torch.no_grad():
                    amask = wt > 1
                    plain = (ce[~amask].mean().item(), ce[amask].mean().item() if amask.any() else float("nan"))
                el = time.time() - t_train0
                rec = dict(step=step, t=round(el, 1), seq=L, lr=lr, loss=loss.item(), lm=plain[0], ans=plain[1],
                           tokens=tokens, tok_s=round(tokens / el))
                record["steps"].append(rec)
                log("step %5d seq %d loss %.3f lm %.3f ans %.3f lr %.2e %.0fK tok/s" % (
                    step, L, rec["loss"], rec["lm"], rec["ans"], lr, tokens / el / 1e3))
            if time.time() - last_eval > args.eval_every:
                last_eval = time.time()
                items = gpu_eval.teacher_forced(model, [dict(it) for it in watch if it["length"] <= max(L, 1024)], device)
                acc = gpu_eval.table(items, fam_watch, [1024, 4096, 8192])
                vl = gpu_eval.lm_loss(model, val_ids, 1024, device, max_seqs=64)
                record["evals"].append(dict(step=step, t=round(time.time() - t_train0, 1), val_loss=vl,
                                            acc={"%s@%d" % k: v for k, v in acc.items()}))
                log("eval step %d val_loss %.3f " % (step, vl) + " ".join("%s@%d=%.2f" % (k[0], k[1], v) for k, v in acc.items()))
        del loader
        log("phase %d done in %.0f s" % (pi, time.time() - t_phase))
    record["train_seconds"] = round(time.time() - t_train0, 1)
    record["train_tokens"] = tokens
    record["train_steps"] = step - step0
    run_tokens = tokens + (state["run_tokens"] if state is not None else 0)
    record["run_seconds"] = round(offset + record["train_seconds"], 1)
    record["run_tokens"] = run_tokens
    log("trained %d steps, %.1fM tokens in %.0f s (run: %d steps, %.1fM tokens, %.0f s)" % (
        step - step0, tokens / 1e6, record["train_seconds"], step, run_tokens / 1e6, record["run_seconds"]))
    if args.state:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "run_seconds": record["run_seconds"], "run_tokens": run_tokens}, args.state + ".tmp")
        os.replace(args.state + ".tmp", args.state)
        log("state saved to %s" % args.state)

    # Final: held-out loss, accuracy table, a few real greedy decodes, save.
    record["val_loss_1024"] = gpu_eval.lm_loss(model, val_ids, 1024, device)
    record["austen_loss_1024"] = gpu_eval.lm_loss(model, austen_ids, 1024, device)
    log("held-out loss: val split %.3f, austen %.3f" % (record["val_loss_1024"], record["austen_loss_1024"]))
    if args.no_final_table:
        save(model, tok_path, args, record)
        log("done (no final table)")
        return
    items = gpu_eval.teacher_forced(model, [dict(it) for it in final], device)
    acc = gpu_eval.table(items, fam_all, final_lengths)
    record["final_acc_teacher_forced"] = {"%s@%d" % k: v for k, v in acc.items()}
    md = gpu_eval.markdown(acc, fam_all, final_lengths, args.eval_n)
    stops = [it["stops"] for it in items if it["ok"]]
    record["stop_rate"] = sum(stops) / max(1, len(stops))
    log("greedy stops with <|end_of_text|> after %.1f%% of the correct answers" % (100 * record["stop_rate"]))
    record["final_table_teacher_forced_md"] = md
    record["final_items_tf"] = [dict(name=it["name"], length=it["length"], depth=it["depth"], ok=it["ok"]) for it in items]
    log("accuracy (PyTorch, full attention, GPU, teacher-forced greedy)\n" + md)
    if args.final_greedy:
        # Real greedy decoding, whole answers (every expected value a substring of the output).
        items = gpu_eval.greedy_all(model, tok, [dict(it) for it in final], device, T0 + args.budget - 12)
        acc = gpu_eval.table(items, fam_all, final_lengths)
        record["final_acc_greedy"] = {"%s@%d" % k: v for k, v in acc.items()}
        md = gpu_eval.markdown(acc, fam_all, final_lengths, args.eval_n)
        record["final_table_greedy_md"] = md
        record["final_items_greedy"] = [dict(name=it["name"], length=it["length"], depth=it["depth"], ok=it["ok"],
                                             text=it.get("text", "")) for it in items]
        done = sum(it["ok"] is not None for it in items)
        log("accuracy (PyTorch, full attention, GPU, greedy decoding, substring match; %d/%d samples done)\n%s" % (
            done, len(items), md))
    save(model, tok_path, args, record)
    log("done")


def save(model, tok_path, args, record):
    mdir = tempfile.mkdtemp(prefix="ltri-demo-")
    model.to(torch.bfloat16)
    model.generation_config.bos_token_id = 0
    model.generation_config.eos_token_id = [1, 0]  # end of text; BOS as a guard (see DEMO notes)
    model.save_pretrained(mdir, max_shard_size="14MB")
    with open(os.path.join(mdir, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(), f, indent=2)
    Tokenizer.from_file(tok_path).save(os.path.join(mdir, "tokenizer.json"))
    with open(os.path.join(mdir, "train_log.json"), "w") as f:
        json.dump(record, f, indent=1)
    shards = [n for n in os.listdir(mdir) if n.endswith(".safetensors")]
    for n in shards:
        os.replace(os.path.join(mdir, n), os.path.join(args.out, n))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for n in sorted(os.listdir(mdir)):
            tar.add(os.path.join(mdir, n), arcname=n)
    with open(os.path.join(args.out, "meta.tar.gz"), "wb") as f:
        f.write(buf.getvalue())
    log("saved %d shards + meta.tar.gz to %s" % (len(shards), args.out))


if __name__ == "__main__":
    main()
