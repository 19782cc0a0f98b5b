"""Whole-run progress (progress.py): iteration k of N, elapsed, an estimate of
what is left from the iterations run so far; plain lines outside a terminal."""

import io

import pytest

from rich.console import Console

from selftaught import progress
from selftaught.progress import RunClock


class FakeTime:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_estimate_from_the_iterations_this_process_ran():
    t = FakeTime()
    clock = RunClock(5, clock=t)
    clock.start(1)
    assert clock.left() is None and "estimate after the first iteration" in clock.text()
    t.t += 60
    clock.start(2)
    assert clock.left() == 4 * 60  # iterations 2..5 at 60 s each
    t.t += 20
    assert clock.left() == 40 + 3 * 60  # 20 s into iteration 2
    assert clock.text() == "iteration 2 of 5 · 1:20 elapsed · about 3:40 left"


def test_resumed_iterations_do_not_count():
    t = FakeTime()
    clock = RunClock(4, clock=t)
    clock.start(1)
    t.t += 0.5  # done on disk: skipped at once
    clock.start(2)
    assert clock.left() is None
    t.t += 100
    clock.start(3)
    assert clock.left() == pytest.approx(100 * 2)


def test_log_lines_outside_a_terminal(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=buf, force_terminal=False, width=200))
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)
    with progress.run_progress(3) as at_iteration:
        at_iteration(1)
        with progress.progress_bar("iter 1 train", 10, "steps") as bar:
            for _ in range(10):
                bar.advance(1)
    out = buf.getvalue()
    assert "iteration 1 of 3" in out
    assert "iter 1 train: 5/10 steps" in out and "iteration 1 of 3 ·" in out.split("iter 1 train: 5/10")[1]
    assert "run finished: 1 of 3 iterations" in out
    assert progress._run is None  # stage bars after the run carry no run line


def test_a_bar_refreshes_its_rate_on_a_clock_not_on_every_advance(monkeypatch):
    """A sampler advances once per finished row; rich's Task.speed walks every sample
    of the last 30 s, so computing it per advance made sampling quadratic."""
    monkeypatch.setattr(progress, "console", Console(file=io.StringIO(), force_terminal=False, width=200))
    monkeypatch.setattr(progress, "RATE_EVERY", 1e9)
    rates = []
    real = progress.Progress.update

    def update(self, tid, **kw):
        if "rate" in kw:
            rates.append(kw["rate"])
        return real(self, tid, **kw)

    monkeypatch.setattr(progress.Progress, "update", update)
    with progress.progress_bar("sample", 5000, "samples") as bar:
        for _ in range(5000):
            bar.advance(1)
    assert len(rates) <= 2  # the first advance, and once more when the bar closes
    assert rates and rates[-1].endswith("samples/s")
