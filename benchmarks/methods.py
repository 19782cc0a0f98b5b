"""The issue-4 bar: the sample-and-filter family side by side on the built-in
arithmetic task -- same seed, same tiny warm-started model, same iterations,
same first-pass sample budget per iteration, same train steps.

    python benchmarks/methods.py                          # every method (~40 min with --jobs 2 on 2 idle cores)
    python benchmarks/methods.py --methods rft rest_em    # some; results merge into the JSON
    OMP_NUM_THREADS=1 python benchmarks/methods.py --jobs 2   # two arms at a time, one thread each

Each method is the user-facing command (`selftaught run recipes/<m>_arithmetic.yaml`
+ the overrides below) in a subprocess, sharing one model cache so the tiny
model is built once (by the first method run; its wall time includes that).
Budget: ``BUDGET`` first-pass samples per iteration -- STaR 1 sample for each
of BUDGET problems (+ its rationalizations, counted), RFT / ReST-EM / ReST /
best-of-N 4 per problem, TTRL 8 votes per question, self-play 2 solutions +
2 judge re-derivations per problem (+ revisions, counted). Prints held-out
accuracy per iteration and writes benchmarks/results/methods.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "methods.json"
BUDGET = 2000  # first-pass samples per iteration, as in the default STaR recipe
# Same trainer for every arm (the default recipe's: retrain 150 steps x 1.2^(k-1), lr 2e-3, batch 64), 5 iterations,
# the methods as published: no natural data, no extra dedup.
COMMON = ["seed=0", "iterations=5", "trainer.steps=150", "trainer.lr=2e-3", "trainer.batch_size=64",
          "eval.max_new_tokens=160", "mix.natural_fraction=0", "mix.dedup=none"]
GROW = "method.steps_growth=1.2"
ARMS = {
    "star": ("star", [f"method.problems_per_iteration={BUDGET}"]),
    "star_no_rationalize": ("star", [f"method.problems_per_iteration={BUDGET}", "method.rationalize=false"]),
    "rft": ("rft", [f"method.problems_per_iteration={BUDGET // 4}", "method.samples_per_problem=4", GROW]),
    "rest_em": ("rest_em", [f"method.problems_per_iteration={BUDGET // 4}", "method.samples_per_problem=4", GROW]),
    "rest": ("rest", [f"method.problems_per_iteration={BUDGET // 4}", "method.samples_per_problem=4",
                      "method.improve_steps=74"]),  # 3 Improve steps x 74 ~ the others' mean 223 steps/iteration
    "best_of_n": ("best_of_n", [f"method.problems_per_iteration={BUDGET // 4}", "method.samples_per_problem=4", GROW]),
    "self_play": ("self_play", [f"method.problems_per_iteration={BUDGET // 4}", "method.samples_per_problem=2",
                                "method.judge_samples=2", GROW]),
    "ttrl": ("ttrl", [f"method.problems_per_iteration={BUDGET // 8}", "method.samples_per_problem=8", GROW]),
}
EXTRA = ("select/distinct_paths", "rest/rows_3", "ttrl/label_acc", "ttrl/majority_ratio",
         "self_play/judge_precision", "self_play/judge_recall", "select/kept_correct_frac")


def run_arm(name: str, out: Path, cache: Path) -> dict:
    recipe, overrides = ARMS[name]
    cmd = [sys.executable, "-m", "selftaught.cli", "run", str(ROOT / "recipes" / f"{recipe}_arithmetic.yaml"),
           f"name={name}", f"out_dir={out}", *COMMON, *overrides]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, "SELFTAUGHT_CACHE": str(cache)}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    metrics = [json.loads(x) for x in (out / name / "metrics.jsonl").read_text().splitlines()]
    return {"wall_s": round(wall, 1), "command": " ".join(cmd[1:]), "metrics": metrics,
            "samples_generated": sum(m.get("gen/samples", 0) for m in metrics),
            "samples_kept": sum(m.get("select/kept", 0) for m in metrics),
            "train_rows": sum(m.get("select/train_rows", 0) for m in metrics)}


def long_acc(m: dict) -> float:
    """Mean accuracy over the lengths the seed set never labeled (4+ digits)."""
    accs = [v for k, v in m.items() if k.startswith("eval/acc/") and k.split("/")[2].isdigit() and int(k.split("/")[2]) >= 4]
    return sum(accs) / len(accs) if accs else 0.0


def table(results: dict) -> Table:
    n_iter = max((len(r["metrics"]) for r in results.values()), default=0)
    t = Table(title=f"Held-out accuracy (greedy, 1-8 digits; 4+ = never labeled), {BUDGET} first-pass samples/iteration")
    for col in ["method", *[f"it{k}" for k in range(n_iter)], "it-last 4+dig", "generated", "kept", "wall s", "notes"]:
        t.add_column(col, justify="right")
    for name, r in results.items():
        ms = r["metrics"]
        last = ms[-1]
        notes = ", ".join(f"{k.split('/')[-1]}={sum(m[k] for m in ms if k in m) / max(1, sum(k in m for m in ms)):.2f}"
                          for k in EXTRA if any(k in m for m in ms))
        t.add_row(name, *[f"{m['eval/acc']:.1%}" for m in ms], f"{long_acc(last):.1%}", str(r["samples_generated"]),
                  str(r["samples_kept"]), f"{r['wall_s']:.0f}", notes)
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", nargs="*", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--out", type=Path, default=Path("/tmp/selftaught-bench-methods"), help="where the runs go")
    ap.add_argument("--jobs", type=int, default=1, help="arms run side by side (set OMP_NUM_THREADS to match)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/selftaught-bench-cache"), help="shared model cache")
    args = ap.parse_args()
    saved = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results = saved.get("methods", {})
    for name in args.methods:
        run_dir = args.out / name
        if run_dir.exists():  # a fresh run each time: never resume a benchmark arm
            shutil.rmtree(run_dir)

    lock = threading.Lock()
    failed = []

    def one(name: str) -> None:
        try:
            r = run_arm(name, args.out, args.cache)
        except RuntimeError as e:  # report it, keep the other arms going
            failed.append(name)
            Console(stderr=True).print(str(e))
            return
        with lock:  # saved as each arm ends: a cut-off benchmark keeps what finished
            results[name] = r
            save(results)
        Console(stderr=True).print(f"{name}: {r['wall_s']} s")

    with ThreadPoolExecutor(args.jobs) as pool:  # threads only wait on subprocesses
        list(pool.map(one, args.methods))
    Console(width=220).print(table({k: results[k] for k in ARMS if k in results}))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


def save(results: dict) -> None:
    results = {k: results[k] for k in ARMS if k in results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"budget_per_iteration": BUDGET, "common_overrides": COMMON,
                                   "machine": f"{platform.machine()}, {os.cpu_count()} cpus", "methods": results},
                                  indent=1) + "\n")


if __name__ == "__main__":
    main()
