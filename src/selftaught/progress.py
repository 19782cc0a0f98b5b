"""Progress for long stages and for the run as a whole (rich), on stderr so
stdout stays for tables.

Per stage: a bar with rate and ETA (``progress_bar``). For the run: ``run_progress``
wraps the loop's iterations, prints "iteration k of N, elapsed, about T left" as
each begins, and while it is active every stage bar carries the same line, so a
user sees how far the whole run is, not only the stage. Outside a terminal (a
log file) rich draws no live bars, so a plain line is printed every
``LOG_EVERY`` seconds instead.

The estimate is the mean wall time of the iterations this process ran, times
those left. It runs low when iterations grow (STaR trains 1.2x more steps each
iteration); an iteration that took under a second was resumed from disk and is
not counted.
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from types import SimpleNamespace

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text

console = Console(stderr=True)
LOG_EVERY = 30.0  # seconds between plain progress lines when stderr is not a terminal
RATE_EVERY = 0.25  # seconds between refreshes of a bar's rate
_run: RunClock | None = None  # the active run, shown beside every stage bar


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class RunClock:
    """Where a run of ``total`` iterations stands: ``start(k)`` as iteration k begins."""

    def __init__(self, total: int, clock=time.monotonic) -> None:
        self.total, self.clock = total, clock
        self.t0 = clock()
        self.k, self.k_t0, self.durations = 0, None, []

    def start(self, k: int) -> None:
        now = self.clock()
        if self.k_t0 is not None and now - self.k_t0 >= 1.0:
            self.durations.append(now - self.k_t0)
        self.k, self.k_t0 = k, now

    def left(self) -> float | None:
        """Seconds the run still needs (None until one iteration has finished)."""
        if not self.durations:
            return None
        mean = statistics.mean(self.durations)
        into = self.clock() - self.k_t0 if self.k_t0 is not None else 0.0
        return max(mean - into, 0.0) + mean * (self.total - self.k)

    def text(self) -> str:
        left = self.left()
        eta = f"about {_hms(left)} left" if left is not None else "estimate after the first iteration"
        return f"iteration {self.k} of {self.total} · {_hms(self.clock() - self.t0)} elapsed · {eta}"


    def short(self) -> str:
        """The bar column's form, short enough not to wrap an 80-column terminal."""
        left = self.left()
        return f"run {self.k}/{self.total} · {_hms(self.clock() - self.t0)}" + (f" · ~{_hms(left)} left" if left is not None else "")


class _RunColumn(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"[{_run.short()}]" if _run is not None else "", style="dim")


@contextmanager
def run_progress(total: int):
    """``with run_progress(n) as at_iteration: ... at_iteration(k)`` at the top of
    iteration k (1..n). Prints the run line at each iteration and the total at the end."""
    global _run
    clock = _run = RunClock(total)

    def at_iteration(k: int) -> None:
        clock.start(k)
        console.print(f"[bold]{clock.text()}[/]", soft_wrap=True)

    try:
        yield at_iteration
    finally:
        console.print(f"[bold]run finished: {clock.k} of {total} iterations in {_hms(clock.clock() - clock.t0)}[/]")
        _run = None


@contextmanager
def progress_bar(desc: str, total: int, unit: str = "it"):
    """``with progress_bar("sample", 1000, "samples") as bar: bar.advance(64)`` -- shows rate and ETA."""
    cols = [TextColumn(f"[bold blue]{desc}"), BarColumn(), MofNCompleteColumn(), TextColumn("[cyan]{task.fields[rate]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), _RunColumn()]
    with Progress(*cols, console=console) as progress:
        tid = progress.add_task(desc, total=total, rate="")
        last_line, last_rate = [time.monotonic()], [0.0]

        def rate() -> None:
            task = progress.tasks[0]
            if task.speed:
                progress.update(tid, rate=f"{task.speed:,.1f} {unit}/s")

        def advance(n: int = 1) -> None:
            progress.advance(tid, n)
            now = time.monotonic()
            # rich's Task.speed sums every progress sample of the last 30 s: per call
            # that made a sampler advancing once per finished row quadratic (a tenth
            # of the demo's sampling time under cProfile, within noise without it), so
            # the rate is refreshed every RATE_EVERY seconds
            if now - last_rate[0] >= RATE_EVERY:
                last_rate[0] = now
                rate()
            if not console.is_terminal and now - last_line[0] >= LOG_EVERY:
                last_line[0] = now
                console.print(_log_line(desc, progress.tasks[0], unit), soft_wrap=True)

        yield SimpleNamespace(advance=advance)
        rate()


def _log_line(desc: str, task, unit: str) -> str:
    """One plain line for a log file: the stage, its count and rate, and the run."""
    rate = f" · {task.speed:,.1f} {unit}/s" if task.speed else ""
    eta = f" · stage {_hms(task.time_remaining)} left" if task.time_remaining is not None else ""
    run = f" · {_run.text()}" if _run is not None else ""
    return f"{desc}: {int(task.completed)}/{int(task.total)} {unit}{rate}{eta}{run}"
