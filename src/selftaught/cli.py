"""``selftaught`` command line.

    selftaught run [RECIPE.yaml | RUN_DIR] [key=value ...]   run or resume a loop
    selftaught validate RECIPE.yaml [key=value ...]          check a recipe without running it
    selftaught show RUN_DIR                                  the per-iteration table
    selftaught ls                                            registered components
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

out = Console()
err = Console(stderr=True)


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
    if history:
        best = max(history, key=lambda m: m.get("eval/acc", 0.0))
        out.print(f"best held-out accuracy: iteration {best['iteration']} ({best.get('eval/acc', 0):.1%})")
        stops = [m for m in history if m.get("gate/stop")]
        if stops:
            out.print(f"stopped after iteration {stops[0]['iteration']}: {stops[0]['gate/stop']}")
    return 0


def cmd_ls(args) -> int:
    from selftaught import registry

    for kind in registry.FOLDERS:
        out.print(f"[bold]{kind}s[/]: {', '.join(registry.available(kind))}")
    return 0


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
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except (ConfigError, RunDirError, FileNotFoundError, ValueError) as e:
        err.print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
