"""What a method sees of one iteration: the task, the model to sample from,
``sample``/``score`` helpers that stamp every row with its full provenance, so no
method can forget to record where a sample came from, and ``train``: the run's
trainer bound to this iteration's checkpoint directory, seeds, progress label and
the task's position ids, so a method says only what to train on, from which
model, for how many steps and with which objective arguments."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from selftaught.records import Problem, sample_id

if TYPE_CHECKING:
    from selftaught.backends import Backend
    from selftaught.config import RunConfig
    from selftaught.tasks import Task
    from selftaught.trainers import Trainer


@dataclass
class Iteration:
    k: int
    cfg: RunConfig
    task: Task
    backend: Backend
    trainer: Trainer  # the recipe's trainer; ``train`` binds it to this iteration
    base_model: str  # the starting model (iteration 0)
    model: str  # the checkpoint this iteration samples from
    model_hash: str
    out_dir: str  # where this iteration's checkpoint goes
    problems: dict[str, Problem] = field(default_factory=dict)  # every problem by id (pool, eval)

    @property
    def trainer_steps(self) -> int:
        """The trainer's configured steps per train stage (methods scale it)."""
        return self.cfg.trainer.steps

    def iter_dir(self, k: int | None = None) -> Path:
        """The run's directory of iteration ``k`` (default: this one): ``out_dir`` is
        ``<run>/iter_k/checkpoint``, so methods find earlier iterations' files here."""
        return Path(self.out_dir).parents[1] / f"iter_{self.k if k is None else k:03d}"

    def seed(self, stage: str) -> int:
        """A seed per (run seed, iteration, stage): re-running a stage reproduces it."""
        return random.Random(f"{self.cfg.seed}/{self.k}/{stage}").randrange(2**31)

    def draw(self, pool: list[Problem], n: int | None) -> list[Problem]:
        """``n`` problems of the pool for this iteration (all of them when n is None)."""
        if n is None or n >= len(pool):
            return list(pool)
        return random.Random(self.seed("draw")).sample(pool, n)

    def temperature(self, method_temperature: float) -> float:
        """The sampling temperature of this iteration: the method's own, unless the
        recipe's ``mix`` section schedules it across iterations (mix.py)."""
        from selftaught.mix import scheduled_temperature

        return scheduled_temperature(self.cfg.mix, self.k, method_temperature)

    def sample(self, problems: list[Problem], n: int, *, temperature: float, top_p: float = 1.0,
               max_new_tokens: int, phase: str, hint: bool = False, prompts: list[str] | None = None) -> list[dict]:
        """``n`` completions per problem from this iteration's model, as rows."""
        self.backend.load(self.model, self.task.position_tracker)
        prompts = prompts or [self.task.prompt(p, hint=hint) for p in problems]
        seed = self.seed(phase)
        outs = self.backend.sample(prompts, n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                   seed=seed, desc=f"iter {self.k} {phase}")
        rows = []
        for p, prompt, completions in zip(problems, prompts, outs):
            for i, text in enumerate(completions):
                rows.append({
                    "sample_id": sample_id(self.k, phase, p.id, i), "problem_id": p.id, "group": p.group,
                    "iteration": self.k, "phase": phase, "checkpoint": self.model, "checkpoint_hash": self.model_hash,
                    "backend": self.backend.name, "temperature": temperature, "top_p": top_p,
                    "max_new_tokens": max_new_tokens, "seed": seed, "prompt": prompt,
                    "hint": self.task.hint(p) if hint else None, "completion": text,
                })
        return rows

    def score(self, rows: list[dict]) -> list[dict]:
        """Fill the verify columns of each row (idempotent: a re-run gives the same values)."""
        verifier = f"{self.task.name}@{self.task.verifier_version}"
        answers = []
        for r in rows:
            if r.get("is_answer") is False:  # e.g. a Self-Instruct proposal: a new problem, not an answer
                r.update(answer=None, verifier=verifier, reward=0.0, correct=False, verify_reason="not an answer",
                         steps_ok=None)
            else:
                answers.append(r)
        problems = [self.problem_of(r) for r in answers]
        scores = self.task.verify_many(problems, [r["completion"] for r in answers])  # batched: code's sandbox
        for r, s in zip(answers, scores):
            r.update(answer=s.answer, verifier=verifier, reward=s.reward, correct=s.correct,
                     verify_reason=s.reason, steps_ok=s.info.get("steps_ok"))
        return rows

    def train(self, rows: list[dict], *, init: str, steps: int | None = None, stage: str = "train",
              out_dir: str | None = None, desc: str | None = None, trainer: Trainer | None = None, **objective) -> dict:
        """Fine-tune ``init`` on ``rows`` into this iteration's checkpoint (or ``out_dir``),
        seeded by ``stage``; ``steps`` None: the trainer's own; ``objective``: the
        trainer's own arguments (``ref_model`` for DPO, ``reward_fn`` for GRPO);
        ``trainer``: another trainer than the recipe's (CAI's SL stage)."""
        return (trainer or self.trainer).train(
            init, rows, out_dir or self.out_dir, steps=steps, seed=self.seed(stage),
            position_tracker=self.task.train_position_tracker, desc=f"iter {self.k} {desc or stage}", **objective)

    def problem_of(self, row: dict) -> Problem:
        """The problem a row answers: the row's own ``problem_json`` when it has one
        (problems a method made up or drew elsewhere: Self-Instruct, SPIN's labeled
        seed set), else the task's splits."""
        pid = row["problem_id"]
        if row.get("problem_json"):
            return Problem(**json.loads(row["problem_json"]))
        if pid in self.problems:
            return self.problems[pid]
        raise KeyError(f"row {row.get('sample_id')}: problem {pid!r} is in no split and the row has no problem_json")


def problem_json(p: Problem) -> str:
    """A problem as JSON, for rows whose problem is not in the task's splits."""
    return json.dumps({"id": p.id, "question": p.question, "answer": p.answer, "group": p.group,
                       "rationale": p.rationale, "meta": p.meta}, sort_keys=True)
