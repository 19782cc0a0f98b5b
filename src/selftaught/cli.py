"""``selftaught`` command line.

    selftaught run [RECIPE.yaml | RUN_DIR] [key=value ...]   run or resume a loop
    selftaught validate RECIPE.yaml [key=value ...]          check a recipe without running it
    selftaught show RUN_DIR                                  the per-iteration table
    selftaught ls                                            registered components
    selftaught verify TASK --input C.jsonl [--output V.jsonl] [key=value ...]   a verdict per completion
    selftaught probe --model M --task T [--n 200] [key=value ...]   base accuracy, CI, zone of proximal development
    selftaught report RUN_DIR [--out PATH]                   report.html: plots, tables, example traces
    selftaught compare RUN_A RUN_B ... [--out compare.html]  runs overlaid, final/best accuracy and cost
    selftaught inspect RUN_DIR [--problem ID] [--iteration K] [--kept|--rejected]   records in the terminal
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

# Tables are wide (one column per digit count): don't squeeze them to 80 columns in logs.
out = Console() if sys.stdout.isatty() else Console(width=200)
err = Console(stderr=True, soft_wrap=True)  # error paragraphs wrap in the terminal, not at 80 columns


def _load(target: str | None, overrides: list[str]):
    """A recipe path, a run directory (resume with its saved config), or None (the default)."""
    from selftaught import config

    if target and "=" in target:
        overrides, target = [target, *overrides], None
    if target and Path(target).is_dir():
        saved = Path(target) / "config.yaml"
        if not saved.is_file():
            raise config.ConfigError(f"{target}: a directory without config.yaml is not a selftaught run")
        if overrides:
            raise config.ConfigError("a run's config is fixed at start; overrides cannot be applied when resuming")
        return config.load(saved), Path(target)
    return config.load(target, overrides), None


def cmd_run(args) -> int:
    from selftaught import loop, summary

    cfg, root = _load(args.target, args.overrides)
    root = root or Path(cfg.out_dir) / cfg.name
    err.print(f"[bold]selftaught[/] {cfg.method.type} on {cfg.task.type} with {cfg.model} -> {root}")

    def on_iteration(store, metrics):
        out.print(summary.table(store.metrics(), title=f"{cfg.name}: held-out accuracy per iteration"))
        for w in metrics.get("collapse/warnings") or []:
            err.print(f"[yellow]collapse warning:[/] {escape(w['message'])}", highlight=False)

    try:
        loop.run(cfg, root, on_iteration=on_iteration)
    except KeyboardInterrupt:
        err.print(f"\n[yellow]Interrupted.[/] Finished stages are saved; resume with: selftaught run {root}")
        return 130
    err.print(f"[bold green]done.[/] Records and metrics in {root}; table again: selftaught show {root}")
    return 0


def cmd_validate(args) -> int:
    from selftaught.config import to_yaml

    cfg, _ = _load(args.target, args.overrides)
    out.print(to_yaml(cfg), end="", markup=False, highlight=False)
    from selftaught import hardware

    err.print(f"hardware: {hardware.resolve(cfg.hardware).describe()}", markup=False, highlight=False)
    err.print("[green]recipe is valid[/]")
    return 0


def cmd_show(args) -> int:
    from selftaught import summary
    from selftaught.store import RunStore

    store = RunStore(args.run_dir)
    if not (store.root / "config.yaml").is_file():
        err.print(f"{args.run_dir}: not a selftaught run (no config.yaml)")
        return 2
    history = store.metrics()
    out.print(summary.table(history, title=str(store.root)))
    for line in summary.verdict(history, store.root):
        out.print(line, highlight=False, markup=False)
    return 0


def cmd_ls(args) -> int:
    from selftaught import registry

    for kind in registry.FOLDERS:
        out.print(f"[bold]{kind}s[/]: {', '.join(registry.available(kind))}")
    try:  # the generators behind `reasoning_gym:<name>`
        from reasoning_gym.factory import DATASETS

        out.print(f"[bold]reasoning_gym:<name>[/]: {', '.join(sorted(DATASETS))}", highlight=False)
    except ImportError:
        out.print("reasoning_gym:<name>: pip install reasoning-gym to list its generators", highlight=False)
    out.print("your own: any type: as an import path, `my_pkg.mod:Name` or `./file.py:Name`; a task's verifier: "
              "`module:function` (docs/your_own.md)", markup=False, highlight=False)
    return 0


def cmd_report(args) -> int:
    from selftaught.report.html import build_report

    out.print(f"written: {build_report(args.run_dir, args.out)}", markup=False, highlight=False)
    return 0


def cmd_compare(args) -> int:
    from selftaught.report import compare

    return compare.main(args, out)


def cmd_inspect(args) -> int:
    from selftaught.report import inspect

    return inspect.main(args, out)


def main(argv: list[str] | None = None) -> int:
    from selftaught.config import ConfigError
    from selftaught.store import RunDirError

    p = argparse.ArgumentParser(prog="selftaught", description="Self-improvement loops for language models.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a recipe (default: STaR on built-in arithmetic), or resume a run directory")
    r.add_argument("target", nargs="?", help="recipe YAML or run directory")
    r.add_argument("overrides", nargs="*", help="key=value, e.g. trainer.lr=1e-4 iterations=3")
    r.set_defaults(fn=cmd_run)
    v = sub.add_parser("validate", help="check a recipe and print it resolved, without running")
    v.add_argument("target", nargs="?")
    v.add_argument("overrides", nargs="*")
    v.set_defaults(fn=cmd_validate)
    s = sub.add_parser("show", help="per-iteration table of a run")
    s.add_argument("run_dir")
    s.set_defaults(fn=cmd_show)
    sub.add_parser("ls", help="registered tasks, backends, methods, trainers").set_defaults(fn=cmd_ls)
    from selftaught import verify_cli

    vf = sub.add_parser("verify", help="run a task's verifier over a JSONL of completions, one verdict per line")
    verify_cli.arguments(vf)
    vf.set_defaults(fn=verify_cli.run)
    from selftaught import probe

    pr = sub.add_parser("probe", help="base accuracy of a model on a task, and whether it is in the 25-75%% zone")
    probe.add_arguments(pr)
    pr.set_defaults(fn=probe.cmd)
    rep = sub.add_parser("report", help="write RUN_DIR/report.html (self-contained, opens offline)")
    rep.add_argument("run_dir")
    rep.add_argument("--out", help="write here instead of RUN_DIR/report.html")
    rep.set_defaults(fn=cmd_report)
    c = sub.add_parser("compare", help="runs side by side: plots overlaid, final/best accuracy and cost")
    c.add_argument("run_dirs", nargs="+")
    c.add_argument("--out", default="compare.html", help="HTML file to write (default: compare.html)")
    c.set_defaults(fn=cmd_compare)
    from selftaught.report.inspect import add_arguments

    i = sub.add_parser("inspect", help="a problem's history across iterations, or a sample of one iteration's records")
    add_arguments(i)
    i.set_defaults(fn=cmd_inspect)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except (ConfigError, RunDirError, FileNotFoundError, ValueError) as e:
        err.print("[bold red]error:[/]", end=" ")
        err.print(str(e), markup=False, highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
