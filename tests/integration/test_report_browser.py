"""The report of a real micro-run, opened in headless Chromium (Debian's `chromium`):
the page renders, its plots are present and non-empty, its script runs to the end,
and the browser console stays silent (no errors, no blocked fetches).

Needs /usr/bin/chromium: `apt-get install -y chromium` (.ci/run installs it).
Without it this test fails -- it does not skip.
"""

import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from selftaught import loop

# The flags that work on this kind of machine (no network, root, no GPU).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0"]


def chromium(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("headless Chromium is needed for the report test: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile every time
        return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    """What the page wrote to the browser console (uncaught errors and CSP violations included)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the (still filtered) pixel bytes of a PNG, without an image library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def assert_tensorboard_steps(logdir: Path, steps: list[int]) -> None:
    """The loop logged eval/acc of every iteration to TensorBoard (report_to)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(logdir))
    ea.Reload()
    assert [e.step for e in ea.Scalars("eval/acc")] == steps


def test_report_of_a_micro_run_in_chromium(micro, tmp_path):
    finished = []

    def on_iteration(store, metrics):  # the loop rebuilt report.html before calling us
        page = (store.root / "report.html").read_text()
        finished.append(f"{metrics['iteration']} of 2 iterations done" in page)

    store = loop.run(micro("name=browser", "report_to=[tensorboard]"), on_iteration=on_iteration)
    assert finished == [True, True, True]  # rebuilt after iterations 0, 1 and 2
    assert_tensorboard_steps(store.root / "tensorboard", [0, 1, 2])
    report = store.root / "report.html"

    dom = chromium("--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_messages(dom.stderr) == []
    html = dom.stdout
    assert re.search(r'<body[^>]*data-ready="1"', html), "the page's script did not run to the end"
    plots = re.findall(r'<svg class="plot".*?</svg>', html, re.S)
    titles = [re.search(r'aria-label="([^"]+)"', p).group(1) for p in plots]
    for t in ("eval/acc (all held-out problems)", "eval/acc per group", "samples generated / kept per iteration",
              "wall time per stage"):
        assert t in titles, f"plot {t!r} missing; have {titles}"
    accuracy = plots[titles.index("eval/acc (all held-out problems)")]
    lines = re.findall(r'<path class="line" d="M([^"]+)"', accuracy)
    assert len(lines) == 1 and lines[0].count(" L") == 2  # iterations 0, 1, 2
    assert '<path class="band"' in accuracy
    assert len(re.findall(r'<path class="line" d="M[^"]+ L', plots[titles.index("eval/acc per group")])) == 4  # digits 1-4
    bars = re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"', plots[titles.index("samples generated / kept per iteration")])
    assert bars and max(float(h) for h in bars) > 50
    assert 'class="trace kept"' in html and 'class="trace rejected"' in html

    shot = tmp_path / "report.png"
    res = chromium("--window-size=1280,1600", f"--screenshot={shot}", report.as_uri())
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    assert console_messages(res.stderr) == []
    width, height, raw = png_pixels(shot)
    assert (width, height) == (1280, 1600)
    # PNG filtering turns flat areas into zero bytes: a page with one word of text measured
    # 0.03% non-zero bytes and 99 distinct values, reports of real runs 1.5-2.2% and 256.
    assert len(set(raw)) > 200 and sum(b != 0 for b in raw) > len(raw) // 200
