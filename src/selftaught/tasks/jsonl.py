"""``jsonl``: your own problems from any JSONL (optionally .gz) or Parquet file.

Field names are configurable (dotted names reach into nested objects):
``question_field`` and ``answer_field`` are required in every record;
``rationale_field`` (worked solutions: the seed set), ``id_field`` and
``group_field`` are optional. With an ``eval_path`` the two files are the pool
and the held-out set (the contamination guard refuses overlap); without one the
train file is divided by a hash of each question (``held_out_fraction``).

Verifier by config: ``numeric`` (the number in the ``Answer:`` line or
``\\boxed{}``; ``$``, commas, units tolerated) or ``exact`` (the stated answer,
case- and whitespace-insensitive, trailing period dropped).

    selftaught run recipes/star_smollm2_gsm8k.yaml task.type=jsonl task.train_path=my.jsonl
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from selftaught.config import Component
from selftaught.records import Problem, Score
from selftaught.tasks import _files, _qa


class Config(Component):
    type: str = "jsonl"
    train_path: str = Field(..., description="JSONL/Parquet file of the train pool")
    eval_path: str | None = Field(None, description="held-out file (None: hash-split train_path)")
    question_field: str = "question"
    answer_field: str = "answer"
    rationale_field: str | None = Field(None, description="worked solutions, used as the seed set")
    id_field: str | None = Field(None, description="problem id (default: file stem and line number)")
    group_field: str | None = Field(None, description="what held-out accuracy is broken down by")
    verifier: Literal["numeric", "exact"] = Field("exact", description="how a stated answer is compared to the gold one")
    lenient: bool = Field(True, description="numeric: no stated answer -> the last number of the completion")
    held_out_fraction: float = Field(0.2, gt=0, lt=1, description="share held out when there is no eval_path")
    pool_size: int | None = Field(None, description="at most this many pool problems (seeded sample)")
    eval_size: int | None = Field(None, description="at most this many held-out problems (seeded sample)")
    instruction: str = Field(_qa.INSTRUCTION, description="appended to every question")
    split_seed: int = Field(0, description="seed of the hash split and the samples")


def load(path: str, cfg: Config) -> list[Problem]:
    out, stem = [], Path(path).stem
    for n, rec in _files.read_records(path):
        answer = str(_files.field(path, n, rec, cfg.answer_field)).strip()
        if cfg.verifier == "numeric" and _qa.parse_number(answer) is None:
            raise _files.DataFileError(f"{path}, line {n}: field `{cfg.answer_field}` is not a number "
                                       f"({answer!r}) but the task's verifier is numeric")
        rid = _files.field(path, n, rec, cfg.id_field) if cfg.id_field else None
        group = _files.field(path, n, rec, cfg.group_field) if cfg.group_field else None
        rationale = _files.field(path, n, rec, cfg.rationale_field, required=False) if cfg.rationale_field else None
        out.append(Problem(
            id=f"{stem}:{rid if rid is not None else n}",
            question=str(_files.field(path, n, rec, cfg.question_field)).strip(), answer=answer,
            group=str(group) if group is not None else "", meta={"file": str(path), "line": n},
            rationale=f"{str(rationale).strip()}\nAnswer: {answer}" if rationale else None))
    if not out:
        raise _files.DataFileError(f"{path}: no records")
    return out


def verify_exact(problem: Problem, completion: str) -> Score:
    stated = _qa.final_answer(completion)
    if stated is None:
        return Score(0.0, False, None, "no stated answer (Answer: line)")
    norm = lambda s: " ".join(s.lower().split()).rstrip(".")  # noqa: E731
    ok = norm(stated) == norm(problem.answer)
    return Score(float(ok), ok, stated, "correct" if ok else f"answer {stated}, expected {problem.answer}")


def build(cfg: Config) -> _qa.QATask:
    from selftaught.tasks.gsm8k import verify_numeric

    if cfg.eval_path:
        pool, held = _qa.dedupe(load(cfg.train_path, cfg)), _qa.dedupe(load(cfg.eval_path, cfg))
    else:
        pool, held = _qa.hash_split(load(cfg.train_path, cfg), cfg.held_out_fraction, f"jsonl/{cfg.split_seed}")
    verify = (lambda p, c: verify_numeric(p, c, cfg.lenient)) if cfg.verifier == "numeric" else verify_exact
    return _qa.QATask("jsonl", _qa.take(pool, cfg.pool_size, f"{cfg.split_seed}/pool"),
                      _qa.take(held, cfg.eval_size, f"{cfg.split_seed}/eval"), verify,
                      seeds=[p for p in pool if p.rationale], instruction=cfg.instruction)
