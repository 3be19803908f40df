"""Evaluation on the GPU with PyTorch (full attention): retrieval accuracy and held-out loss.

Accuracy is measured by teacher forcing: the prompt + expected answer is run once and the
sample counts as correct when the greedy (argmax) choice at every answer position is the
expected token. That is exactly "greedy decoding starts with the expected answer", so it is
at most as lenient as RULER's substring match; a few samples per cell are also decoded for
real (HF generate, greedy) and scored by substring match to show that the two agree.
"""

import math
import multiprocessing as mp
import random

import torch
import torch.nn.functional as F

import tasks

_G = {}


def _init_worker(tok_path, words_path, prose_paths):
    from tokenizers import Tokenizer
    _G["tok"] = Tokenizer.from_file(tok_path)
    _G["words"] = tasks.Words(words_path)
    _G["prose"] = tasks.Prose.from_files(prose_paths)


def _make(args):
    name, length, index, n = args
    tok = _G["tok"]
    s = tasks.make_eval_sample(name, length, index, n, _G["words"], _G["prose"],
                               lambda t: len(tok.encode(t).ids))
    full = tok.encode(s.prompt + s.answer)  # with BOS, as the engine sees the prompt
    a0, a1 = len(s.prompt), len(s.prompt) + len(s.answer) - 1
    ans = [i for i, (st, en) in enumerate(full.offsets) if a0 <= st < a1 and en > st]
    if not ans:
        raise RuntimeError("no answer tokens for %s" % name)
    return dict(name=name, length=length, index=index, ids=full.ids, ans_from=ans[0],
                ans_to=ans[-1] + 1, expected=s.expected, scoring=s.scoring, depth=s.depths[0],
                prompt_len=ans[0], max_new=tasks.max_new_tokens(s))


def build_suite(tok_path, words_path, prose_paths, families, lengths, n, processes=14):
    jobs = [(f, L, i, n) for f in families for L in lengths for i in range(n)]
    ctx = mp.get_context("fork")
    with ctx.Pool(processes, initializer=_init_worker, initargs=(tok_path, words_path, prose_paths)) as pool:
        return pool.map(_make, jobs, chunksize=4)


@torch.no_grad()
def teacher_forced(model, items, device, max_batch_tokens=65536):
    """Marks every item with item['ok'] (bool). Items are grouped by length for batching."""
    model.eval()
    items = sorted(items, key=lambda it: len(it["ids"]))
    i = 0
    while i < len(items):
        L = len(items[i]["ids"])
        bs = max(1, max_batch_tokens // max(L, 1))
        batch = items[i:i + bs]
        Lmax = max(len(it["ids"]) for it in batch)
        x = torch.zeros(len(batch), Lmax, dtype=torch.long)
        for b, it in enumerate(batch):  # right padding: causal attention never sees it
            x[b, :len(it["ids"])] = torch.tensor(it["ids"])
        x = x.to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            h = model.model(input_ids=x).last_hidden_state
        for b, it in enumerate(batch):
            pos = torch.arange(it["ans_from"] - 1, it["ans_to"] - 1, device=device)
            logits = model.lm_head(h[b, pos].float())
            pred = logits.argmax(-1).tolist()
            it["ok"] = pred == it["ids"][it["ans_from"]:it["ans_to"]]
            # After the answer's final ".", does greedy decoding stop (<|end_of_text|>, id 1)?
            last = model.lm_head(h[b, len(it["ids"]) - 1].float())
            it["stops"] = int(last.argmax(-1).item()) == 1
        i += len(batch)
    model.train()
    return items


@torch.no_grad()
def greedy_check(model, tok, items, device, max_new=24):
    """Real greedy decoding for a few items; returns list of (name, length, ok_tf, ok_substring, text)."""
    model.eval()
    out = []
    for it in items:
        x = torch.tensor([it["ids"][:it["prompt_len"]]], device=device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            g = model.generate(x, max_new_tokens=max_new, do_sample=False, pad_token_id=1, eos_token_id=[0, 1])
        text = tok.decode(g[0, x.shape[1]:].tolist())
        out.append(dict(name=it["name"], length=it["length"], ok_tf=bool(it.get("ok")),
                        ok_sub=score_text(text, it["expected"], it["scoring"]), text=text[:120]))
    model.train()
    return out


@torch.no_grad()
def greedy_all(model, tok, items, device, deadline, max_batch_tokens=131072):
    """Batched greedy decoding (left-padded prompts, HF generate with KV cache), scored by whole
    answers (score_text). Sets item['ok'] and item['text']; shortest prompts first; items not reached
    before `deadline` (time.time()) keep ok=None."""
    import time
    model.eval()
    items = sorted(items, key=lambda it: it["prompt_len"])
    for it in items:
        it["ok"] = None
    i = 0
    while i < len(items) and time.time() < deadline:
        L = items[i]["prompt_len"]
        bs = max(1, max_batch_tokens // L)
        batch = items[i:i + bs]
        Lmax = max(it["prompt_len"] for it in batch)
        x = torch.full((len(batch), Lmax), 1, dtype=torch.long)
        mask = torch.zeros(len(batch), Lmax, dtype=torch.long)
        for b, it in enumerate(batch):
            n = it["prompt_len"]
            x[b, Lmax - n:] = torch.tensor(it["ids"][:n])
            mask[b, Lmax - n:] = 1
        max_new = max(it["max_new"] for it in batch)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            g = model.generate(x.to(device), attention_mask=mask.to(device), max_new_tokens=max_new,
                               do_sample=False, pad_token_id=1, eos_token_id=[0, 1])
        for b, it in enumerate(batch):
            new = g[b, Lmax:].tolist()
            cut = [k for k, t in enumerate(new) if t in (0, 1)]
            text = tok.decode(new[:cut[0]] if cut else new)
            it["text"] = text[:200]
            it["ok"] = score_text(text, it["expected"], it["scoring"])
        i += len(batch)
    model.train()
    return items


def score_text(text, expected, scoring):
    """Whole answer: every expected value a case-insensitive substring of the text (a RULER
    string_match_all score of 1; RULER itself averages the share found); passkey: first number."""
    if scoring == "first_number":
        import re
        m = re.search(r"\d+", text)
        return bool(m) and m.group(0) == expected[0]
    t = text.lower()
    return all(e.lower() in t for e in expected)


def table(items, families, lengths):
    acc = {}
    for f in families:
        for L in lengths:
            cell = [it["ok"] for it in items if it["name"] == f and it["length"] == L and it["ok"] is not None]
            if cell:
                acc[(f, L)] = sum(cell) / len(cell)
    return acc


def markdown(acc, families, lengths, n):
    head = "| family | " + " | ".join("%dK" % (L // 1024) for L in lengths) + " |"
    lines = [head, "|---" * (len(lengths) + 1) + "|"]
    for f in families:
        row = ["%3.0f" % (100 * acc[(f, L)]) if (f, L) in acc else "-" for L in lengths]
        lines.append("| %s | %s |" % (f, " | ".join(row)))
    return "\n".join(lines) + "\n(%% correct, %d samples per cell)" % n


@torch.no_grad()
def lm_loss(model, token_ids, seq_len, device, max_seqs=256):
    """Mean next-token loss (nats) over consecutive seq_len windows of a token stream."""
    model.eval()
    n = min(max_seqs, (len(token_ids) - 1) // seq_len)
    if n == 0:
        return float("nan")
    total, count = 0.0, 0
    for s in range(0, n, 16):
        rows = [token_ids[(s + j) * seq_len:(s + j) * seq_len + seq_len + 1] for j in range(min(16, n - s))]
        x = torch.tensor(rows, device=device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            h = model.model(input_ids=x[:, :-1]).last_hidden_state
            logits = model.lm_head(h)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
        total += loss.item()
        count += x[:, 1:].numel()
    model.train()
    return total / count
