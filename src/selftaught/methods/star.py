"""STaR: Self-Taught Reasoner (Zelikman, Wu, Mu, Goodman 2022, arXiv 2203.14465).

What it does: each iteration, sample a rationale for every problem; keep the ones
that reach the correct answer. For problems the model got wrong, *rationalize*:
prompt again with the correct answer as a hint and keep a rationale that reaches
it -- but store the training example **without** the hint, as if the model had
found it unaided. Fine-tune the **base** model (not the last one, to avoid
overfitting drift) on this iteration's kept rationales, with the number of
training steps growing by a factor each iteration (paper: 40 steps, x1.2).

Where we depart:
- The paper samples with few-shot prompting from a pretrained GPT-J; our tiny
  built-in model is warm-started on labeled 1-3 digit scratchpads instead (the
  seed set stands in for the few-shot exemplars), with and without a hint.
- ``require_valid_steps`` (off by default, as in the paper) also rejects right
  answers reached by wrong working, which rationalization lets in; the fraction
  of kept traces with wrong working is reported either way.
- ``init: last`` continues from the last checkpoint instead of the base model.
- ``problems_per_iteration`` may draw a subset of the pool (paper: whole dataset).

Run it: ``selftaught run`` (the built-in default is this method on arithmetic),
or ``selftaught run recipes/star_arithmetic.yaml method.rationalize=false``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from selftaught.methods import MethodConfig
from selftaught.methods import _filter as F


class Config(MethodConfig):
    type: str = "star"
    problems_per_iteration: int | None = Field(None, description="problems drawn from the pool per iteration (None: all)")
    samples_per_problem: int = Field(1, description="rationales sampled per problem before rationalizing")
    temperature: float = Field(0.7, description="sampling temperature (0 = greedy)")
    top_p: float = 1.0
    max_new_tokens: int = Field(160, description="generation budget per rationale")
    rationalize: bool = Field(True, description="retry failed problems with the answer as a hint")
    require_valid_steps: bool = Field(False, description="keep only traces whose every scratchpad step is right")
    init: Literal["base", "last"] = Field("base", description="train from the base model (paper) or the last checkpoint")
    steps: int | None = Field(None, description="train steps of iteration 1 (default: trainer.steps)")
    steps_growth: float = Field(1.2, description="train steps multiply by this every iteration (paper: 1.2)")


class Star:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def generate(self, it, pool) -> list[dict]:
        c = self.cfg
        problems = it.draw(pool, c.problems_per_iteration)
        gen = dict(temperature=it.temperature(c.temperature), top_p=c.top_p, max_new_tokens=c.max_new_tokens)
        rows = it.sample(problems, c.samples_per_problem, phase="sample", **gen)
        if not c.rationalize:
            return rows
        solved = {r["problem_id"] for r in it.score(rows) if self._good(r)}
        failed = [p for p in problems if p.id not in solved]
        return rows + it.sample(failed, 1, phase="rationalize", hint=True, **gen) if failed else rows

    def _good(self, row: dict) -> bool:
        return bool(row["correct"]) and (not self.cfg.require_valid_steps or row.get("steps_ok") is not False)

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict]]:
        """Keep the first good rationale per problem; else the first good rationalization."""
        keep_first(rows, self._good)
        # The hint is in the rationalization prompt, never in the training example.
        return rows, F.train_rows(it, rows), {}

    def train(self, it, rows: list[dict]) -> dict:
        """Fine-tune the base model (paper) on this iteration's rows, steps x1.2 each iteration."""
        return F.train(it, rows, self.cfg)


def keep_first(rows: list[dict], good, why_not=None) -> list[dict]:
    """STaR's rule: per problem, the first ``good`` sample, else the first ``good``
    rationalization (rows of other phases are left alone); ``why_not(row)`` says why a
    row is not good (default: its verifier's reason, or wrong working)."""
    kept_for: dict[str, str] = {}
    for phase in ("sample", "rationalize"):
        for r in rows:
            if r["phase"] != phase:
                continue
            pid = r["problem_id"]
            if pid in kept_for:
                r.update(kept=False, select_reason=f"problem already has a kept trace ({kept_for[pid]})")
            elif good(r):
                kept_for[pid] = r["sample_id"]
                r.update(kept=True, select_reason="first correct" if phase == "sample" else "rationalized with hint")
            else:
                why = why_not(r) if why_not else ("wrong working" if r["correct"] else r["verify_reason"])
                r.update(kept=False, select_reason=f"rejected: {why}")
    return rows


def build(cfg: Config) -> Star:
    return Star(cfg)
