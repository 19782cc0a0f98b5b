"""``selftaught verify TASK --input completions.jsonl [--output verdicts.jsonl] [key=value ...]``

Runs a task's verifier over completions and writes one verdict per input line:
``{"line", "problem_id", "score", "correct", "reason", "answer"}``. Each input line
is ``{"problem_id": ..., "completion": ...}`` or ``{"problem": {...}, "completion": ...}``
(an inline problem: ``question``, ``answer`` and optionally ``id``, ``group``,
``rationale``, ``meta``). The task is built from its ``Config`` defaults plus the
``key=value`` overrides (``source=mbpp``, ``eval_digits=[1,3]``); ``jsonl`` and
``dataset`` need no data file when every line is inline. The whole input
is read and checked before anything is verified or written; the output file
appears only when complete.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

from selftaught import jsonl
from selftaught.records import Problem

EXAMPLE = '{"problem_id": "12+7", "completion": "..."}'
INLINE = '{"problem": {"question": "3+4", "answer": "7", "meta": {"a": 3, "b": 4}}, "completion": "=7"}'
PROBLEM_FIELDS = {"id": (str, int), "question": (str,), "answer": (str, int, float), "group": (str,),
                  "rationale": (str,), "meta": (dict,)}


def arguments(p) -> None:
    p.add_argument("task", help="task type, e.g. arithmetic or code")
    p.add_argument("overrides", nargs="*", help="task config key=value, e.g. source=mbpp")
    p.add_argument("--input", "-i", required=True, help="JSONL of {problem_id | problem, completion}")
    p.add_argument("--output", "-o", help="verdicts JSONL (default: stdout)")


def build_task(name: str, overrides: list[str], build: bool = True):
    from pydantic import ValidationError

    from selftaught import registry
    from selftaught.config import ConfigError

    module = registry.load("task", name)
    fields = {"type": name}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"task override `{item}`: expected key=value, e.g. source=mbpp")
        key, raw = item.split("=", 1)
        fields[key] = yaml.safe_load(raw)
    try:
        cfg = module.Config.model_validate(fields)
        return module.build(cfg) if build else cfg
    except ValidationError as e:
        msgs = [f"  field `{'.'.join(map(str, er['loc']))}`: {er['msg']}" for er in e.errors()]
        raise ConfigError(f"task {name}: invalid settings:\n" + "\n".join(msgs)) from None


def _inline_problem(path, n: int, obj: dict) -> Problem:
    p = obj["problem"]
    for key in p:
        if key not in PROBLEM_FIELDS:
            raise jsonl.DataError(f"{path}, line {n}, field `problem.{key}`: unknown field; a problem has "
                                  f"{', '.join(PROBLEM_FIELDS)}.")
    for key in ("question", "answer"):
        jsonl.field(path, n, p, key, PROBLEM_FIELDS[key], INLINE, label="problem")
    for key in ("id", "group", "rationale", "meta"):
        jsonl.field(path, n, p, key, PROBLEM_FIELDS[key], INLINE, required=False, label="problem")
    return Problem(id=str(p.get("id", f"line{n}")), question=p["question"], answer=str(p["answer"]),
                   group=p.get("group", ""), rationale=p.get("rationale"), meta=p.get("meta") or {})


def read_completions(path, task) -> list[tuple[int, Problem, str]]:
    """Every line checked before any is verified: (line number, problem, completion)."""
    index: dict[str, Problem] | None = None
    out = []
    for n, obj in jsonl.lines(path, EXAMPLE):
        completion = jsonl.field(path, n, obj, "completion", (str,), EXAMPLE)
        if "problem" in obj:
            jsonl.field(path, n, obj, "problem", (dict,), EXAMPLE)
            problem = _inline_problem(path, n, obj)
        else:
            if "problem_id" not in obj:
                raise jsonl.DataError(f"{path}, line {n}: field `problem_id` (or an inline `problem`) is missing. "
                                      f"Expected a line like {EXAMPLE}")
            pid = str(jsonl.field(path, n, obj, "problem_id", (str, int), EXAMPLE))
            if task is None:
                raise NoTask(f"{path}, line {n}: a problem_id needs the task's data")
            if index is None:
                index = {p.id: p for split in (task.seed_set(), task.train_pool(), task.eval_set()) for p in split}
            if pid not in index:
                near = ", ".join(list(index)[:3])
                raise jsonl.DataError(f"{path}, line {n}, field `problem_id`: {pid!r} is not a problem of task "
                                      f"{task.name} with these settings (ids look like {near}); give the problem "
                                      "inline as `problem` instead.")
            problem = index[pid]
        out.append((n, problem, completion))
    return out


def verdicts(task, items) -> list[dict]:
    problems, completions = [p for _, p, _ in items], [c for _, _, c in items]
    scores = task.verify_many(problems, completions)  # batched: the code task runs its sandbox in parallel
    return [{"line": n, "problem_id": p.id, "score": s.reward, "correct": bool(s.correct), "reason": s.reason,
             "answer": s.answer} for (n, p, _), s in zip(items, scores)]


def write(rows: list[dict], output: str | None) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if not output:
        sys.stdout.write(text)
        return
    out = Path(output)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)  # never a half-written verdicts file


def inline_task(name: str, overrides: list[str], path, error: Exception):
    """``jsonl``/``dataset`` over the input's inline problems alone, so no data file is
    needed when every line carries its problem (its verifier inferred from their gold
    answers); else the ``error`` building the task from its settings gave."""
    from selftaught.config import ConfigError
    from selftaught.tasks.jsonl import qa_task

    placeholder = {"jsonl": "train_path", "dataset": "path"}.get(name)
    if placeholder is None or any(f"{placeholder}=" in o for o in overrides):
        raise error
    try:
        items = read_completions(path, None)
    except NoTask:
        raise error from None
    try:
        task = build_task(name, [*overrides, f"{placeholder}=(inline problems)"], build=False)
    except ConfigError:
        raise error from None
    return qa_task(name, task, [p for _, p, _ in items], []), items


class NoTask(jsonl.DataError):
    """A line names a problem by id, but there is no task to look it up in."""


def run(args) -> int:
    from selftaught.config import ConfigError

    try:
        task = build_task(args.task, args.overrides)
        items = read_completions(args.input, task)
    except ConfigError as e:
        task, items = inline_task(args.task, args.overrides, args.input, e)
    rows = verdicts(task, items)
    write(rows, args.output)
    correct = sum(r["correct"] for r in rows)
    print(f"verified {len(rows)} completions with {task.name}: {correct} correct ({correct / len(rows):.1%})",
          file=sys.stderr)
    return 0
