"""``selftaught inspect RUN_DIR [--problem ID] [--iteration K] [--kept|--rejected] [--limit N]``

With ``--problem``: that problem's history across iterations -- every sample and
held-out answer the run recorded for it, one row each (prompt, completion,
answer, correct, kept, why). Without: a sample of the rows of one iteration
(default: the last one that sampled). Model text is printed as plain text, never
as rich markup, so a completion cannot restyle or hide parts of the terminal.
"""

from __future__ import annotations

import random

from rich.table import Table
from rich.text import Text

from selftaught.report.rundata import Run
from selftaught.store import RunStore

MAX_CHARS = 400  # of a prompt or completion, unless --full


def _text(value, full: bool, style: str = "") -> Text:
    s = "" if value is None else str(value)
    if not full and len(s) > MAX_CHARS:
        s = s[:MAX_CHARS] + f"... [{len(s) - MAX_CHARS} more characters; --full shows all]"
    return Text(s, style=style)


def _prompt(row: dict, full: bool) -> Text:
    """The prompt with the hint (if any) highlighted where it appears."""
    t = _text(row.get("prompt"), full)
    hint = row.get("hint")
    if hint:
        at = t.plain.rfind(str(hint))
        if at >= 0:  # highlighted where it appears; named below only when it is not visible
            t.stylize("black on yellow", at, at + len(str(hint)))
        else:
            t.append(f"\n(hint given: {hint})", style="yellow")
    return t


def gold_answers(run: Run) -> dict[str, str]:
    """Problem id -> gold answer, from the run's task rebuilt from config.yaml; {} when
    it cannot be (a Python object, a moved data file): the column is then left empty."""
    from selftaught import registry

    try:
        section = {k: v for k, v in run.config["task"].items() if k != "verifier"}  # the verdicts are on disk
        module = registry.load("task", section["type"])
        task = module.build(module.Config.model_validate(section))
        return {p.id: p.answer for split in (task.seed_set(), task.train_pool(), task.eval_set()) for p in split}
    except Exception:
        return {}


def _verdict(row: dict) -> Text:
    t = Text("correct" if row.get("correct") else "wrong", style="green" if row.get("correct") else "red")
    if "kept" not in row:
        return t.append("\nheld-out", style="dim")
    return t.append("\nkept" if row["kept"] else "\nrejected", style="bold green" if row["kept"] else "bold red")


def rows_table(rows: list[dict], title: str, full: bool = False, by: str = "iteration", gold: dict | None = None) -> Table:
    """One row per record; ``by="iteration"`` (one problem) or ``"problem"`` (one iteration) names the first column."""
    t = Table(title=title, header_style="bold", show_lines=True)
    first = "iter" if by == "iteration" else "problem"
    t.add_column(first, justify="right" if by == "iteration" else "left", overflow="fold", ratio=1 if by == "problem" else None)
    t.add_column("phase", no_wrap=True)
    for col, ratio in (("prompt", 2), ("completion", 3), ("answer", 1), ("gold", 1)):
        t.add_column(col, overflow="fold", ratio=ratio)
    t.add_column("verdict", no_wrap=True)
    t.add_column("reason", overflow="fold", ratio=2)
    for r in rows:
        reason = r.get("select_reason") or r.get("verify_reason") or ""
        t.add_row(Text(str(r.get("iteration" if by == "iteration" else "problem_id", ""))), Text(str(r.get("phase", ""))),
                  _prompt(r, full), _text(r.get("completion"), full), _text(r.get("answer"), full),
                  _text((gold or {}).get(r.get("problem_id")), full), _verdict(r),
                  _text(reason, full))
    return t


def _keep(row: dict, kept: bool | None) -> bool:
    return kept is None or ("kept" in row and bool(row["kept"]) == kept)


def problem_ids(run: Run, problem: str) -> list[str]:
    """``problem`` itself, or the ids whose part after the last ``:`` it is (``wp60``
    finds ``word:wp60``: file tasks prefix ids with the file name)."""
    ids = {r["problem_id"] for k in RunStore(run.root).iterations() for name in ("samples", "eval")
           for r in run.rows(k, name, columns=("problem_id",))}
    return [problem] if problem in ids else sorted(i for i in ids if i.rsplit(":", 1)[-1] == problem)


def problem_history(run: Run, problem: str, iteration: int | None = None, kept: bool | None = None) -> list[dict]:
    """Every sample and held-out row of ``problem``, in iteration order."""
    matches = problem_ids(run, problem)
    problem = matches[0] if len(matches) == 1 else problem
    out = []
    for k in RunStore(run.root).iterations():
        if iteration is not None and k != iteration:
            continue
        for name in ("samples", "eval"):
            rows = run.rows(k, name, filters=[("problem_id", "=", problem)])
            out += [{"iteration": k, **r} for r in rows if _keep(r, kept)]
    return out


def iteration_rows(run: Run, iteration: int | None, kept: bool | None, limit: int, seed: int = 0) -> tuple[int, list[dict], int]:
    """(iteration, up to ``limit`` rows of it drawn at random, how many matched)."""
    its = RunStore(run.root).iterations()
    if iteration is None:
        with_samples = [k for k in its if run.path(k, "samples").is_file()]
        iteration = (with_samples or its or [0])[-1]
    elif iteration not in its:
        raise ValueError(f"{run.root}: no iteration {iteration}; it has {', '.join(map(str, its)) or 'none'}")
    rows = run.rows(iteration, "samples") or run.rows(iteration, "eval")
    rows = [{"iteration": iteration, **r} for r in rows if _keep(r, kept)]
    matched = len(rows)
    if len(rows) > limit:
        rows = random.Random(seed).sample(rows, limit)
    return iteration, rows, matched


def main(args, console) -> int:
    run = Run(args.run_dir)
    kept = True if args.kept else False if args.rejected else None
    which = {True: "kept ", False: "rejected ", None: ""}[kept]
    if args.problem:
        rows = problem_history(run, args.problem, args.iteration, kept)
        if not rows:
            console.print(f"no {which}rows for problem {args.problem!r} in {run.root}"
                          + (f" at iteration {args.iteration}" if args.iteration is not None else ""), markup=False)
            return 2
        shown = rows[: args.limit] if args.limit else rows
        console.print(rows_table(shown, f"{run.name}: problem {rows[0]['problem_id']} across iterations", args.full,
                                 gold=gold_answers(run)))
        if len(shown) < len(rows):
            console.print(f"{len(shown)} of {len(rows)} rows shown (--limit)")
        return 0
    k, rows, matched = iteration_rows(run, args.iteration, kept, args.limit or 10)
    if not rows:
        console.print(f"no {which}rows at iteration {k} of {run.root}", markup=False)
        return 2
    console.print(rows_table(rows, f"{run.name}: iteration {k}, {len(rows)} of {matched} {which}rows", args.full, by="problem",
                             gold=gold_answers(run)))
    console.print(f"one problem's history: selftaught inspect {run.root} --problem {rows[0]['problem_id']}", markup=False, soft_wrap=True)
    return 0


def add_arguments(p) -> None:
    p.add_argument("run_dir")
    p.add_argument("--problem", help="a problem id: its history across iterations")
    p.add_argument("--iteration", type=int, help="only this iteration (default without --problem: the last that sampled)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--kept", action="store_true", help="only kept samples")
    g.add_argument("--rejected", action="store_true", help="only rejected samples")
    p.add_argument("--limit", type=int, help="at most this many rows (default without --problem: 10)")
    p.add_argument("--full", action="store_true", help=f"print whole prompts and completions (default: first {MAX_CHARS} characters)")
