"""Screenshot of a run's report.html in headless Chromium -> docs/report.png.

    python benchmarks/report_screenshot.py RUN_DIR [--out docs/report.png] [--height 2000]

RUN_DIR is a run of the built-in demo (`selftaught run`, default runs/star-arithmetic).
The report is rendered to a temporary file (nothing is written into RUN_DIR), shot
at 1280 px wide, and -- if Pillow is installed -- reduced to a 256-colour palette so
the PNG stays small. Needs Debian's chromium (`apt-get install -y chromium`).
Prints a table and writes benchmarks/results/report_screenshot.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from selftaught.report.html import build_report

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", "--force-device-scale-factor=1"]


def shoot(html: Path, png: Path, width: int, height: int) -> list[str]:
    """Screenshot ``html``; returns what the page wrote to the browser console."""
    exe = shutil.which("chromium") or sys.exit("needs Chromium: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        res = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                              f"--screenshot={png}", html.as_uri()], capture_output=True, text=True, timeout=120)
    if res.returncode != 0 or not png.is_file():
        sys.exit(f"chromium failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return [line for line in res.stderr.splitlines() if ":CONSOLE" in line]


def shrink(png: Path) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    Image.open(png).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(png, optimize=True)
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", nargs="?", default="runs/star-arithmetic")
    p.add_argument("--out", default="docs/report.png")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=2000)
    args = p.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        html = build_report(args.run_dir, Path(tmp) / "report.html")
        console = shoot(html, out, args.width, args.height)
        shrunk = shrink(out)
    result = {"run_dir": str(args.run_dir), "png": str(out), "bytes": out.stat().st_size,
              "size": f"{args.width}x{args.height}", "palette_256": shrunk, "console_messages": console}
    for k, v in result.items():
        print(f"{k:>18}  {v}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "report_screenshot.json").write_text(json.dumps(result, indent=1) + "\n")
    if console:
        sys.exit("the page wrote to the browser console: " + "; ".join(console))


if __name__ == "__main__":
    main()
