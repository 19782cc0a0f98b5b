"""A process reward model (PRM): step labels by rollout, the model, its scores.

Papers: Math-Shepherd (Wang et al. 2023, arXiv 2312.08935) labels a step without
people: from the prefix that ends with the step, sample k continuations and ask
whether they reach the gold answer -- *hard* label: any of them does, *soft*:
the fraction that do; the last step's label is the trace's own verdict. Lightman
et al. 2023 ("Let's verify step by step", arXiv 2305.20050) train the PRM to
predict a step's label at the token that ends it and score a solution by its
steps' product (or minimum).

The model here: the policy's own architecture and weights (the checkpoint that
wrote the traces) with a one-logit token-classification head
(``AutoModelForTokenClassification``, ``num_labels=1``), read at the last token
of every step (the newline is the step tag) and trained with binary cross-entropy
on the rollout labels. Why not a separate tiny classifier: the policy already
knows the scratchpad format and, through the task's position ids (arithmetic's
position coupling), which digits go together; a classifier from scratch would
have to learn that alignment from a few thousand labels. The saved directory is
an ordinary HF model, so any method can score with it (``scorer: prm`` with
``prm: <dir>``, ``verifiers/scorers.py``) and evaluation can rerank best-of-N
with it (``eval.scorer: prm``).

Where we depart: labels come from the policy of the same iteration (Math-Shepherd
uses a separate completer model) and the PRM is small and retrained each
iteration (``methods/star_prm.py``); its step scores are checked against the
exact step checker where the task has one (``Task.step_checks``), a validation
the papers could not run.
"""

from __future__ import annotations

import os
import random
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Literal

ROLLOUT = "step_rollout"  # the phase of rollout rows in samples.parquet
MAX_STEPS = 16  # steps labeled per trace (a runaway completion has hundreds of lines)


# --- step labels by rollout -------------------------------------------------------
def prefixes(task, completion: str) -> list[str]:
    """The prefixes that end with step 1, 2, ..., n-1 (the last step's label is the verdict)."""
    steps = task.steps(completion)
    return ["".join(steps[:j]) for j in range(1, min(len(steps) - 1, MAX_STEPS) + 1)]


def rollouts(it, traces: list[dict], k: int, *, temperature: float, max_new_tokens: int) -> list[dict]:
    """``k`` continuations of every step prefix of every trace, sampled unhinted from
    ``it``'s model, as rows: ``completion`` is prefix + continuation (so the verify
    stage scores the whole trace), ``rollout_prefix`` what was forced, ``rollout_of``
    and ``rollout_step`` the trace and step it labels."""
    problems, prompts, meta = [], [], []
    for t in traces:
        p = it.problem_of(t)
        plain = it.task.prompt(p, hint=False)
        for j, prefix in enumerate(prefixes(it.task, t["completion"]), start=1):
            problems.append(p)
            prompts.append(plain + prefix)
            meta.append((t["sample_id"], j, plain, prefix))
    if not problems:
        return []
    rows = it.sample(problems, k, temperature=temperature, max_new_tokens=max_new_tokens, phase=ROLLOUT,
                     prompts=prompts)
    for i, r in enumerate(rows):
        trace, j, plain, prefix = meta[i // k]
        r.update(sample_id=f"{trace}/step{j}/{i % k}", prompt=plain, completion=prefix + r["completion"],
                 rollout_of=trace, rollout_step=j, rollout_prefix=prefix)
    return rows


def step_labels(task, problem_of, traces: list[dict], rolls: list[dict]) -> list[dict]:
    """One record per (trace, step): rollouts, how many reached the answer, the hard and
    soft labels, and the exact check where the task has one (``exact``, else None)."""
    reached: dict[tuple[str, int], list[bool]] = {}
    for r in rolls:
        reached.setdefault((r["rollout_of"], r["rollout_step"]), []).append(bool(r["correct"]))
    out = []
    for t in traces:
        steps = task.steps(t["completion"])
        exact = task.step_checks(problem_of(t), t["completion"])
        for j in range(1, len(steps) + 1):
            last = j == len(steps)
            hits = [bool(t["correct"])] if last else reached.get((t["sample_id"], j), [])
            if hits:
                out.append(_label(t, steps, j, hits, "verdict" if last else "rollout", exact))
    return out


def checker_labels(task, problem_of, traces: list[dict]) -> list[dict]:
    """Step labels from a labeler instead of rollouts, as Lightman et al. trained their PRM
    on people's step labels (PRM800K): here the task's exact step check
    (``Task.step_checks``) labels the same steps rollouts would (the first ``MAX_STEPS``
    and the last); hard = soft = the check. The records are ``step_labels``' with
    ``source`` "checker" and no rollouts, so the PRM trains on them unchanged."""
    out = []
    for t in traces:
        steps = task.steps(t["completion"])
        exact = task.step_checks(problem_of(t), t["completion"])
        if exact is None:
            raise ValueError(f"prm: labels: checker needs a task with exact step checks (task {task.name!r} has none)")
        for j in range(1, len(steps) + 1):
            if j <= MAX_STEPS or j == len(steps):
                out.append(_label(t, steps, j, [exact[j - 1]], "checker", exact))
    return out


def _label(t: dict, steps: list[str], j: int, hits: list[bool], source: str, exact) -> dict:
    """The step-label record of step ``j`` of trace ``t`` (``hits``: which rollouts, or the
    one verdict, reached the answer)."""
    return {"trace_id": t["sample_id"], "problem_id": t["problem_id"], "iteration": t["iteration"],
            "step": j, "steps": len(steps), "prefix": "".join(steps[:j]), "prompt": t["prompt"],
            "rollouts": len(hits) if source == "rollout" else 0, "reached": sum(hits),
            "hard": float(any(hits)), "soft": sum(hits) / len(hits),
            "source": source, "exact": None if exact is None else exact[j - 1]}


# --- the model --------------------------------------------------------------------
def _encode(tok, tracker, prompt: str, completion: str, ends: list[int]):
    """Token ids, position ids and the index of the token that ends each step
    (``ends``: character offsets into ``completion``)."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    enc = tok(completion, add_special_tokens=False, return_offsets_mapping=True)
    c, offsets = enc["input_ids"], enc["offset_mapping"]
    ids = p + c
    from selftaught.monitor.perplexity import positions  # the same position ids as every scorer

    pos = positions(tok, tracker, ids)
    at = [len(p) + max([i for i, (s, _) in enumerate(offsets) if s < e] or [0]) for e in ends]
    return ids, pos, at


def step_ends(task, completion: str) -> list[int]:
    """Character offset just past each step."""
    out, n = [], 0
    for s in task.steps(completion):
        n += len(s)
        out.append(n)
    return out


def _batch(encoded, pad: int, device):
    import torch

    width = max(len(e[0]) for e in encoded)
    ids = torch.full((len(encoded), width), pad)
    pos = torch.zeros((len(encoded), width), dtype=torch.long)
    attn = torch.zeros((len(encoded), width), dtype=torch.long)
    for r, (x, q, *_) in enumerate(encoded):  # right padding: (ids, positions, ...)
        ids[r, : len(x)], pos[r, : len(q)], attn[r, : len(x)] = torch.tensor(x), torch.tensor(q), 1
    return ids.to(device), pos.to(device), attn.to(device)


@lru_cache(maxsize=2)
def _load(path: str):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from selftaught import hardware
    from selftaught.models.loading import load_kwargs, quiet_hf

    quiet_hf()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForTokenClassification.from_pretrained(path, **load_kwargs())
    return model.to(hardware.resolved().torch_device()).eval(), tok


def step_scores(prm_dir: str, task, prompts: list[str], completions: list[str], batch_size: int = 64) -> list[list[float]]:
    """P(step is on a path to the answer) for each step of each completion, in order."""
    import torch

    model, tok = _load(str(prm_dir))
    out: list[list[float]] = []
    with torch.inference_mode():
        for i in range(0, len(prompts), batch_size):
            chunk = [_encode(tok, task.position_tracker, p, c, step_ends(task, c))
                     for p, c in zip(prompts[i : i + batch_size], completions[i : i + batch_size])]
            ids, pos, attn = _batch(chunk, tok.pad_token_id, model.device)
            probs = torch.sigmoid(model(input_ids=ids, attention_mask=attn, position_ids=pos).logits[..., 0].float())
            out += [probs[r, at].tolist() for r, (_, _, at) in enumerate(chunk)]
    return out


def aggregate(scores: list[float], how: Literal["min", "prod"] = "min") -> float:
    """A trace's score from its steps' (Lightman et al.: product or minimum); no steps: 0."""
    if not scores:
        return 0.0
    if how == "min":
        return min(scores)
    out = 1.0
    for s in scores:
        out *= s
    return out


def rewards(prm_dir: str, task, rows: list[dict], how: Literal["min", "prod"] = "min") -> list[float]:
    """Each row's trace score in [0, 1] (``scorer: prm``, best-of-N reranking); rows carry
    prompt and completion; each row also gets its ``prm_steps``."""
    scores = step_scores(prm_dir, task, [r["prompt"] for r in rows], [r["completion"] for r in rows])
    for r, s in zip(rows, scores):
        r["prm_steps"] = [round(x, 6) for x in s]
    return [aggregate(s, how) for s in scores]


def dir_for(it, prm_dir: str | None = None) -> str:
    """The PRM to rerank with at evaluation: ``prm_dir``, else the one iteration ``it``
    trained (``<run>/iter_k/prm``, methods/star_prm.py)."""
    path = Path(prm_dir) if prm_dir else Path(it.out_dir).parent / "prm"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"eval.scorer prm: no process reward model at {path} (set eval.prm: <dir>)")
    return str(path)


def train(init: str, labels: list[dict], out_dir: str | Path, task, *, label: Literal["hard", "soft"] = "hard",
          steps: int = 150, lr: float = 1e-3, batch_size: int = 32, seed: int = 0) -> dict:
    """Fine-tune ``init`` with a fresh one-logit head on the step labels (BCE at each
    step's last token) into ``out_dir``, atomically; returns ``prm/`` metrics."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from selftaught import hardware
    from selftaught.models.loading import load_kwargs, quiet_hf

    quiet_hf()
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(init)
    model = AutoModelForTokenClassification.from_pretrained(init, num_labels=1, **load_kwargs(for_training=True))
    model.config.pad_token_id = tok.pad_token_id
    device = hardware.resolved().torch_device()
    model.to(device).train()
    examples = _examples(tok, task, labels, label)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    rng, losses = random.Random(seed), []
    for step in range(steps):
        chunk = rng.sample(examples, min(batch_size, len(examples)))
        ids, pos, attn = _batch(chunk, tok.pad_token_id, device)
        logits = model(input_ids=ids, attention_mask=attn, position_ids=pos).logits[..., 0].float()
        picked = torch.cat([logits[r, at] for r, (_, _, at, _) in enumerate(chunk)])
        target = torch.tensor([y for *_, ys in chunk for y in ys], device=device)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(picked, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    _save(model, tok, Path(out_dir))
    tail = losses[-max(1, steps // 10):]
    return {"prm/train_steps": steps, "prm/train_loss": sum(tail) / len(tail), "prm/train_traces": len(examples),
            "prm/train_labels": sum(len(e[3]) for e in examples),
            "prm/train_positive_frac": sum(l[label] >= 0.5 for l in labels) / max(1, len(labels))}


def _examples(tok, task, labels: list[dict], label: str) -> list[tuple]:
    """One training example per trace: (ids, positions, step-end indices, targets)."""
    by_trace: dict[str, list[dict]] = {}
    for l in labels:
        by_trace.setdefault(l["trace_id"], []).append(l)
    out = []
    for steps in by_trace.values():
        steps.sort(key=lambda l: l["step"])
        last = steps[-1]
        completion = last["prefix"]
        ends = [len(l["prefix"]) for l in steps]
        ids, pos, at = _encode(tok, task.position_tracker, last["prompt"], completion, ends)
        out.append((ids, pos, at, [float(l[label]) for l in steps]))
    if not out:
        raise ValueError("prm: no step labels to train on")
    return out


def _save(model, tok, out: Path) -> None:
    """Save to a temporary directory, then rename it into place."""
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    _load.cache_clear()


# --- how good it is where the truth is known ----------------------------------------
def step_quality(pred: list[list[float]], exact: list[list[bool] | None], threshold: float = 0.5,
                 prefix: str = "prm/step") -> dict:
    """Precision and recall of flagging *wrong* steps (score < threshold) against the
    exact checker, and accuracy over all steps; empty when nothing is checkable."""
    tp = fp = fn = tn = 0
    for scores, truth in zip(pred, exact):
        if truth is None:
            continue
        for s, ok in zip(scores, truth):
            flagged = s < threshold
            tp += flagged and not ok
            fp += flagged and ok
            fn += (not flagged) and not ok
            tn += (not flagged) and ok
    n = tp + fp + fn + tn
    if not n:
        return {}
    return {f"{prefix}_precision": tp / (tp + fp) if tp + fp else None,
            f"{prefix}_recall": tp / (tp + fn) if tp + fn else None,
            f"{prefix}_acc": (tp + tn) / n, f"{prefix}_n": n, f"{prefix}_wrong_n": tp + fn}


def trace_quality(traces: list[dict], threshold: float = 0.5, score: str = "prm_score") -> dict:
    """What selection sees: among *correct* traces (the only ones a gold-checked filter
    decides on), the share with exact-right working the PRM rejects (``score`` below
    ``threshold``), and the share with wrong working it rejects; empty without exact checks."""
    valid = [t[score] < threshold for t in traces if t["correct"] and t.get("steps_ok") is True]
    wrong = [t[score] < threshold for t in traces if t["correct"] and t.get("steps_ok") is False]
    out = {}
    if valid:
        out.update({"prm/valid_rejected_frac": sum(valid) / len(valid), "prm/valid_n": len(valid)})
    if wrong:
        out.update({"prm/wrong_rejected_frac": sum(wrong) / len(wrong), "prm/wrong_n": len(wrong)})
    return out


def label_quality(labels: list[dict], label: str = "hard") -> dict:
    """The rollout labels themselves against the exact checker (label < 0.5 flags a wrong step)."""
    rolled = [l for l in labels if l["source"] == "rollout" and l["exact"] is not None]
    return step_quality([[l[label]] for l in rolled], [[l["exact"]] for l in rolled], prefix=f"prm/label_{label}")
