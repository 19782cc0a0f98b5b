"""RFT: Rejection-sampling Fine-Tuning (Yuan et al. 2023, "Scaling Relationship on
Learning Mathematical Reasoning with Large Language Models", arXiv 2308.01825).

What it does: sample k reasoning paths per training problem from the SFT model
(paper: k up to 100, temperature 0.7), reject the ones with a wrong answer, and
deduplicate the rest to *distinct reasoning paths* -- the paper compares the
sequence of equations in each path, because more distinct paths, not more
copies, is what helped. Fine-tune on all distinct correct paths.

Where we depart:
- "Distinct" is a per-task normalization: a task may define
  ``reasoning_path(completion) -> str`` (arithmetic: the scratchpad lines, i.e.
  the sequence of equations, without the answer line); otherwise the completion
  with whitespace collapsed. Two completions with the same key are one path.
- The paper runs one round and trains the pretrained model on SFT data ∪ RFT
  data. Here it is a loop: each iteration samples from the last model and (by
  default, ``init: base``) fine-tunes the base model -- the warm-started tiny
  model, which has already seen the seed SFT set -- on that iteration's paths only.
- ``max_paths_per_problem`` (off by default) caps paths per problem.

Run it: ``selftaught run recipes/rft_arithmetic.yaml`` (``method.samples_per_problem=16``
for more paths per problem).
"""

from __future__ import annotations

from pydantic import Field

from selftaught.methods import _filter as F


class Config(F.SampleConfig):
    type: str = "rft"
    max_paths_per_problem: int | None = Field(None, description="keep at most this many distinct paths per problem")


class RFT:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def generate(self, it, pool) -> list[dict]:
        return F.sample(it, it.draw(pool, self.cfg.problems_per_iteration), self.cfg)

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        rows = F.distinct_correct(rows, it.task.reasoning_path, self.cfg.max_paths_per_problem)
        return rows, F.train_rows(it, rows), metrics(rows)

    def train(self, it, rows: list[dict]) -> dict:
        return F.train(it, rows, self.cfg)


def metrics(rows: list[dict]) -> dict:
    """Counts of the rule itself (the loop's mix stage may drop more: its ``mix/`` metrics)."""
    correct = [r for r in rows if r["correct"]]
    solved = {r["problem_id"] for r in correct}
    dupes = sum(r["select_reason"].startswith("duplicate") for r in rows)
    paths = sum(bool(r["kept"]) for r in rows)
    return {"select/correct": len(correct), "select/duplicates_dropped": dupes,
            "select/solved_problems": len(solved), "select/distinct_paths": paths,
            "select/paths_per_solved_problem": F.frac(paths, len(solved))}


def build(cfg: Config) -> RFT:
    return RFT(cfg)
