"""Progress bars for long stages (rich), on stderr so stdout stays for tables."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


@contextmanager
def progress_bar(desc: str, total: int, unit: str = "it"):
    """``with progress_bar("sample", 1000, "samples") as bar: bar.advance(64)`` -- shows rate and ETA."""
    cols = [TextColumn(f"[bold blue]{desc}"), BarColumn(), MofNCompleteColumn(), TextColumn("[cyan]{task.fields[rate]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*cols, console=console) as progress:
        tid = progress.add_task(desc, total=total, rate="")

        def advance(n: int = 1) -> None:
            progress.advance(tid, n)
            speed = progress.tasks[0].speed
            if speed:
                progress.update(tid, rate=f"{speed:,.1f} {unit}/s")

        yield SimpleNamespace(advance=advance)
