"""The default demo (`selftaught run`), this code vs an older commit, side by side
on one box, one run at a time, several seeds: wall time end to end (the tiny
model's build included), the five iterations' stage times, final held-out
accuracy per digit count.

    git worktree add /tmp/base 42f1f54
    python benchmarks/demo_runs.py --base /tmp/base/src --seeds 0 1
    python benchmarks/demo_runs.py --collect /tmp/demo-runs      # summarize runs made earlier
    python benchmarks/demo_runs.py --collect /tmp/fresh --name demo_fresh_clone   # -> results/demo_fresh_clone.json

Each arm builds its own tiny model (a cache per code version), as a fresh clone does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def run_arm(name: str, src: Path, seed: int, out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "SELFTAUGHT_CACHE": str(out / f"cache-{src.parent.name}")}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "selftaught.cli", "run", f"seed={seed}", f"name={name}",
                    f"out_dir={out / 'runs'}"], env=env, check=True, stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - t0, 1)


def summary(run: Path, wall: float | None) -> dict:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    its = rows[1:]
    stage = lambda s: round(sum(m.get(f"time/{s}_s", 0) for m in its), 1)
    return {"run": run.name, "wall_s": wall, "acc": [round(m["eval/acc"], 4) for m in rows],
            "final_by_digits": {g: rows[-1].get(f"eval/acc/{g}") for g in range(1, 9)},
            "iterations_s": round(sum(v for m in its for k, v in m.items() if k.startswith("time/") and k.endswith("_s")), 1),
            **{f"{s}_s": stage(s) for s in ("generate", "train", "evaluate")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, help="the older code's src/ folder (a git worktree)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    ap.add_argument("--out", type=Path, default=Path("/tmp/demo-runs"))
    ap.add_argument("--collect", type=Path, help="only summarize the runs under this folder's runs/")
    ap.add_argument("--walls", type=json.loads, default={}, help='collect: {"run name": wall s} measured outside')
    ap.add_argument("--name", default="demo_runs", help="results file: benchmarks/results/<name>.json")
    args = ap.parse_args()
    peak = matmul_peak()
    print(f"fp32 matmul peak {peak:.1f} GFLOP/s (4096² products)")
    walls = dict(args.walls)
    if not args.collect:
        for seed in args.seeds:
            for tag, src in (("new", ROOT / "src"), ("base", args.base)):
                if src is not None:
                    walls[f"{tag}-s{seed}"] = run_arm(f"{tag}-s{seed}", src.resolve(), seed, args.out)
    runs = [summary(d, walls.get(d.name)) for d in sorted(((args.collect or args.out) / "runs").iterdir())]
    print("| run | wall s | 5 iterations s | train s | generate s | final acc | 4/5/6/7 digits |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        g = r["final_by_digits"]
        print(f"| {r['run']} | {r['wall_s']} | {r['iterations_s']} | {r['train_s']} | {r['generate_s']} | "
              f"{r['acc'][-1]:.1%} | " + "/".join(f"{g[d]:.0%}" for d in (4, 5, 6, 7)) + " |")
    out = RESULTS / f"{args.name}.json"
    out.write_text(json.dumps({"matmul_peak_gflops": round(peak, 1), "runs": runs,
                                   "note": "new = this tree, base = the --base tree; one run at a time"}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
