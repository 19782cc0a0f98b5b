"""Held-out evaluation: greedy pass@1 overall and per group, and optionally pass@k
with the unbiased estimator of Chen et al. 2021 (arXiv 2107.03374, eq. 1)."""

from __future__ import annotations

import math
from collections import defaultdict


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k draws without replacement from n samples, c correct, is correct)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _group_key(g: str):
    return (0, int(g)) if str(g).isdigit() else (1, str(g))


def accuracy_metrics(rows: list[dict], prefix: str = "eval/acc") -> dict:
    """``eval/acc`` overall, ``eval/acc/<group>`` per group, and counts/intervals."""
    by_group: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_group[str(r["group"])].append(bool(r["correct"]))
    n = sum(len(v) for v in by_group.values())
    acc = sum(sum(v) for v in by_group.values()) / n if n else 0.0
    lo, hi = wilson(acc, n)
    out = {prefix: acc, f"{prefix}_n": n, f"{prefix}_ci_low": lo, f"{prefix}_ci_high": hi}
    for g in sorted(by_group, key=_group_key):
        out[f"{prefix}/{g}"] = sum(by_group[g]) / len(by_group[g])
    return out


def evaluate(it, limit: int | None = None) -> tuple[list[dict], dict]:
    """Held-out rows and metrics of the iteration's model (``it.model``)."""
    ecfg = it.cfg.eval
    problems = it.task.eval_set()[:limit] if limit else it.task.eval_set()
    if ecfg.strategy == "greedy":
        rows = it.score(it.sample(problems, 1, temperature=0.0, max_new_tokens=ecfg.max_new_tokens, phase="eval"))
        metrics = accuracy_metrics(rows)
    else:  # inference-time strategy: eval/acc is its final answers' accuracy (strategies.py)
        from selftaught import strategies

        rows, final, metrics = strategies.run(ecfg.strategy, it, problems, ecfg)
        metrics.update(accuracy_metrics(final), **{"eval/strategy": ecfg.strategy})
    if ecfg.pass_k > 0:
        extra = it.score(it.sample(problems, ecfg.pass_k, temperature=ecfg.temperature,
                                   max_new_tokens=ecfg.max_new_tokens, phase="eval_k"))
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in extra:
            counts[r["problem_id"]][0] += 1
            counts[r["problem_id"]][1] += bool(r["correct"])
        k = ecfg.pass_k
        metrics[f"eval/pass@{k}"] = sum(pass_at_k(n, c, k) for n, c in counts.values()) / len(counts)
        metrics["eval/pass@1_sampled"] = sum(pass_at_k(n, c, 1) for n, c in counts.values()) / len(counts)
        metrics[f"eval/pass@{k}_gap"] = metrics[f"eval/pass@{k}"] - metrics["eval/pass@1_sampled"]
        rows += extra
    return rows, metrics
