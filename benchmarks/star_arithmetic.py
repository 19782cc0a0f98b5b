"""The issue-2 bar: the built-in demo, end to end, and STaR with vs without
rationalization on the same seeds.

    python benchmarks/star_arithmetic.py                 # both arms, empty model cache
    python benchmarks/star_arithmetic.py --arms star     # only the default

Each arm is the user-facing command (`selftaught run` + overrides) in a
subprocess; the first arm starts from an empty model cache, so its wall time
includes building the tiny model. Prints held-out accuracy per digit count per
iteration for each arm and writes benchmarks/results/star_arithmetic.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import _cli  # benchmarks/_cli.py: scripts run from this folder
from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder

ARMS = {
    "star": [],
    "star_no_rationalize": ["method.rationalize=false"],
    "star_valid_steps": ["method.require_valid_steps=true"],
}
SEED_DIGITS = {"1", "2", "3"}  # the only lengths with labeled scratchpads


def run_arm(name: str, overrides: list[str], out: Path, cache: Path) -> dict:
    try:
        wall, _, metrics = _cli.run(name, out, overrides, {"SELFTAUGHT_CACHE": str(cache)})
    except _cli.ArmFailed as e:
        sys.exit(str(e))
    return {"wall_s": wall, "overrides": overrides, "metrics": metrics}


def bar(result: dict) -> dict:
    """Digit lengths never labeled that gained >= 60 points and ended >= 90%."""
    first, last = result["metrics"][0], result["metrics"][-1]
    groups = sorted({k.split("/")[2] for k in last if k.startswith("eval/acc/")} - SEED_DIGITS, key=int)
    gains = {g: last[f"eval/acc/{g}"] - first[f"eval/acc/{g}"] for g in groups}
    passing = [g for g in groups if gains[g] >= 0.60 and last[f"eval/acc/{g}"] >= 0.90]
    return {"gains": gains, "passing_lengths": passing, "meets_bar": len(passing) >= 2}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arms", nargs="*", default=["star", "star_no_rationalize"], choices=list(ARMS))
    ap.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temp dir)")
    ap.add_argument("--cache", type=Path, default=None, help="model cache (default: empty temp dir)")
    args, extra = ap.parse_known_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-star-"))
    cache = args.cache or Path(tempfile.mkdtemp(prefix="bench-cache-"))
    import torch

    peak, threads = round(matmul_peak(), 1), torch.get_num_threads()  # before the arms
    results = {arm: run_arm(arm, ARMS[arm] + extra, out, cache) for arm in args.arms}

    con = Console(width=200)
    groups = sorted({k.split("/")[2] for r in results.values() for m in r["metrics"] for k in m
                     if k.startswith("eval/acc/")}, key=int)
    t = Table(title="STaR on arithmetic: held-out accuracy (greedy) per digit count; 1-3 digits had labeled scratchpads")
    for col in ["arm", "iter", "all", *groups, "kept", "rationalized", "wrong-working kept", "iter wall s"]:
        t.add_column(col, justify="right")
    for arm, r in results.items():
        for m in r["metrics"]:
            t.add_row(arm, str(m["iteration"]), f"{m['eval/acc']:.0%}", *[f"{m.get(f'eval/acc/{g}', 0):.0%}" for g in groups],
                      str(m.get("select/kept", "")), str(m.get("select/kept_rationalized", "")),
                      f"{m['select/kept_wrong_working_frac']:.0%}" if "select/kept_wrong_working_frac" in m else "",
                      f"{sum(v for k, v in m.items() if k.startswith('time/')):.0f}")
    con.print(f"fp32 matmul peak {peak:.1f} GFLOP/s (4096² products, {threads} threads)")
    con.print(t)
    for arm, r in results.items():
        r["bar"] = bar(r)
        con.print(f"{arm}: wall {r['wall_s']:.0f} s end to end; lengths meeting the bar (>= +60 pts, >= 90%): "
                  f"{r['bar']['passing_lengths']} -> {'MEETS' if r['bar']['meets_bar'] else 'BELOW'} the bar")
    dest = Path(__file__).parent / "results" / "star_arithmetic.json"
    dest.parent.mkdir(exist_ok=True)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "matmul_peak_gflops": peak,
            "python": platform.python_version(),
            "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M")}
    dest.write_text(json.dumps({"meta": meta, "arms": results}, indent=1) + "\n")
    con.print(f"wrote {dest}")


if __name__ == "__main__":
    main()
