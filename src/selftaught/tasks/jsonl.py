"""``jsonl``: your own problems from any JSONL (optionally .gz) or Parquet file.

Field names are configurable (dotted names reach into nested objects):
``question_field`` and ``answer_field`` are required in every record;
``rationale_field`` (worked solutions: the seed set and the natural data) and
``group_field`` are optional; a record's ``id`` is its problem id when it has one
(``id_field`` names another field). With ``answer_format: gsm8k`` the answer field
is a worked solution ending in ``#### <number>``, split into rationale and answer.
With an ``eval_path`` the two files are the pool and the held-out set (the
contamination guard refuses overlap); without one the train file is divided by a
hash of each question (``held_out_fraction``).

Verifier: ``auto`` (the default) is ``numeric`` when every gold answer is a number
and ``exact`` when none is; a file with both is refused, with examples, because
either choice would silently mis-score part of it (``exact`` scores "42.0" against
"42" wrong). ``numeric`` compares the number in the ``Answer:`` line or
``\\boxed{}`` (``$``, commas, units tolerated; ``rel_tol``/``abs_tol``);
``exact`` compares the stated answer, case- and whitespace-insensitive. Or your
own function: ``verifier: ./checks.py:within_1pct`` (``verifiers/callable.py``).

Why ``lenient`` is off by default: "the last number of the completion" when no
answer is stated turned a trace ending in a URL with "FD2" into a correct one --
and what is scored correct is what STaR trains on. Turn it on only knowingly.

    selftaught run recipes/star_smollm2_gsm8k.yaml task.type=jsonl task.train_path=my.jsonl
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Literal

from pydantic import Field

from selftaught import jsonl as reader
from selftaught.component import Component
from selftaught.records import Problem, Score
from selftaught.tasks import _qa

_NUMBER_ONLY = re.compile(r"\s*[-+]?\s*\$?\s*(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+)?\s*%?\s*\.?\s*")


class Fields(Component):
    """What the ``jsonl`` and ``dataset`` tasks share: field mapping, verifier, splits."""

    question_field: str = "question"
    answer_field: str = "answer"
    answer_format: Literal["plain", "gsm8k"] = Field("plain", description="gsm8k: the answer field is a solution ending in '#### <answer>'")
    rationale_field: str | None = Field(None, description="worked solutions: the seed set and the natural data")
    id_field: str | None = Field(None, description="problem id field (default: `id` when a record has one, else the line)")
    group_field: str | None = Field(None, description="what held-out accuracy is broken down by")
    verifier: str = Field("auto", description="auto (inferred from the gold answers), numeric, exact, or module:function / ./file.py:function")
    lenient: bool = Field(False, description="numeric: no stated answer -> the last number of the completion")
    rel_tol: float = Field(0.0, ge=0, description="numeric: also correct within this fraction of the gold answer")
    abs_tol: float = Field(0.0, ge=0, description="numeric: also correct within this absolute difference")
    threshold: float = Field(0.5, description="your verifier returns a number: correct when it is at least this")
    held_out_fraction: float = Field(0.2, gt=0, lt=1, description="share held out when there is no eval set")
    pool_size: int | None = Field(None, description="at most this many pool problems (seeded sample)")
    eval_size: int | None = Field(None, description="at most this many held-out problems (seeded sample)")
    instruction: str = Field(_qa.INSTRUCTION, description="appended to every question")
    split_seed: int = Field(0, description="seed of the hash split and the samples")


class Config(Fields):
    type: str = "jsonl"
    train_path: str = Field(..., description="JSONL/Parquet file of the train pool")
    eval_path: str | None = Field(None, description="held-out file (None: hash-split train_path)")


def is_number(text: str) -> bool:
    """Is a gold answer a number and nothing else ("42", "-3.5", "$1,200", "3/4", "50%")?"""
    return bool(_NUMBER_ONLY.fullmatch(text)) and _qa.parse_number(text) is not None


def _answer(source, n: int, rec: dict, cfg: Fields) -> tuple[str, str | None]:
    """(gold answer, worked solution or None) of one record."""
    raw = str(reader.get(source, n, rec, cfg.answer_field)).strip()
    rationale = reader.get(source, n, rec, cfg.rationale_field, required=False) if cfg.rationale_field else None
    if cfg.answer_format == "gsm8k":
        if "####" not in raw:
            raise reader.DataError(f"{source}, line {n}: field `{cfg.answer_field}` has no final '#### <answer>' "
                                   f"(answer_format gsm8k), got {raw[-60:]!r}")
        working, raw = (x.strip() for x in raw.rsplit("####", 1))
        rationale = rationale or re.sub(r"<<[^>]*>>", "", working).strip() or None
        value = _qa.parse_number(raw)
        raw = _qa.format_number(value) if value is not None and is_number(raw) else raw
    return raw, (str(rationale).strip() or None) if rationale is not None else None


def problem(source, n: int, rec: dict, cfg: Fields, prefix: str, ids: reader.UniqueIds) -> Problem:
    """One record to a Problem; every error names the file (or dataset), line and field."""
    answer, rationale = _answer(source, n, rec, cfg)
    id_field = cfg.id_field or ("id" if rec.get("id") is not None else None)
    rid = reader.get(source, n, rec, id_field) if id_field else None
    if rid is not None:
        ids.add(n, id_field, str(rid))
    group = reader.get(source, n, rec, cfg.group_field) if cfg.group_field else None
    return Problem(
        id=f"{prefix}:{rid if rid is not None else n}", question=str(reader.get(source, n, rec, cfg.question_field)).strip(),
        answer=answer, group=str(group) if group is not None else "", meta={"file": str(source), "line": n},
        rationale=f"{rationale}\nAnswer: {answer}" if rationale else None)


def load(path: str, cfg: Fields) -> list[Problem]:
    ids = reader.UniqueIds(path)
    out = [problem(path, n, rec, cfg, Path(path).stem, ids) for n, rec in reader.records(path)]
    if not out:
        raise reader.DataError(f"{path}: no records")
    return out


def verify_exact(problem: Problem, completion: str) -> Score:
    stated = _qa.final_answer(completion)
    if stated is None:
        return Score(0.0, False, None, "no stated answer (Answer: line)")
    norm = lambda s: " ".join(s.lower().split()).rstrip(".")  # noqa: E731
    ok = norm(stated) == norm(problem.answer)
    return Score(float(ok), ok, stated, "correct" if ok else f"answer {stated}, expected {problem.answer}")


def _where(p: Problem) -> str:
    return f"{p.meta.get('file')}, line {p.meta.get('line')}"


def choose_verifier(cfg: Fields, problems: list[Problem]) -> str:
    """``numeric`` or ``exact`` (or the user's spec) for these gold answers, or a
    DataError when ``auto`` cannot tell or ``numeric`` meets a non-number."""
    if cfg.verifier not in ("auto", "numeric", "exact"):
        return cfg.verifier
    numbers = [p for p in problems if is_number(p.answer)]
    others = [p for p in problems if not is_number(p.answer)]
    if cfg.verifier == "numeric":
        bad = next((p for p in problems if _qa.parse_number(p.answer) is None), None)
        if bad is not None:
            raise reader.DataError(f"{_where(bad)}: field `{cfg.answer_field}` is not a number ({bad.answer!r}) "
                                   "but the task's verifier is numeric")
        return "numeric"
    if cfg.verifier == "exact" or not numbers:
        if numbers and not others:
            print(f"warning: task verifier `exact` on gold answers that are all numbers (e.g. {numbers[0].answer!r}): "
                  "'42.0' or '$42' will be scored wrong; `numeric` compares them as numbers", file=sys.stderr)
        return "exact"
    if not others:
        return "numeric"
    raise reader.DataError(
        f"cannot infer the task's verifier: {len(numbers)} gold answers are numbers (e.g. {_where(numbers[0])}: "
        f"{numbers[0].answer!r}) and {len(others)} are not (e.g. {_where(others[0])}: {others[0].answer!r}). "
        "Set task.verifier=numeric (compare as numbers; non-numbers are refused), task.verifier=exact "
        "(compare as text: '42.0' is not '42'), or your own: task.verifier=./checks.py:my_check")


def qa_task(name: str, cfg: Fields, pool: list[Problem], held: list[Problem]):
    """The task over these splits, verified as ``cfg`` says; its ``verifier_version``
    names the verifier, so each row's ``verifier`` column says how it was scored."""
    from selftaught.tasks.gsm8k import verify_numeric
    from selftaught.verifiers.callable import with_verifier

    kind = choose_verifier(cfg, [*pool, *held])
    if kind == "numeric":
        verify = lambda p, c: verify_numeric(p, c, cfg.lenient, cfg.rel_tol, cfg.abs_tol)  # noqa: E731
    else:
        verify = verify_exact
    seeds = [p for p in pool if p.rationale]
    task = _qa.QATask(name, _qa.take(pool, cfg.pool_size, f"{cfg.split_seed}/pool"),
                      _qa.take(held, cfg.eval_size, f"{cfg.split_seed}/eval"), verify, seeds=seeds,
                      instruction=cfg.instruction)
    tol = f"(rel_tol={cfg.rel_tol:g},abs_tol={cfg.abs_tol:g})" if cfg.rel_tol or cfg.abs_tol else ""
    task.verifier_version = f"{kind}{tol}{'+lenient' if cfg.lenient else ''}"
    if kind in ("numeric", "exact"):
        return task
    return with_verifier(task, kind, threshold=cfg.threshold, extract=_qa.final_answer)


def build(cfg: Config):
    if cfg.eval_path:
        pool, held = _qa.dedupe(load(cfg.train_path, cfg)), _qa.dedupe(load(cfg.eval_path, cfg))
    else:
        pool, held = _qa.hash_split(load(cfg.train_path, cfg), cfg.held_out_fraction, f"jsonl/{cfg.split_seed}")
    if not any(p.rationale for p in pool):
        print(f"warning: {cfg.train_path} gives no worked solutions"
              f"{'' if cfg.rationale_field else ' (no rationale_field set)'}: there is no natural data to mix in "
              "(mix.natural_fraction) and no seed set", file=sys.stderr)
    return qa_task("jsonl", cfg, pool, held)
