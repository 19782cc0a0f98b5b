"""The issue-4 bar: the sample-and-filter family side by side on the built-in
arithmetic task -- same seed, same tiny warm-started model, same iterations,
same first-pass sample budget per iteration, same train steps.

    python benchmarks/methods.py                          # every method (~40 min with --jobs 2 on 2 idle cores)
    python benchmarks/methods.py --methods rft rest_em    # some; results merge into the JSON
    python benchmarks/methods.py --model smollm2          # the family on SmolLM2 (~30 min)
    OMP_NUM_THREADS=1 python benchmarks/methods.py --jobs 2   # two arms at a time, one thread each
    OMP_NUM_THREADS=1 python benchmarks/methods.py --jobs 2 --dest benchmarks/results/methods_line_start.json

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
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

import _cli  # benchmarks/_cli.py: scripts run from this folder
from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "methods.json"
BUDGET = 2000  # first-pass samples per iteration, as in the default STaR recipe
# Same trainer for every arm (the default recipe's: retrain 80 steps x 1.2^(k-1), lr 2e-3, batch 64; methods.json,
# before the task's layout fix, used 150 and ReST 74 Improve steps), 5 iterations,
# the methods as published: no natural data, no extra dedup.
COMMON = ["seed=0", "iterations=5", "trainer.steps=80", "trainer.lr=2e-3", "trainer.batch_size=64",
          "eval.max_new_tokens=160", "mix.natural_fraction=0", "mix.dedup=none"]
GROW = "method.steps_growth=1.2"
ARMS = {
    "star": ("star", [f"method.problems_per_iteration={BUDGET}"]),
    "star_no_rationalize": ("star", [f"method.problems_per_iteration={BUDGET}", "method.rationalize=false"]),
    "rft": ("rft", [f"method.problems_per_iteration={BUDGET // 4}", "method.samples_per_problem=4", GROW]),
    "rest_em": ("rest_em", [f"method.problems_per_iteration={BUDGET // 4}", "method.samples_per_problem=4", GROW]),
    "rest": ("rest", [f"method.problems_per_iteration={BUDGET // 4}", "method.samples_per_problem=4",
                      "method.improve_steps=40"]),  # 3 Improve steps x 40 ~ the others' mean 119 steps/iteration
    "best_of_n": ("best_of_n", [f"method.problems_per_iteration={BUDGET // 4}", "method.samples_per_problem=4", GROW]),
    "self_play": ("self_play", [f"method.problems_per_iteration={BUDGET // 4}", "method.samples_per_problem=2",
                                "method.judge_samples=2", GROW]),
    "ttrl": ("ttrl", [f"method.problems_per_iteration={BUDGET // 8}", "method.samples_per_problem=8", GROW]),
}
# The same family on a real model: SmolLM2-135M-Instruct x reasoning-gym basic_arithmetic (1-2 digit sums, in its
# zone of proximal development), 2 iterations, 192 first-pass samples per iteration, the STaR recipe's LoRA trainer.
SMOL_RECIPE = ROOT / "recipes" / "star_smollm2_reasoning_gym.yaml"
SMOL_BUDGET = 192
SMOL_COMMON = ["seed=0", "iterations=2", "task.eval_size=150", "trainer.steps=20", "gate.natural_ppl_examples=0",
               "mix.natural_fraction=0", "mix.dedup=none"]
_GEN = {"temperature": 0.7, "max_new_tokens": 96, "steps_growth": 1.2}
SMOL_ARMS = {
    "star": {"type": "star", "problems_per_iteration": SMOL_BUDGET // 2, "samples_per_problem": 2,
             "rationalize": True, "init": "base", **_GEN},
    "star_no_rationalize": {"type": "star", "problems_per_iteration": SMOL_BUDGET // 2, "samples_per_problem": 2,
                            "rationalize": False, "init": "base", **_GEN},
    "rft": {"type": "rft", "problems_per_iteration": SMOL_BUDGET // 4, "samples_per_problem": 4, **_GEN},
    "rest_em": {"type": "rest_em", "problems_per_iteration": SMOL_BUDGET // 4, "samples_per_problem": 4, **_GEN},
    "self_play": {"type": "self_play", "problems_per_iteration": SMOL_BUDGET // 4, "samples_per_problem": 2,
                  "judge_samples": 2, **_GEN},
    "ttrl": {"type": "ttrl", "problems_per_iteration": SMOL_BUDGET // 8, "samples_per_problem": 8, **_GEN},
}
EXTRA = ("select/distinct_paths", "rest/rows_3", "ttrl/label_acc", "ttrl/majority_ratio",
         "self_play/judge_precision", "self_play/judge_recall", "select/kept_correct_frac")


def run_arm(name: str, out: Path, cache: Path, model: str = "tiny", peak: float | None = None) -> dict:
    if model == "tiny":
        recipe, overrides = ARMS[name]
        recipe, common = ROOT / "recipes" / f"{recipe}_arithmetic.yaml", [*COMMON, *overrides]
    else:  # the SmolLM2 STaR recipe's model, task, backend and trainer; this arm's method section
        tree = yaml.safe_load(SMOL_RECIPE.read_text())
        tree["method"] = SMOL_ARMS[name]
        recipe, common = out / f"{name}.yaml", SMOL_COMMON
        out.mkdir(parents=True, exist_ok=True)
        recipe.write_text(yaml.safe_dump(tree, sort_keys=False))
    env = {"SELFTAUGHT_CACHE": str(cache)} if model == "tiny" else {}
    wall, cmd, metrics = _cli.run(name, out, [str(recipe), *common], env)
    return {"wall_s": wall, "matmul_peak_gflops": peak, "command": " ".join(cmd[1:]), "metrics": metrics,
            "samples_generated": sum(m.get("gen/samples", 0) for m in metrics),
            "samples_kept": sum(m.get("select/kept", 0) for m in metrics),
            "train_rows": sum(m.get("select/train_rows", 0) for m in metrics)}


def long_acc(m: dict) -> float:
    """Mean accuracy over the lengths the seed set never labeled (4+ digits)."""
    accs = [v for k, v in m.items() if k.startswith("eval/acc/") and k.split("/")[2].isdigit() and int(k.split("/")[2]) >= 4]
    return sum(accs) / len(accs) if accs else 0.0


def table(results: dict, model: str = "tiny") -> Table:
    n_iter = max((len(r["metrics"]) for r in results.values()), default=0)
    title = (f"Held-out accuracy (greedy, 1-8 digits; 4+ = never labeled), {BUDGET} first-pass samples/iteration"
             if model == "tiny" else f"SmolLM2-135M-Instruct x basic_arithmetic, held-out accuracy [95% CI], "
             f"{SMOL_BUDGET} first-pass samples/iteration")
    t = Table(title=title)
    last_col = ["it-last 4+dig"] if model == "tiny" else []
    for col in ["method", *[f"it{k}" for k in range(n_iter)], *last_col, "generated", "kept", "wall s", "peak GF/s",
                "notes"]:
        t.add_column(col, justify="right")
    for name, r in results.items():
        ms = r["metrics"]
        notes = ", ".join(f"{k.split('/')[-1]}={sum(m[k] for m in ms if k in m) / max(1, sum(k in m for m in ms)):.2f}"
                          for k in EXTRA if any(k in m for m in ms))
        accs = [f"{m['eval/acc']:.1%}" if model == "tiny" else
                f"{m['eval/acc']:.1%} [{m['eval/acc_ci_low']:.0%}, {m['eval/acc_ci_high']:.0%}]" for m in ms]
        last = [f"{long_acc(ms[-1]):.1%}"] if model == "tiny" else []
        t.add_row(name, *accs, *last, str(r["samples_generated"]), str(r["samples_kept"]), f"{r['wall_s']:.0f}",
                  str(r.get("matmul_peak_gflops") or ""), notes)
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "smollm2"], default="tiny",
                    help="tiny: the built-in arithmetic demo; smollm2: SmolLM2-135M x reasoning-gym (2 iterations)")
    ap.add_argument("--methods", nargs="*", choices=sorted({*ARMS, *SMOL_ARMS}), help="default: every arm of --model")
    ap.add_argument("--out", type=Path, default=Path("/tmp/selftaught-bench-methods"), help="where the runs go")
    ap.add_argument("--jobs", type=int, default=1, help="arms run side by side (set OMP_NUM_THREADS to match)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/selftaught-bench-cache"), help="shared tiny-model cache")
    ap.add_argument("--dest", type=Path, default=RESULTS, help="results file (default: results/methods.json)")
    args = ap.parse_args()
    arms = ARMS if args.model == "tiny" else SMOL_ARMS
    names = args.methods or list(arms)
    if unknown := [n for n in names if n not in arms]:
        sys.exit(f"--model {args.model} has no arm {', '.join(unknown)}; its arms: {', '.join(arms)}")
    out = args.out if args.model == "tiny" else args.out / "smollm2"
    key = "methods" if args.model == "tiny" else "smollm2"
    saved = json.loads(args.dest.read_text()) if args.dest.is_file() else {}
    if problem := unmergeable(saved):
        sys.exit(f"{args.dest}: {problem}; pass --dest <a new file>")
    results = saved.get(key, {})
    for name in names:
        if (out / name).exists():  # a fresh run each time: never resume a benchmark arm
            shutil.rmtree(out / name)

    import torch

    peak = round(matmul_peak(), 1)  # once, before any arm starts; saved with each arm (arms merge across runs)
    lock = threading.Lock()
    failed = []

    def one(name: str) -> None:
        try:
            r = run_arm(name, out, args.cache, args.model, peak)
        except _cli.ArmFailed as e:  # report it, keep the other arms going
            failed.append(name)
            Console(stderr=True).print(str(e))
            return
        with lock:  # saved as each arm ends: a cut-off benchmark keeps what finished
            results[name] = r
            save(args.dest, key, {k: results[k] for k in arms if k in results})
        Console(stderr=True).print(f"{name}: {r['wall_s']} s")

    with ThreadPoolExecutor(args.jobs) as pool:  # threads only wait on subprocesses
        list(pool.map(one, names))
    Console(width=220).print(f"this run: fp32 matmul peak {peak} GFLOP/s (4096² products, {torch.get_num_threads()} "
                             "threads); peak GF/s: each arm's own run")
    Console(width=220).print(table({k: results[k] for k in arms if k in results}, args.model))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


def unmergeable(saved: dict) -> str | None:
    """Why new arms must not merge into ``saved``: its tiny-model arms ran with other
    common overrides (save() relabels the whole file with this run's), else None."""
    if saved.get("methods") and saved.get("common_overrides", COMMON) != COMMON:
        return (f"its tiny-model arms ran with other common overrides ({' '.join(saved['common_overrides'])}); "
                "merging would label them with this run's")
    return None


def save(dest: Path, key: str, results: dict) -> None:
    data = json.loads(dest.read_text()) if dest.is_file() else {}
    data.update({"budget_per_iteration": BUDGET, "common_overrides": COMMON,
                 "machine": f"{platform.machine()}, {os.cpu_count()} cpus", key: results})
    if key == "smollm2":
        data["smollm2_setup"] = {"recipe": str(SMOL_RECIPE.relative_to(ROOT)), "budget_per_iteration": SMOL_BUDGET,
                                 "common_overrides": SMOL_COMMON}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
