"""ReST: Reinforced Self-Training (Gulcehre et al. 2023, arXiv 2308.08998).

What it does: each iteration is one *Grow* step and several *Improve* steps.
Grow samples a dataset from the current policy and scores every sample with a
reward function. Improve step i keeps the grown samples whose reward is at
least τ_i and fine-tunes the policy on them; the thresholds rise from one
Improve step to the next (τ_1 < τ_2 < ...), so later steps train on ever
better samples of the *same* grown data, each continuing from the model the
previous Improve step produced. The next iteration Grows again from the result.

Where we depart:
- Reward (``scorer``, see ``verifiers/scorers.py``): the task's verifier, an HF
  sequence-classification reward model, or the combination "normalized RM
  score + ``correct_bonus`` if correct"; thresholds are on a [0, 1] scale.
  With a binary verifier every τ in (0, 1] keeps the same rows, so the
  Improve steps then just train longer on the correct samples -- the rising
  threshold only bites with a graded reward.
- The paper uses an offline RL loss (BC among others) per Improve step; we use
  the SFT trainer (BC on the filtered data), ``improve_steps`` optimizer steps each.
- An Improve step whose threshold keeps nothing is skipped (recorded with 0 rows).
- Per-step thresholds and row counts go to metrics as ``rest/tau_<i>``, ``rest/rows_<i>``.

Run it: ``selftaught run recipes/rest_arithmetic.yaml``; with a reward model:
``... method.scorer=combined method.reward_model=/path/to/rm``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from selftaught.verifiers import scorers
from selftaught.methods import _filter as F


class Config(F.SampleConfig, scorers.ScorerFields):
    type: str = "rest"
    init: Literal["base", "last"] = Field("last", description="Grow/Improve continue from the current policy (the paper)")
    thresholds: list[float] = Field([0.5, 0.7, 0.9], description="τ of each Improve step, strictly rising, in [0, 1]")
    improve_steps: int | None = Field(None, description="optimizer steps per Improve step (default: trainer.steps)")

    @field_validator("thresholds")
    @classmethod
    def _rising(cls, v: list[float]) -> list[float]:
        if not v or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"thresholds must be non-empty and strictly rising, got {v}")
        return v


class ReST:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def generate(self, it, pool) -> list[dict]:  # Grow
        return F.sample(it, it.draw(pool, self.cfg.problems_per_iteration), self.cfg)

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        """Score the grown set; keep what the lowest threshold keeps (the first Improve step's data)."""
        tau = self.cfg.thresholds[0]
        for r, x in zip(rows, scorers.rewards(rows, self.cfg, it.problem_of, it.task)):
            r["rest_reward"] = x
            F.mark(r, x >= tau, f"reward {x:.3f} >= τ_1 {tau}" if x >= tau else f"reward {x:.3f} < τ_1 {tau}")
        metrics = {"select/reward_mean": F.frac(sum(r["rest_reward"] for r in rows), len(rows))}
        for i, t in enumerate(self.cfg.thresholds, start=1):
            metrics[f"select/above_tau_{i}"] = sum(r["rest_reward"] >= t for r in rows)
        return rows, F.train_rows(it, rows, reward="rest_reward"), metrics

    def improve_plan(self, rows: list[dict]) -> list[tuple[float, list[dict]]]:
        """(τ_i, rows with reward >= τ_i) for each Improve step. Rows without a reward --
        natural data the loop's mix stage added -- are gold and pass every threshold."""
        return [(t, [r for r in rows if r.get("reward") is None or r["reward"] >= t]) for t in self.cfg.thresholds]

    def train(self, it, rows: list[dict]) -> dict:
        """The Improve steps, each from the previous one's model; the last becomes the checkpoint."""
        steps = self.cfg.improve_steps or it.trainer_steps
        model = start = F.init_model(it, self.cfg)
        made, metrics = [], {}
        out_dir = it.out_dir
        for i, (tau, subset) in enumerate(self.improve_plan(rows), start=1):
            metrics.update({f"rest/tau_{i}": tau, f"rest/rows_{i}": len(subset)})
            if not subset:
                continue
            step_dir = str(Path(out_dir).parent / f"improve_{i}")
            m = it.train(subset, init=model, steps=steps, stage=f"improve{i}", out_dir=step_dir,
                         desc=f"improve {i} (τ={tau})")
            metrics.update({f"rest/loss_{i}": m.get("train/loss"), "train/seconds": metrics.get("train/seconds", 0)
                            + m.get("train/seconds", 0)})
            model = step_dir
            made.append(step_dir)
        if not made:
            raise ValueError(f"rest: no Improve step had rows (thresholds {self.cfg.thresholds})")
        shutil.rmtree(out_dir, ignore_errors=True)
        Path(made[-1]).rename(out_dir)
        for d in made[:-1]:
            shutil.rmtree(d, ignore_errors=True)
        return {**metrics, "rest/improve_steps": len(made), "train/steps": steps * len(made),
                "train/rows": len(rows), "train/init": start}


def build(cfg: Config) -> ReST:
    return ReST(cfg)
