"""Issue 17, item 4: SPIN closing the SFT gap (Chen et al. 2024, arXiv 2401.01335),
next to plain SFT on the same data for the same optimizer steps.

    flock /tmp/heavy.lock env OMP_NUM_THREADS=2 python benchmarks/spin_sft_gap.py   # both arms, seeds 0 1 (~8 min on 2 cores)
    python benchmarks/spin_sft_gap.py --arms spin --seeds 0 iterations=1   # extra key=value overrides go to every arm
    python benchmarks/spin_sft_gap.py --name spin_sft_gap_lr1e-5 trainer.lr=1e-5   # results/<name>.json
    python benchmarks/spin_sft_gap.py --show                                 # the table of the saved results

Both arms start from the same under-trained tiny model (``warm_start_steps`` in
recipes/spin_sft_gap_arithmetic.yaml: well below convergence on its own SFT set,
the labeled 1-3 digit scratchpads) and run the same iterations, prompts, batch
size, steps, learning rate and schedule; ``seed=N`` seeds the model's build too,
so each seed has its own start, shared by its two arms:

- ``spin``: the recipe as written -- positives the SFT targets, negatives the
  previous iteration's own samples on those prompts, DPO (beta 0.1) from and
  against the previous iteration's model;
- ``sft``: ``method.objective=sft``, the paper's baseline: SFT on the same targets;
- ``spin_nll``: SPIN plus the positives' NLL (``trainer.sft_weight=1``; not the
  paper's loss: the RPO / DPO-Positive remedy for likelihood displacement).

Each arm is the user-facing ``selftaught run`` in a subprocess (``_cli.py``). The
loop measures held-out accuracy (unseen 1-3 digit problems); this script adds the
*SFT-set* accuracy -- greedy, on every prompt both arms train on -- of each
iteration's checkpoint. 95% Wilson intervals throughout; the summary pools the
seeds (problems x seeds as independent trials, an approximation: a seed's
problems share one model). Prints the box's fp32 matmul peak with the table and
writes benchmarks/results/spin_sft_gap.json.
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

import _cli  # benchmarks/_cli.py: scripts run from this folder

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "spin_sft_gap_arithmetic.yaml"
RESULTS = Path(__file__).parent / "results"
ARMS = {
    "spin": [],
    "sft": ["method.objective=sft", "trainer.type=sft", "~trainer.beta"],
    "spin_nll": ["trainer.sft_weight=1.0"],  # + the positives' NLL (RPO / DPO-Positive), against likelihood displacement
}


def sft_set_accuracy(run_dir: Path, metrics: list[dict]) -> list[dict]:
    """Greedy accuracy of each iteration's model on the run's SFT prompts (the task's
    labeled seed set), as ``sft/acc`` metrics (overall, per digit count, interval)."""
    from selftaught import config, registry
    from selftaught.evaluate import accuracy_metrics
    from selftaught.methods.spin import labeled

    cfg = config.load(run_dir / "config.yaml")
    task, backend = registry.build("task", cfg.task), registry.build("backend", cfg.backend)
    problems = labeled(task, cfg.method.target, cfg.method.answer_format)
    out = []
    for m in metrics:
        backend.load(m["model"], task.position_tracker)
        texts = backend.sample([task.prompt(p) for p in problems], 1, temperature=0.0,
                               max_new_tokens=cfg.eval.max_new_tokens, seed=0, desc=f"SFT set, iteration {m['iteration']}")
        rows = [{"group": p.group, "correct": task.verify(p, t[0]).correct} for p, t in zip(problems, texts)]
        out.append(accuracy_metrics(rows, prefix="sft/acc"))
    return out


def run_arm(arm: str, seed: int, extra: list[str], out: Path, cache: Path) -> dict:
    name = f"{arm}-s{seed}"
    try:
        wall, cmd, metrics = _cli.run(name, out, [str(RECIPE), *ARMS[arm], f"seed={seed}", *extra],
                                      {"SELFTAUGHT_CACHE": str(cache)})
    except _cli.ArmFailed as e:
        sys.exit(str(e))
    for m, s in zip(metrics, sft_set_accuracy(out / name, metrics)):
        m.update(s)
    print(f"{name}: {wall:.0f} s; SFT set " + " -> ".join(f"{m['sft/acc']:.0%}" for m in metrics)
          + "; held-out " + " -> ".join(f"{m['eval/acc']:.0%}" for m in metrics), flush=True)
    stages = round(sum(v for m in metrics for k, v in m.items() if k.startswith("time/")), 1)  # also right when resumed
    return {"arm": arm, "seed": seed, "wall_s": wall, "stage_s": stages, "command": " ".join(cmd[2:]), "metrics": metrics}


def pooled(runs: list[dict], key: str) -> dict:
    """Per arm and iteration: accuracy pooled over seeds, its Wilson interval, the per-seed values."""
    from selftaught.evaluate import wilson

    out: dict = {}
    for r in runs:
        for m in r["metrics"]:
            cell = out.setdefault(r["arm"], {}).setdefault(str(m["iteration"]), {"correct": 0, "n": 0, "seeds": []})
            cell["correct"] += round(m[key] * m[f"{key}_n"])
            cell["n"] += m[f"{key}_n"]
            cell["seeds"].append(round(m[key], 4))
    for arm in out.values():
        for cell in arm.values():
            p = cell["correct"] / cell["n"]
            cell.update(acc=round(p, 4), ci=[round(x, 4) for x in wilson(p, cell["n"])])
    return out


def verdict(summary: dict, key: str) -> str:
    """SPIN vs SFT at the last iteration: ahead in every seed, and do the pooled intervals separate?"""
    s, f = summary[key].get("spin"), summary[key].get("sft")
    if not s or not f:
        return "needs both arms"
    last = max(s, key=int)
    a, b = s[last], f[last]
    wins = sum(x > y for x, y in zip(a["seeds"], b["seeds"]))
    sep = "intervals apart" if a["ci"][0] > b["ci"][1] or b["ci"][0] > a["ci"][1] else "intervals overlap"
    return (f"iteration {last}: SPIN {a['acc']:.1%} {_ci(a['ci'])} vs SFT {b['acc']:.1%} {_ci(b['ci'])} "
            f"({(a['acc'] - b['acc']) * 100:+.1f} points; SPIN ahead in {wins}/{len(a['seeds'])} seeds; {sep})")


def _ci(ci) -> str:
    return f"[{ci[0]:.1%}, {ci[1]:.1%}]"


def table(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="SPIN vs plain SFT from an under-trained tiny model (arithmetic, 1-3 digits); "
                    f"fp32 matmul peak {data['matmul_peak_gflops']:.0f} GFLOP/s")
    for col in ["arm", "seed", "it", "SFT set [95% CI]", "n", "held-out [95% CI]", "n", "held-out 3-digit",
                "sampled SFT-set acc", "pairs", "margin (end)", "logp chosen (end)", "train loss", "wall s"]:
        t.add_column(col, justify="right")
    for r in data["runs"]:
        for m in r["metrics"]:
            t.add_row(r["arm"], str(r["seed"]), str(m["iteration"]),
                      f"{m['sft/acc']:.1%} {_ci((m['sft/acc_ci_low'], m['sft/acc_ci_high']))}", str(m["sft/acc_n"]),
                      f"{m['eval/acc']:.1%} {_ci((m['eval/acc_ci_low'], m['eval/acc_ci_high']))}", str(m["eval/acc_n"]),
                      f"{m.get('eval/acc/3', float('nan')):.0%}", _fmt(m.get("verify/correct_frac"), "{:.0%}"),
                      _fmt(m.get("select/pairs"), "{}"), _fmt(m.get("spin/reward_margin"), "{:.3f}"),
                      _fmt(m.get("train/logps_chosen"), "{:.2f}"),
                      _fmt(m.get("train/loss"), "{:.3f}"),
                      f"{sum(v for k, v in m.items() if k.startswith('time/')):.0f}")
    con = Console(width=220)
    con.print(t)
    con.print("sampled SFT-set acc: the model *before* the iteration's training, at the negatives' temperature "
              "(1.0); margin: beta x (chosen - rejected log-ratio), logp chosen: the target's summed log-probability, "
              "both at the end of training", highlight=False)
    for key, what in (("sft/acc", "SFT set"), ("eval/acc", "held-out")):
        for arm, its in data["summary"][key].items():
            con.print(f"{what}, {arm} pooled over seeds: " + " -> ".join(
                f"{c['acc']:.1%} {_ci(c['ci'])}" for _, c in sorted(its.items(), key=lambda kv: int(kv[0]))),
                highlight=False)
        con.print(f"{what}: {verdict(data['summary'], key)}", highlight=False)


def _fmt(v, fmt: str) -> str:
    return "" if v is None else fmt.format(v)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arms", nargs="*", default=["spin", "sft"], choices=list(ARMS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    _cli.results_args(ap, "spin_sft_gap", "<out>/cache, built fresh")
    args, extra = ap.parse_known_args()
    dest = RESULTS / f"{args.name}.json"
    if args.show:
        return table(json.loads(dest.read_text()))
    peak = _cli.print_peak()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-spin-sft-gap-"))
    cache = args.cache or out / "cache"  # one warm start per seed, shared by its arms
    t0 = time.perf_counter()
    runs = [run_arm(arm, seed, extra, out, cache) for seed in args.seeds for arm in args.arms]
    summary = {key: pooled(runs, key) for key in ("sft/acc", "eval/acc")}
    data = {"meta": {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
                     "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"), "recipe": RECIPE.name,
                     "arms": {a: ARMS[a] for a in args.arms}, "extra_overrides": extra,
                     "wall_s": round(time.perf_counter() - t0)},
            "matmul_peak_gflops": round(peak, 1), "summary": summary, "runs": runs}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(data, indent=1) + "\n")
    table(data)
    print(f"wrote {dest} ({data['meta']['wall_s']} s)")


if __name__ == "__main__":
    main()
