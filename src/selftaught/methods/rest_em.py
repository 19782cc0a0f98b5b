"""ReST-EM (Singh et al. 2023, "Beyond Human Data: Scaling Self-Training for
Problem-Solving with Language Models", arXiv 2312.06585).

What it does: expectation-maximization with a binary reward. E-step: sample
several solutions per training problem from the *current* model and score them
(reward 1 if the answer is right). M-step: fine-tune the **base** pretrained
model -- not the last one -- on the samples whose reward passes the threshold,
at most N per problem (paper: 10) so that easy problems, where every sample is
right, do not crowd out the hard ones. Repeat.

Where we depart:
- The reward is the task's verifier ``reward`` column (binary for arithmetic)
  compared with ``threshold`` (reward >= threshold keeps).
- ``init: last`` (not the paper) continues from the last checkpoint instead.
- When a problem has more than N passing samples, a seeded random N are kept.
- Train steps default to ``trainer.steps`` every iteration (``steps_growth``
  1.0); the paper trains a fixed budget per M-step too, with early stopping on
  a validation set that we leave to the loop's gate.

Run it: ``selftaught run recipes/rest_em_arithmetic.yaml``
"""

from __future__ import annotations

from pydantic import Field

from selftaught.methods import _filter as F


class Config(F.SampleConfig):
    type: str = "rest_em"
    threshold: float = Field(1.0, description="keep samples with reward >= this")
    max_per_problem: int | None = Field(10, description="keep at most this many samples per problem (paper: 10)")


class RestEM:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def generate(self, it, pool) -> list[dict]:
        # E-step: from the current model (``it.model``), never the base one.
        return F.sample(it, it.draw(pool, self.cfg.problems_per_iteration), self.cfg)

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        t = self.cfg.threshold
        rows = F.cap_per_problem(rows, lambda r: r["reward"] >= t, self.cfg.max_per_problem, it.seed("select"),
                                 why_not=lambda r: f"reward {r['reward']:.3f} < {t} ({r['verify_reason']})")
        metrics = {"select/above_threshold": sum(r["reward"] >= t for r in rows),
                   "select/over_cap_dropped": sum(r["select_reason"].startswith("over the cap") for r in rows),
                   "select/problems_with_kept": len({r["problem_id"] for r in rows if r["kept"]})}
        return rows, F.train_rows(it, rows), metrics

    def train(self, it, rows: list[dict]) -> dict:
        """M-step: from the base model (paper), every iteration."""
        return F.train(it, rows, self.cfg)


def build(cfg: Config) -> RestEM:
    return RestEM(cfg)
