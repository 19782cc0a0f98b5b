"""Perplexity of a model on a fixed set of natural examples -- the collapse metric
of Shumailov et al. 2024 (Nature 631, "AI models collapse when trained on
recursively generated data"): a model trained on its own outputs forgets the
tails of the original distribution, and its perplexity on original data rises.

Natural examples are prompt/completion pairs written by people or labeled by the
task, never by the model: the task's labeled seed set (``seed_set()``, rationale
as completion; the built-in arithmetic task's 1-3 digit scratchpads), else pool
problems that carry a ``rationale``. The loss is on the completion only (as the
SFT trainer trains), with an end-of-sequence token, and with the task's own
position ids when it has a ``position_tracker`` (position coupling), exactly as
``trainers/sft.py`` and ``backends/hf.py`` feed the model.

The set is fixed for the whole run (a seeded choice that does not depend on the
iteration), and ``mix.py`` never mixes these examples into training, so the
number stays comparable across iterations.

The model runs where the run's ``hardware:`` put it (``load_pretrained``): on a
GPU box the pass over a 7B model takes seconds there, minutes on the CPU.
"""

from __future__ import annotations

import math
import random


def natural_problems(task) -> list:
    """Problems with a human/labeled rationale: the seed set, else rationale-bearing pool problems.
    Held-out problems are never natural data (they would leak into training through the mix)."""
    held_out = {p.id for p in task.eval_set()}
    seeds = [p for p in (task.seed_set() or []) if p.rationale]
    found = seeds or [p for p in task.train_pool() if p.rationale]
    return [p for p in found if p.id not in held_out]


def fixed_set(problems: list, n: int, seed: int = 0) -> list:
    """The ``n`` problems perplexity is measured on: a seeded choice, sorted by id."""
    ordered = sorted(problems, key=lambda p: p.id)  # the choice must not depend on the input order
    chosen = ordered if len(ordered) <= n else random.Random(f"natural-ppl/{seed}").sample(ordered, n)
    return sorted(chosen, key=lambda p: p.id)


def _encode(tok, tracker, prompt: str, completion: str) -> tuple[list[int], list[int], list[int]]:
    """Token ids, labels (-100 on the prompt) and position ids of one example."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = p + c
    return ids, [-100] * len(p) + c, positions(tok, tracker, ids)


def positions(tok, tracker, ids: list[int]) -> list[int]:
    """Position ids of a token sequence: the task's (position coupling) or 0..n-1."""
    if tracker is None:
        return list(range(len(ids)))
    t = tracker()
    return [t.feed(x) for x in tok.convert_ids_to_tokens(ids)]


def padded_batch(chunk: list[tuple[list[int], list[int], list[int]]], pad_id: int, device):
    """(ids, labels, position ids, attention mask) of encoded examples, right-padded
    so the positions of real tokens are untouched, on ``device``."""
    import torch

    width = max(len(x) for x, _, _ in chunk)
    ids = torch.full((len(chunk), width), pad_id)
    labels = torch.full((len(chunk), width), -100)
    pos = torch.zeros((len(chunk), width), dtype=torch.long)
    attn = torch.zeros((len(chunk), width), dtype=torch.long)
    for r, (x, y, q) in enumerate(chunk):
        ids[r, : len(x)], labels[r, : len(y)], pos[r, : len(q)], attn[r, : len(x)] = (
            torch.tensor(x), torch.tensor(y), torch.tensor(q), 1)
    return tuple(t.to(device) for t in (ids, labels, pos, attn))


def perplexity(model_dir: str, pairs: list[tuple[str, str]], position_tracker=None, batch_size: int = 32) -> float:
    """exp(mean negative log-likelihood per completion token) of ``model_dir`` on (prompt, completion) pairs."""
    import torch

    from selftaught.models.loading import load_pretrained

    if not pairs:
        raise ValueError("perplexity: no natural examples")
    model, tok = load_pretrained(model_dir)
    encoded = [_encode(tok, position_tracker, p, c) for p, c in pairs]
    nll, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(encoded), batch_size):
            ids, labels, pos, attn = padded_batch(encoded[i : i + batch_size], tok.pad_token_id, model.device)
            logits = model(input_ids=ids, attention_mask=attn, position_ids=pos).logits.float()
            target = labels[:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100, reduction="sum")
            nll += float(losses)
            count += int((target != -100).sum())
    return math.exp(nll / count)


def natural_perplexity(model_dir: str, task, n: int = 128, seed: int = 0) -> float | None:
    """Perplexity on the task's fixed natural set; None when the task has no natural data."""
    problems = fixed_set(natural_problems(task), n, seed)
    if not problems:
        return None
    pairs = [(task.prompt(p), p.rationale) for p in problems]
    return perplexity(model_dir, pairs, task.position_tracker)
