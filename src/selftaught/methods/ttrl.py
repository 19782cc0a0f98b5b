"""TTRL: Test-Time Reinforcement Learning (Zuo et al. 2025, arXiv 2504.16084).

What it does: learns without labels. For each question, sample n answers; the
majority answer is the pseudo-label; each sample's reward is 1 if its answer
agrees with the majority, else 0; update the policy with RL (GRPO in the paper)
on that reward. Where gold exists we report how often the pseudo-label is right
(``ttrl/label_acc``) and how large the majority is (``ttrl/majority_ratio``),
since the method only helps while the majority is right more often than not.

Two variants (``variant``):
- ``sft``  train on the majority-consistent traces (reward 1 samples) with the
  SFT trainer -- rejection sampling on the self-made reward; works with any
  task, including arithmetic's position coupling.
- ``grpo`` TRL's ``GRPOTrainer`` (``trainer: {type: grpo}``) on the questions,
  reward = agreement of each rollout's answer with the pseudo-label.

Where we depart:
- The paper votes inside each GRPO rollout group (64 votes, 16 trained). Here
  the vote is taken once per iteration on the generate stage's n samples and the
  pseudo-label is fixed while GRPO trains on it.
- The paper trains *on the test set* -- that is its point. Here that is an
  explicit mode, ``transductive: true``: the questions come from the held-out
  split, and every iteration's metrics carry ``ttrl/transductive: 1`` so no
  report can mistake the score for a held-out one. Otherwise (default) the
  questions come from the train pool and the held-out split stays unseen.
- Gold answers are never read by selection; they only feed the ``ttrl/`` metrics.
- ``min_majority_ratio`` (default 0: off) skips questions with a weak majority.

Run it: ``selftaught run recipes/ttrl_arithmetic.yaml`` (SFT variant); GRPO needs a
task without custom positions: ``method.variant=grpo trainer.type=grpo``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field

from selftaught.methods import Needs
from selftaught.methods import _filter as F
from selftaught.verifiers.vote import majority_vote


class Config(F.SampleConfig):
    type: str = "ttrl"
    samples_per_problem: int = Field(8, ge=2, description="votes per question (paper: 64)")
    variant: Literal["sft", "grpo"] = Field("sft", description="train on majority-consistent traces, or GRPO")
    transductive: bool = Field(False, description="train on the held-out questions (the paper's test-time setting)")
    init: Literal["base", "last"] = Field("last", description="continue from the last model (RL-style, the paper)")
    min_majority_ratio: float = Field(0.0, ge=0, le=1, description="skip questions whose majority share is lower")
    max_per_problem: int | None = Field(None, description="sft: keep at most this many consistent traces per question")

    def needs(self, iterations: int) -> Needs:
        return Needs(trainer=(self.variant,), why=f" (method.variant={self.variant})")


def generate(it, pool, cfg: Config) -> list[dict]:
    source = it.task.eval_set() if cfg.transductive else pool
    return F.sample(it, it.draw(source, cfg.problems_per_iteration), cfg)


def vote(rows: list[dict]) -> dict[str, tuple[str | None, float]]:
    """Pseudo-label and majority ratio per problem, from extracted answers only."""
    return {pid: majority_vote([r["answer"] for r in g]) for pid, g in F.by_problem(rows).items()}


def select(it, rows: list[dict], cfg: Config) -> tuple[list[dict], dict]:
    """Keep the samples that agree with their question's majority answer."""
    votes = vote(rows)
    for r in rows:
        r["pseudo_label"], r["majority_ratio"] = votes[r["problem_id"]]
    labelled = lambda r: r["pseudo_label"] is not None and r["majority_ratio"] >= cfg.min_majority_ratio
    agrees = lambda r: labelled(r) and r["answer"] == r["pseudo_label"]
    why = lambda r: ("no answer to vote on" if r["pseudo_label"] is None else
                     f"majority share {r['majority_ratio']:.2f} < {cfg.min_majority_ratio}" if not labelled(r)
                     else f"answer {r['answer']} disagrees with majority {r['pseudo_label']}")
    F.cap_per_problem(rows, agrees, cfg.max_per_problem, it.seed("select"), why_not=why)
    for r in rows:
        if r["kept"]:
            r["select_reason"] = f"agrees with majority {r['pseudo_label']} ({r['majority_ratio']:.2f})"
    metrics = {**label_metrics(rows), "ttrl/transductive": int(cfg.transductive),
               "ttrl/kept_correct_frac": F.frac(sum(r["correct"] for r in rows if r["kept"]),
                                                sum(bool(r["kept"]) for r in rows))}
    return rows, metrics


class TTRL:
    """``variant: sft``: SFT on the majority-consistent traces."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def generate(self, it, pool) -> list[dict]:
        return generate(it, pool, self.cfg)

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        rows, metrics = select(it, rows, self.cfg)
        return rows, F.train_rows(it, rows, pseudo_label="pseudo_label"), metrics

    def train(self, it, rows: list[dict]) -> dict:
        return F.train(it, rows, self.cfg)


def label_metrics(rows: list[dict]) -> dict:
    """Pseudo-labels against gold: a label is right when the rows giving that
    answer are judged correct by the real verifier (its own answer equivalence)."""
    right, ratios, labelled = 0, [], 0
    for g in F.by_problem(rows).values():
        label, ratio = g[0]["pseudo_label"], g[0]["majority_ratio"]
        ratios.append(ratio)
        if label is not None:
            labelled += 1
            right += any(r["correct"] for r in g if r["answer"] == label)
    return {"ttrl/label_acc": F.frac(right, labelled), "ttrl/majority_ratio": F.frac(sum(ratios), len(ratios)),
            "ttrl/problems_labelled": labelled, "ttrl/problems": len(ratios)}


class TTRLGRPO:
    """``variant: grpo``: one prompt row per labelled question; GRPO's reward is agreement."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def generate(self, it, pool) -> list[dict]:
        if it.task.position_tracker is not None:
            raise ValueError(f"ttrl variant=grpo: task {it.task.name!r} needs custom position ids, which TRL's "
                             "GRPOTrainer cannot pass; use method.variant=sft with this task")
        return generate(it, pool, self.cfg)

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        rows, metrics = select(it, rows, self.cfg)
        seen, prompts = set(), []
        for r in rows:
            if r["kept"] and r["problem_id"] not in seen:
                seen.add(r["problem_id"])
                p = it.problems[r["problem_id"]]
                # no "completion" key: the loop's mix stage leaves prompt-only rows alone
                prompts.append({"prompt": it.task.prompt(p), "source": "question",
                                "sample_id": r["sample_id"], "problem_id": p.id, "pseudo_label": r["pseudo_label"]})
        return rows, prompts, metrics

    def train(self, it, rows: list[dict]) -> dict:
        return F.train(it, rows, self.cfg, desc="grpo", reward_fn=agreement_reward(it))


def agreement_reward(it):
    """TTRL's reward as a plain callable in TRL's signature: 1.0 when a rollout's
    extracted answer equals its question's pseudo-label. The answer is read
    with the gold answer blanked out, so the reward cannot see gold."""

    def agreement(prompts, completions, problem_id, pseudo_label, **_) -> list[float]:
        out = []
        for c, pid, label in zip(completions, problem_id, pseudo_label):
            blind = replace(it.problems[pid], answer="", rationale=None)
            out.append(float(it.task.verify(blind, c).answer == label))
        return out

    return agreement


def build(cfg: Config):
    return TTRLGRPO(cfg) if cfg.variant == "grpo" else TTRL(cfg)
