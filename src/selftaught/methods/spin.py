"""SPIN: Self-Play fIne-tuNing (Chen, Deng, Yuan, Ji, Gu 2024, arXiv 2401.01335).

What it does: the model plays against its previous self. For prompts of a
labeled SFT set, the *positive* is the human-written target and the *negative*
is what the previous iteration's model generates for the same prompt. The new
model is trained with a DPO-style logistic loss (β = 0.1 in the paper) to prefer
the target over its own old generation, with the previous iteration's model as
the reference and as the starting point. When the model's generations become
indistinguishable from the data, the reward margin goes to zero and so does the
learning signal: ``spin/reward_margin`` (β times the chosen-minus-rejected log
ratio at the end of training) is reported every iteration for that reason.

Where we depart:
- The paper's iteration t+1 trains on the synthetic data of iterations t and
  t-1; we use iteration t's only (``problems_per_iteration`` draws fresh prompts).
- Pairs whose negative equals the target exactly are dropped: their DPO
  gradient is zero. Their count is reported (``select/identical_pairs``).
- Prompts come from the task's labeled seed set (problems with a ``rationale``),
  the stand-in for the paper's Ultrachat SFT subset; for tasks with answers only,
  ``target: answer`` makes the gold answer (``Answer: 42``) the positive.
- ``objective: sft`` is the paper's baseline (more epochs of SFT on the same data
  instead of SPIN): the same prompts, sampled the same way (so the SFT-set metrics
  match), but every target is trained on with the ``sft`` trainer, no negatives.

Run it: ``selftaught run recipes/spin_arithmetic.yaml`` (trainer ``dpo``);
``recipes/spin_sft_gap_arithmetic.yaml`` starts from an under-trained model and
``benchmarks/spin_sft_gap.py`` runs it next to the SFT baseline.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from selftaught.iteration import problem_json
from selftaught.methods import MethodConfig, Needs
from selftaught.records import Problem


class Config(MethodConfig):
    type: str = "spin"
    problems_per_iteration: int | None = Field(None, description="SFT prompts drawn per iteration (None: the whole labeled set)")
    temperature: float = Field(1.0, description="sampling temperature of the negatives (paper: default sampling)")
    top_p: float = 1.0
    max_new_tokens: int = Field(160, description="generation budget of a negative")
    target: Literal["rationale", "answer"] = Field("rationale", description="positives: the labeled rationale, or (tasks without rationales) the gold answer written as answer_format")
    answer_format: str = Field("Answer: {answer}", description="target=answer: how a positive is written")
    objective: Literal["spin", "sft"] = Field("spin", description="spin: DPO on target vs own-generation pairs; sft: the baseline, SFT on the same targets (trainer sft)")

    def needs(self, iterations: int) -> Needs:
        if self.objective == "sft":
            return Needs(trainer=("sft",), why=" (objective sft: the SFT baseline on the same targets)")
        return Needs(trainer=("dpo",), why=" (SFT target vs own generation pairs)")


def labeled(task, target: str = "rationale", answer_format: str = "Answer: {answer}") -> list:
    """The SFT set: seed problems with a written rationale; with ``target: answer``,
    train-pool problems whose positive is their gold answer (set as the rationale)."""
    if target == "rationale":
        return [p for p in task.seed_set() if p.rationale]
    return [Problem(**{**p.__dict__, "rationale": answer_format.replace("{answer}", p.answer)}) for p in task.train_pool()]


class Spin:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def generate(self, it, pool) -> list[dict]:
        """One negative per SFT prompt, sampled from the model of the previous iteration
        (``it.model``: the base model in iteration 1)."""
        sft = labeled(it.task, self.cfg.target, self.cfg.answer_format)
        if not sft:
            raise ValueError(f"spin: task {it.task.name!r} has no labeled seed problems (rationale) to use as positives; "
                             "use method.target=answer to take the gold answers as targets")
        problems = it.draw(sft, self.cfg.problems_per_iteration)
        c = self.cfg
        rows = it.sample(problems, 1, temperature=c.temperature, top_p=c.top_p, max_new_tokens=c.max_new_tokens,
                         phase="sample")
        for p, r in zip(problems, rows):
            r["problem_json"] = problem_json(p)  # seed problems may be in no split; verify reads it from here
        return rows

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        if self.cfg.objective == "sft":
            return self._select_sft(it, rows)
        train = []
        for r in rows:
            p = it.problem_of(r)
            target = p.rationale or ""
            if r["completion"].strip() == target.strip():
                r.update(kept=False, select_reason="negative equals the target (zero gradient)")
                continue
            r.update(kept=True, select_reason="negative of a SPIN pair")
            train.append({"prompt": it.task.prompt(p), "chosen": target, "rejected": r["completion"],
                          "source": "spin", "sample_id": r["sample_id"], "problem_id": r["problem_id"],
                          "rejected_checkpoint": r["checkpoint"]})
        metrics = {"select/pairs": len(train), "select/identical_pairs": len(rows) - len(train),
                   "select/negatives_correct_frac": sum(bool(r.get("correct")) for r in rows) / max(1, len(rows))}
        return rows, train, metrics

    def _select_sft(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        """The baseline: every drawn prompt's target, whatever the model generated."""
        train = []
        for r in rows:
            p = it.problem_of(r)
            r.update(kept=True, select_reason="SFT baseline: the prompt's target is trained on")
            train.append({"prompt": it.task.prompt(p), "completion": p.rationale or "", "source": "spin_sft",
                          "sample_id": r["sample_id"], "problem_id": r["problem_id"]})
        return rows, train, {"select/sft_rows": len(train),
                             "select/negatives_correct_frac": sum(bool(r.get("correct")) for r in rows) / max(1, len(rows))}

    def train(self, it, rows: list[dict]) -> dict:
        """DPO from the previous model, against the previous model (the paper's reference);
        the baseline: SFT from the previous model."""
        if self.cfg.objective == "sft":
            return it.train(rows, init=it.model, desc="spin baseline sft")
        m = it.train(rows, init=it.model, ref_model=it.model, desc="spin dpo")
        return {**m, "spin/reward_margin": m["train/reward_margin"]}


def build(cfg: Config) -> Spin:
    return Spin(cfg)
