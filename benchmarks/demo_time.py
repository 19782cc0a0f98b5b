"""The built-in demo's wall time before and after the lean decoder (issue 7):
``selftaught run`` with ``backend.lean=false`` (HF forward + DynamicCache, the
sampler before the lean path) and with the default lean static-cache decoder,
side by side, one thread each, the tiny model already cached.

    python benchmarks/demo_time.py                    # both runs (~12 min on 2 idle cores)
    python benchmarks/demo_time.py --collect DIR [--wall hf-forward=S lean=S]   # runs already made in DIR

Prints per-stage seconds summed over the 5 iterations, the held-out accuracy
after the last one, and the wall time of each command (when this script ran
it); writes benchmarks/results/demo_time.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _cli  # benchmarks/_cli.py: scripts run from this folder
from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder

RESULTS = Path(__file__).parent / "results" / "demo_time.json"
ARMS = {"hf-forward": ["backend.lean=false"], "lean": []}
STAGES = ("generate", "verify", "select", "train", "evaluate", "monitor")


def launch(name: str, out: Path) -> float:
    try:
        return _cli.run(name, out, ARMS[name], {"OMP_NUM_THREADS": "1"})[0]
    except _cli.ArmFailed as e:
        raise SystemExit(str(e)) from None


def tabulate(out: Path, walls: dict) -> dict:
    rows = {}
    for name in ARMS:
        ms = [json.loads(x) for x in (out / name / "metrics.jsonl").read_text().splitlines()]
        rows[name] = {"wall_s": walls.get(name), "final_acc": ms[-1]["eval/acc"], "iterations": len(ms) - 1,
                      **{f"{s}_s": round(sum(m.get(f"time/{s}_s", 0) for m in ms), 1) for s in STAGES}}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/selftaught-demo-time"))
    ap.add_argument("--collect", type=Path, help="tabulate existing runs in this directory instead of running")
    ap.add_argument("--wall", nargs="*", default=[], metavar="NAME=SECONDS",
                    help="with --collect: wall times measured outside (e.g. by /usr/bin/time)")
    args = ap.parse_args()
    walls = {k: float(v) for k, v in (w.split("=", 1) for w in args.wall)}
    out = args.collect or args.out
    peak = threads = None  # --collect: the runs were made at another time, no peak of theirs to measure now
    if not args.collect:
        import torch

        peak, threads = matmul_peak(), torch.get_num_threads()  # before both arms start
        with ThreadPoolExecutor(len(ARMS)) as pool:  # side by side: the same machine state for both
            walls = dict(zip(ARMS, pool.map(lambda n: launch(n, args.out), ARMS)))
    rows = tabulate(out, walls)
    print(f"fp32 matmul peak {peak:.1f} GFLOP/s (4096² products, {threads} threads; each arm runs on 1)" if peak
          else "fp32 matmul peak: not measured (--collect)")
    print("| sampler | wall s | " + " | ".join(f"{s} s" for s in STAGES) + " | final acc |")
    print("|---|---|" + "---|" * len(STAGES) + "---|")
    for name, r in rows.items():
        print(f"| {name} | {r['wall_s'] or 'n/a'} | " + " | ".join(f"{r[f'{s}_s']:.0f}" for s in STAGES)
              + f" | {r['final_acc']:.1%} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cpus, OMP_NUM_THREADS=1 each",
                                   "collected_from": str(args.collect) if args.collect else None,
                                   "matmul_peak_gflops": round(peak, 1) if peak else None,
                                   "wall_measured_by": "/usr/bin/time" if args.collect and walls else "this script", "runs": rows},
                                  indent=1) + "\n")


if __name__ == "__main__":
    main()
