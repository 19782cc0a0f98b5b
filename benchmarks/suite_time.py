"""The test suite's wall time, this tree and (``--base REV``) an earlier commit,
one after the other in one run, with the box's matmul peak printed beside them.

    python benchmarks/suite_time.py                 # this tree (the README's pytest command)
    python benchmarks/suite_time.py --base 4a6b0dd  # + that commit, in a git worktree under /tmp
    python benchmarks/suite_time.py --show          # the table of the saved results

Both trees run ``python -m pytest -q -p no:cacheprovider tests`` against the
installed environment (the base tree through ``PYTHONPATH=<worktree>/src``), each
with a fresh model cache, so the first test that needs the tiny model builds it
in both. Results merge into benchmarks/results/suite_time.json by label. Run it
alone on the machine (``flock /tmp/heavy.lock``): the suite is mostly
single-threaded subprocess start-up and small-model training, and anything else
running moves it by minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "results" / "suite_time.json"


def rev_of(tree: Path) -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True).stdout.strip()


def time_suite(tree: Path) -> dict:
    """Wall seconds of the suite in ``tree`` and pytest's own summary line."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    env.pop("SELFTAUGHT_TEST_CACHE", None)  # a fresh cache: both trees pay the model builds
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=tree,
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    tail = [x for x in proc.stdout.splitlines() if re.search(r"\d+ (passed|failed)", x)]
    return {"rev": rev_of(tree), "wall_s": round(wall, 1), "summary": tail[-1] if tail else proc.stdout[-500:],
            "exit": proc.returncode}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", help="also time the suite of this commit (a git worktree under /tmp)")
    ap.add_argument("--show", action="store_true", help="print the table of the saved results only")
    args = ap.parse_args()
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if not args.show:
        import torch

        peak = matmul_peak()
        Console().print(f"fp32 matmul peak: {peak:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
        trees = [("this tree", ROOT)]
        if args.base:
            work = Path(tempfile.mkdtemp(prefix="suite-base-")) / "tree"
            subprocess.run(["git", "worktree", "add", "--detach", str(work), args.base], cwd=ROOT, check=True,
                           capture_output=True)
            trees.append((f"base {args.base}", work))
        for label, tree in trees:
            r = time_suite(tree)
            r["matmul_peak_gflops"] = round(peak, 1)
            results[label if label != "this tree" else f"tree {r['rev']}"] = r
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(results, indent=2))
        if args.base:
            subprocess.run(["git", "worktree", "remove", "--force", str(work)], cwd=ROOT, capture_output=True)
    table = Table(title="test suite wall time (python -m pytest -q tests)")
    for col in ("tree", "wall s", "pytest", "matmul peak GFLOP/s"):
        table.add_column(col)
    for label, r in results.items():
        table.add_row(label, f"{r['wall_s']:.0f}", r["summary"], f"{r['matmul_peak_gflops']}")
    Console().print(table)


if __name__ == "__main__":
    main()
