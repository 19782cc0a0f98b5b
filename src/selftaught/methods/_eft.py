"""The seed of Self-Rewarding (Yuan et al. 2024, arXiv 2401.10020, Sec. 2.1 and
3.1): the paper's M1 is the base model fine-tuned on instruction data (IFT) *and*
on evaluation fine-tuning data (EFT) -- judge prompts in the additive rubric's
format whose targets are a justification and ``Score: <points>``. This file builds
both from the task's labeled problems; ``methods/self_rewarding.py`` runs it as its
first iteration when the recipe sets ``method.eft``.

How a target judgement is made (and why). The paper's EFT targets are judgements
(written by a strong model) kept only where their score agrees with a human
ranking of the responses. We have no human rankings but a verifier: for labeled
problems the model's own candidates are sampled, scored right or wrong against
gold, and each candidate's target judgement is synthesized from that verdict --
a short justification that first states the gold answer, then the candidate's
final answer and whether it matches (``justification: solve``; ``verdict`` drops
the gold sentence), ending in ``Score: 5`` (right) or ``Score: 1`` (wrong:
relevant, one point of the rubric). Stating the answer first makes the judgement
a solve-then-compare chain: the only way a judge can tell a right sum from a
wrong one is to work it out. Right and wrong examples are balanced by default
(the majority verdict is downsampled) so that "always the majority score" is not
the cheapest fit. The IFT examples are the labeled problems' reference solutions
(the task's rationale, or ``ift_format`` with the gold answer where there is none).

Which problems. Seed problems with rationales when the task has them, else a
seeded sample of the train pool (``eft_problems``) -- never the held-out split --
and Self-Rewarding's own prompts exclude these, so the judge agreement measured
in later iterations is on problems the judge was never shown labeled.
Not a registry entry: the leading underscore keeps it out of ``selftaught ls``.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field

from selftaught import templates
from selftaught.component import Section
from selftaught.records import Problem
from selftaught.trainers import sft

SOLVE = "The correct answer is {gold}. "
RIGHT = "The response's final answer is {answer}, which is correct. Score: {score}"
WRONG = "The response's final answer is {answer}, which is wrong. Score: {score}"


class EFT(Section):
    """``method.eft``: the EFT + IFT seed stage (iteration 1) before Self-Rewarding."""

    problems: int = Field(64, ge=1, description="labeled problems whose candidates become judge examples")
    candidates: int = Field(4, ge=1, description="the model's own candidates sampled per labeled problem")
    right_score: int = Field(5, ge=0, le=5, description="target score of a candidate the verifier accepts")
    wrong_score: int = Field(1, ge=0, le=5, description="target score of a candidate the verifier rejects")
    justification: Literal["solve", "verdict"] = Field("solve", description="solve: state the gold answer, then "
                                                       "compare; verdict: only the candidate's answer and verdict")
    balance: bool = Field(True, description="downsample the majority verdict to the minority's count")
    ift: bool = Field(True, description="also train on the labeled problems' reference solutions (the paper's IFT)")
    ift_format: str = Field("Answer: {answer}", description="IFT target of a problem without a rationale")
    judge_before: bool = Field(False, description="also judge the EFT candidates with the starting model "
                                                  "(its judge agreement before EFT)")
    trainer: sft.Config = Field(sft.Config(steps=40, lr=1e-4, batch_size=8), description="the SFT of the seed stage")


def eft_problems(task, pool: list[Problem], n: int, seed: int) -> tuple[list[Problem], bool]:
    """(labeled problems of the seed stage, whether they come from the seed set). The
    seed set's problems with rationales if there are any, else ``n`` of the train pool;
    a pure function of (task, pool, n, seed), so every iteration finds the same ones."""
    seeds = [p for p in task.seed_set() if p.rationale]
    source = seeds or list(pool)
    rng = random.Random(f"{seed}/eft")
    return (source if n >= len(source) else rng.sample(source, n)), bool(seeds)


def target_judgement(row: dict, gold: str, cfg: EFT) -> str:
    """The judgement a candidate row (verified: ``correct``, ``answer``) is trained to get."""
    right = bool(row["correct"])
    answer = row.get("answer")
    tail = (RIGHT if right else WRONG).format(answer=answer if answer not in (None, "") else "missing",
                                              score=cfg.right_score if right else cfg.wrong_score)
    return (SOLVE.format(gold=gold) if cfg.justification == "solve" else "") + tail


def balanced(rows: list[dict], seed: int) -> tuple[list[dict], set[str]]:
    """The rows with the majority verdict downsampled (seeded) to the minority's count;
    all of them if one verdict is missing. Returns (kept, sample_ids dropped)."""
    right = [r for r in rows if r["correct"]]
    wrong = [r for r in rows if not r["correct"]]
    if not right or not wrong:
        return rows, set()
    small, big = sorted((right, wrong), key=len)
    keep = {r["sample_id"] for r in small} | {r["sample_id"] for r in random.Random(seed).sample(big, len(small))}
    return [r for r in rows if r["sample_id"] in keep], {r["sample_id"] for r in rows} - keep


def examples(rows: list[dict], problems: dict[str, Problem], prompt_of, cfg: EFT, template: str,
             seed: int) -> tuple[list[dict], dict[str, str]]:
    """EFT rows (judge prompt -> target judgement, one per kept candidate) and IFT rows
    (task prompt -> reference solution, one per labeled problem), and why each candidate
    was kept or not. ``prompt_of(problem)`` is the task's plain prompt."""
    kept, dropped = balanced(rows, seed) if cfg.balance else (rows, set())
    train = []
    for r in kept:
        p = problems[r["problem_id"]]
        train.append({"prompt": templates.fill(template, prompt=r["prompt"], response=r["completion"]),
                      "completion": target_judgement(r, p.answer, cfg), "source": "eft",
                      "sample_id": r["sample_id"], "problem_id": r["problem_id"], "gold_correct": bool(r["correct"])})
    if cfg.ift:
        for pid in sorted({r["problem_id"] for r in rows}):
            p = problems[pid]
            train.append({"prompt": prompt_of(p), "completion": p.rationale or cfg.ift_format.replace("{answer}", p.answer),
                          "source": "ift", "sample_id": None, "problem_id": pid, "gold_correct": None})
    why = {r["sample_id"]: ("dropped: balancing right and wrong" if r["sample_id"] in dropped else
                            f"eft example: target score {cfg.right_score if r['correct'] else cfg.wrong_score}")
           for r in rows}
    return train, why


def metrics(rows: list[dict], train: list[dict], from_seed: bool) -> dict:
    eft = [t for t in train if t["source"] == "eft"]
    return {"eft/stage": 1, "eft/from_seed_set": int(from_seed), "eft/problems": len({r["problem_id"] for r in rows}),
            "eft/candidates": len(rows), "eft/candidates_right": sum(bool(r["correct"]) for r in rows),
            "eft/examples": len(eft), "eft/examples_right": sum(t["gold_correct"] for t in eft),
            "eft/ift_examples": sum(t["source"] == "ift" for t in train)}
