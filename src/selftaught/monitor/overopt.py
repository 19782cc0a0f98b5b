"""Reward over-optimization watch (Gao, Schulman, Hilton 2022, "Scaling laws for
reward model overoptimization", arXiv 2210.10760): optimizing against a learned
proxy raises the proxy score while the true (gold) score first rises, then falls,
and the fall shows as distance from the starting policy grows.

When a learned scorer selects a run's training data -- a method whose ``scorer:``
is not the task verifier (``reward_model``, ``combined``, ``prm``, your own
function), or one that declares its proxy (``MethodConfig.proxy``: STaR + PRM's
per-iteration PRM) -- the monitor stage records, on the iteration's held-out
answers:

- ``overopt/proxy``: the proxy's mean score (reward models: the raw score, not
  the per-batch normalized one, so iterations compare);
- ``overopt/gold``: the verifier's accuracy on the same answers;
- ``overopt/kl``: the policy's mean per-token KL to the starting model,
  KL(pi_k || pi_0) summed over the vocabulary at every token of the policy's own
  answer to a fixed set of ``KL_PROMPTS`` held-out prompts (exact, no sampling).

The gate rule (``check``, hooked into ``detector.check``) fires a *high* warning
when the proxy rose and gold fell over the same ``gate.falling_for`` iterations
(moves under ``gate.falling_tolerance`` do not count), as the collapse rules do.
Nothing is measured, and the rule never fires, when selection reads only the verifier.
"""

from __future__ import annotations

import random

KL_PROMPTS = 64


def proxy(it):
    """``rows -> scores`` of the learned scorer that selects ``it``'s training data, or None."""
    from selftaught.methods import MethodConfig
    from selftaught.verifiers import scorers

    m = it.cfg.method
    own = m.proxy(it) if isinstance(m, MethodConfig) else None
    if own is not None:
        return own
    if not isinstance(m, scorers.ScorerFields) or m.scorer == "verifier":
        return None
    if m.scorer in ("reward_model", "combined"):  # the raw RM score: normalizing per batch hides a rise
        return lambda rows: scorers.reward_model_scores(m.reward_model, [r["prompt"] for r in rows],
                                                        [r["completion"] for r in rows], m.rm_batch_size)
    return lambda rows: scorers.rewards(rows, m, it.problem_of, it.task)


def measure(it, eval_rows: list[dict]) -> dict:
    """``overopt/`` metrics of iteration ``it`` (its model is the one it ended with); {} without a proxy."""
    score = proxy(it)
    if score is None:
        return {}
    held = [r for r in eval_rows if r.get("phase") == "eval"] or [r for r in eval_rows if r.get("final")]
    if not held:
        return {}
    values = score([dict(r) for r in held])
    return {"overopt/proxy": round(sum(values) / len(values), 6),
            "overopt/gold": round(sum(bool(r["correct"]) for r in held) / len(held), 6),
            "overopt/kl": round(kl_to_start(it, fixed_rows(held)), 6), "overopt/n": len(held)}


def fixed_rows(rows: list[dict], n: int = KL_PROMPTS) -> list[dict]:
    """The same ``n`` held-out problems every iteration (a seeded choice over sorted ids)."""
    by_id = {r["problem_id"]: r for r in rows}
    ids = sorted(by_id)
    chosen = ids if len(ids) <= n else sorted(random.Random("overopt/kl").sample(ids, n))
    return [by_id[i] for i in chosen]


def kl_to_start(it, rows: list[dict], batch_size: int = 32) -> float:
    """Mean per-token KL(policy || starting model) on the policy's answers in ``rows``."""
    if it.model == it.base_model or not rows:
        return 0.0
    import torch

    from selftaught.models.loading import load_pretrained
    from selftaught.monitor.perplexity import _encode, padded_batch  # the same ids, labels, positions as perplexity

    policy, tok = load_pretrained(it.model)
    start, _ = load_pretrained(it.base_model)
    encoded = [_encode(tok, it.task.position_tracker, r["prompt"], r["completion"] or "") for r in rows]
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(encoded), batch_size):
            ids, labels, pos, attn = padded_batch(encoded[i : i + batch_size], tok.pad_token_id, policy.device)
            lp = torch.log_softmax(policy(input_ids=ids, attention_mask=attn, position_ids=pos).logits.float(), -1)
            lq = torch.log_softmax(start(input_ids=ids, attention_mask=attn, position_ids=pos).logits.float(), -1)
            kl = (lp.exp() * (lp - lq)).sum(-1)[:, :-1]  # the distribution that predicts token t+1
            mask = labels[:, 1:] != -100
            total += float(kl[mask].sum())
            count += int(mask.sum())
    return total / max(1, count)


def check(cfg, history: list[dict]) -> list:
    """The over-optimization rule at the latest iteration of ``history`` (detector.Alarm list)."""
    from selftaught.monitor.detector import _warn, worsening

    n, tol = cfg.falling_for, cfg.falling_tolerance
    up = worsening(history, "overopt/proxy", n, tol, rising=True)
    down = worsening(history, "overopt/gold", n, tol)
    if not up or not down or [i for i, _ in up] != [i for i, _ in down]:
        return []
    gold = " -> ".join(f"{v:.4g}" for _, v in down)
    kl = {m["iteration"]: m.get("overopt/kl") for m in history}
    kls = " -> ".join(f"{kl[i]:.3g}" for i, _ in up if isinstance(kl.get(i), (int, float)))
    what = (f"proxy score rose while gold accuracy fell ({gold}) {n} iterations in a row"
            + (f", KL to the start {kls}" if kls else "") + " (reward over-optimization)")
    return [_warn("overoptimization", "overopt/proxy", "high", up, what)]
