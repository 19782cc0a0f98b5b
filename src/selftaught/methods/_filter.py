"""What the sample-and-filter methods (``star``, ``rft``, ``rest_em``, ``rest``,
``ttrl``, ``self_play``, ``best_of_n``) share, as plain functions: their sampling
config, their train stage (``train``: from the base or the last model, steps
growing each iteration), and the selection rules themselves as pure functions on
scored rows, so each rule is tested on hand-made records
(tests/unit/test_methods_select.py) apart from any model.

A rule marks every row it looks at with ``kept`` and ``select_reason`` and
returns the rows; ``train_rows`` turns the kept ones into training rows whose
prompt is always the task's plain prompt (no hint, no feedback, no judge text).
Not a registry entry: the leading underscore keeps it out of ``selftaught ls``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Callable, Literal

from pydantic import Field

from selftaught.methods import MethodConfig


class SampleConfig(MethodConfig):
    """Fields every method of the family has; each method's ``Config`` adds its own."""

    problems_per_iteration: int | None = Field(None, description="problems drawn from the pool per iteration (None: all)")
    samples_per_problem: int = Field(4, ge=1, description="completions sampled per problem")
    temperature: float = Field(0.7, description="sampling temperature (0 = greedy)")
    top_p: float = 1.0
    max_new_tokens: int = Field(160, description="generation budget per completion")
    init: Literal["base", "last"] = Field("base", description="train from the base model or the last checkpoint")
    steps: int | None = Field(None, description="train steps of iteration 1 (default: trainer.steps)")
    steps_growth: float = Field(1.0, description="train steps multiply by this every iteration")


def sample(it, problems, cfg: SampleConfig, n: int | None = None, phase: str = "sample", **kw) -> list[dict]:
    # the mix config's temperature schedule, if any, overrides the method's (Iteration.temperature)
    temperature = it.temperature(cfg.temperature)
    gen = dict(temperature=temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens)
    return it.sample(problems, n or cfg.samples_per_problem, phase=phase, **{**gen, **kw})


def init_model(it, cfg: SampleConfig) -> str:
    return it.base_model if cfg.init == "base" else it.model


def train_steps(it, cfg: SampleConfig) -> int:
    """``steps`` (default: the trainer's) x ``steps_growth`` ** (k - 1): STaR's growing budget."""
    first = cfg.steps or it.trainer_steps
    return max(1, round(first * cfg.steps_growth ** (it.k - 1)))


def train(it, rows: list[dict], cfg: SampleConfig, **objective) -> dict:
    """The family's train stage: SFT (or the recipe's trainer) from ``init_model`` for
    ``train_steps``; ``objective`` goes to the trainer (GRPO's ``reward_fn``)."""
    init = init_model(it, cfg)
    return {**it.train(rows, init=init, steps=train_steps(it, cfg), **objective), "train/init": init}


def mark(row: dict, kept: bool, reason: str) -> None:
    row.update(kept=bool(kept), select_reason=reason)


def train_rows(it, rows: list[dict], **extra_cols) -> list[dict]:
    """Training rows from the kept rows: the plain task prompt + the completion."""
    out = []
    for r in rows:
        if r.get("kept"):
            p = it.problems[r["problem_id"]]
            out.append({"prompt": it.task.prompt(p, hint=False), "completion": r["completion"], "source": r["phase"],
                        "sample_id": r["sample_id"], "problem_id": r["problem_id"],
                        **{k: r[col] for k, col in extra_cols.items()}})
    return out


def by_problem(rows: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["problem_id"]].append(r)
    return groups


def distinct_correct(rows: list[dict], path: Callable[[str], str], max_per_problem: int | None = None) -> list[dict]:
    """RFT: keep every correct row whose reasoning path is new for its problem."""
    for group in by_problem(rows).values():
        seen: dict[str, str] = {}
        for r in group:
            key = path(r["completion"])
            if not r["correct"]:
                mark(r, False, f"rejected: {r['verify_reason']}")
            elif key in seen:
                mark(r, False, f"duplicate reasoning path of {seen[key]}")
            elif max_per_problem is not None and len(seen) >= max_per_problem:
                mark(r, False, f"problem already has {max_per_problem} distinct paths")
            else:
                seen[key] = r["sample_id"]
                mark(r, True, "distinct correct path")
    return rows


def cap_per_problem(rows: list[dict], ok: Callable[[dict], bool], cap: int | None, seed: int,
                    why_not: Callable[[dict], str] = lambda r: "below threshold") -> list[dict]:
    """ReST-EM: rows passing ``ok``, at most ``cap`` per problem, a seeded random choice
    among them (the paper subsamples so easy problems do not dominate)."""
    for pid, group in by_problem(rows).items():
        good = [r for r in group if ok(r)]
        chosen = set(range(len(good)))
        if cap is not None and len(good) > cap:
            chosen = set(random.Random(f"{seed}/{pid}").sample(range(len(good)), cap))
        for i, r in enumerate(good):
            mark(r, i in chosen, "passed threshold" if i in chosen else f"over the cap of {cap} per problem")
        for r in group:
            if not ok(r):
                mark(r, False, f"rejected: {why_not(r)}")
    return rows


def top_per_problem(rows: list[dict], score: Callable[[dict], float], min_score: float) -> list[dict]:
    """Best-of-N / expert iteration: the single highest-scoring row per problem
    (ties: the first sampled), kept only if it reaches ``min_score``."""
    for group in by_problem(rows).values():
        best = max(range(len(group)), key=lambda i: (score(group[i]), -i))
        for i, r in enumerate(group):
            if i != best:
                mark(r, False, f"not the top scorer of its problem ({score(r):.3f})")
            elif score(r) < min_score:
                mark(r, False, f"top scorer {score(r):.3f} below min_reward {min_score}")
            else:
                mark(r, True, f"top scorer ({score(r):.3f})")
    return rows


def frac(num: int, den: int) -> float:
    return num / den if den else 0.0
