"""Best-of-N / expert iteration: the degenerate case of the sample-and-filter family.

What it does: sample N solutions per problem, score them, keep only the single
top scorer per problem (if it reaches ``min_reward``), fine-tune on those. This
is expert iteration with best-of-N as the expert (Anthony et al. 2017,
arXiv 1705.08439; for language models e.g. Polu et al. 2022, arXiv 2202.01344)
and the baseline RFT and ReST-EM are measured against: RFT keeps every distinct
correct path, ReST-EM up to N correct ones, this keeps one.

Where we depart: nothing specific to one paper. The score is the verifier's
reward by default, or a reward model / combination (``scorer``, see
``verifiers/scorers.py``), on a [0, 1] scale; ties go to the first sample.

Run it: ``selftaught run recipes/star_arithmetic.yaml method.type=best_of_n``
(or with ``method.scorer=reward_model method.reward_model=/path/to/rm method.min_reward=0``).
"""

from __future__ import annotations

from pydantic import Field

from selftaught.verifiers import scorers
from selftaught.methods import _filter as F


class Config(F.SampleConfig, scorers.ScorerFields):
    type: str = "best_of_n"
    min_reward: float = Field(1.0, description="keep the top sample only if its [0, 1] reward is >= this")


class BestOfN:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def generate(self, it, pool) -> list[dict]:
        return F.sample(it, it.draw(pool, self.cfg.problems_per_iteration), self.cfg)

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        for r, x in zip(rows, scorers.rewards(rows, self.cfg, it.problem_of, it.task)):
            r["select_score"] = x
        rows = F.top_per_problem(rows, lambda r: r["select_score"], self.cfg.min_reward)
        kept = [r for r in rows if r["kept"]]
        metrics = {"select/problems_with_kept": len(kept),
                   "select/kept_correct_frac": F.frac(sum(r["correct"] for r in kept), len(kept))}
        return rows, F.train_rows(it, rows), metrics

    def train(self, it, rows: list[dict]) -> dict:
        return F.train(it, rows, self.cfg)


def build(cfg: Config) -> BestOfN:
    return BestOfN(cfg)
