"""``reasoning_gym:<name>``: any of the 100+ procedurally generated reasoning
datasets of reasoning-gym (Stojanovski et al. 2025, arXiv 2505.24760), e.g.
``basic_arithmetic``, ``chain_sum``, ``gsm_symbolic``, ``leg_counting``.

The recipe's ``type`` names the dataset (``type: reasoning_gym:basic_arithmetic``)
and ``kwargs`` are its generator's config fields (``min_digits``, ``operators``,
...; see ``reasoning_gym.factory.DATASETS[name]``). The train pool and the
held-out set are generated from *different seeds*; since small problem spaces
repeat problems, the pool drops every problem whose normalized text is in the
held-out set (and its own duplicates), so the pool may come out smaller than
``pool_size``. Completions are scored by the dataset's own ``score_answer`` on
the extracted final answer (``Answer:`` line or ``\\boxed{}``; with ``lenient``
the last number -- or last line -- when none is stated). Held-out accuracy is
broken down by ``group_by``, a per-item metadata field (default: the first of
level / difficulty / num_digits / num_terms that the items carry).

    selftaught probe --model builtin:smollm2-135m-instruct --task reasoning_gym:basic_arithmetic \\
        task.kwargs.min_digits=1 task.kwargs.max_digits=2 "task.kwargs.operators=[+,-]" \\
        task.kwargs.min_terms=2 task.kwargs.max_terms=2
"""

from __future__ import annotations

import difflib

from typing import Any

from pydantic import Field, field_validator

from selftaught.component import Component
from selftaught.contamination import fingerprint
from selftaught.records import Problem, Score
from selftaught.tasks import _qa

GROUP_KEYS = ("level", "difficulty", "num_digits", "num_terms")


class Config(Component):
    type: str = "reasoning_gym:basic_arithmetic"
    kwargs: dict[str, Any] = Field(default_factory=dict, description="the dataset generator's config fields")
    pool_size: int = Field(1000, ge=1, description="problems generated for the train pool (before dropping repeats)")
    eval_size: int = Field(200, ge=1, description="held-out problems generated")
    pool_seed: int = Field(1, description="generator seed of the train pool")
    eval_seed: int = Field(2, description="generator seed of the held-out set (must differ from pool_seed)")
    group_by: str | None = Field(None, description="metadata field held-out accuracy is broken down by")
    lenient: bool = Field(True, description="no stated answer: take the last number (or last line)")
    instruction: str = Field(_qa.INSTRUCTION, description="appended to every question")

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        from reasoning_gym.factory import DATASETS

        name = v.split(":", 1)[1] if ":" in v else ""
        if name not in DATASETS:
            if not name:
                raise ValueError(f"name one, e.g. reasoning_gym:basic_arithmetic; datasets: {', '.join(sorted(DATASETS))}")
            close = difflib.get_close_matches(name, DATASETS, n=3)
            did = f"; did you mean {' or '.join(f'reasoning_gym:{c}' for c in close)}?" if close else ""
            raise ValueError(f"unknown dataset {name!r}{did} (`selftaught ls` lists all {len(DATASETS)})")
        return v


class ReasoningGym(_qa.QATask):
    def __init__(self, cfg: Config) -> None:
        import reasoning_gym

        if cfg.pool_seed == cfg.eval_seed:
            raise ValueError("reasoning_gym: pool_seed and eval_seed must differ (the splits come from different seeds)")
        self.cfg, self.dataset = cfg, cfg.type.split(":", 1)[1]
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.kwargs.items()}
        try:
            self.sets = {split: reasoning_gym.create_dataset(self.dataset, seed=seed, size=size, **kwargs)
                         for split, seed, size in (("eval", cfg.eval_seed, cfg.eval_size),
                                                   ("pool", cfg.pool_seed, cfg.pool_size))}
        except (TypeError, ValueError, AssertionError) as e:
            raise ValueError(f"reasoning_gym:{self.dataset}: bad generator kwargs {cfg.kwargs}: {e}") from None
        held = _qa.dedupe(self._problems("eval"))
        taken = {fingerprint(p.question) for p in held}
        pool = [p for p in _qa.dedupe(self._problems("pool")) if fingerprint(p.question) not in taken]
        self.pool_dropped = cfg.pool_size - len(pool)  # repeats and held-out look-alikes
        super().__init__(cfg.type, pool, held, self._score, instruction=cfg.instruction)

    def _problems(self, split: str) -> list[Problem]:
        seed = self.cfg.eval_seed if split == "eval" else self.cfg.pool_seed
        out = []
        for i, entry in enumerate(self.sets[split]):
            meta = entry.get("metadata") or {}
            keys = [self.cfg.group_by] if self.cfg.group_by else GROUP_KEYS
            group = next((meta[k] for k in keys if isinstance(meta.get(k), (str, int, float))), "")
            out.append(Problem(id=f"{self.dataset}/{seed}/{i}", question=str(entry["question"]),
                               answer=str(entry["answer"]), group=str(group), meta={"entry": entry, "split": split}))
        return out

    def _score(self, problem: Problem, completion: str) -> Score:
        candidates = self._candidates(problem, completion)
        if not candidates:
            return Score(0.0, False, None, "no stated answer")
        ds = self.sets[problem.meta["split"]]
        best, best_answer = 0.0, candidates[0]
        for c in candidates:
            try:
                s = float(ds.score_answer(c, problem.meta["entry"]))
            except Exception:  # a dataset's scorer choking on free text is a wrong answer
                s = 0.0
            if s > best:
                best, best_answer = s, c
        ok = best >= 1.0 - 1e-9
        return Score(best, ok, best_answer, "correct" if ok else f"answer {best_answer}, expected {problem.answer}")

    def _candidates(self, problem: Problem, completion: str) -> list[str]:
        """The stated answer, and its bare number when the gold answer is a number."""
        numeric = _qa.parse_number(problem.answer) is not None and problem.answer.strip().lstrip("-").replace(".", "").isdigit()
        stated = _qa.final_answer(completion)
        out = [stated] if stated else []
        if numeric:
            value = _qa.extract_number(completion, lenient=self.cfg.lenient)
            if value is not None:
                out.append(_qa.format_number(value))
        elif not stated and self.cfg.lenient:
            lines = [x.strip() for x in completion.strip().splitlines() if x.strip()]
            out += lines[-1:]
        return out


def build(cfg: Config) -> ReasoningGym:
    return ReasoningGym(cfg)
