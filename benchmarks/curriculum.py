"""Label-free easy-to-hard self-improvement with a difficulty curriculum (issue 17,
item 1): ``methods/easy_to_hard.py`` on the tiny model, which has labels only for
1-8 digit sums, walking up to 20 digits (48 on randomized positions, the ``_gaps``
arms) (``curriculum.py``).

    python benchmarks/curriculum.py                      # arms vote, none, gold; seeds 0 1
    python benchmarks/curriculum.py --arms vote --seeds 0 1 iterations=12

``seed=N`` also seeds the tiny model's build unless ``model=<dir>`` names one
(results/curriculum.json and curriculum_s1.json: one model, built once with seed 0,
loop seeds 0 and 1; their ``command`` says how they were run; curriculum_seed1.json
is the earlier 1-3 digit seed regime on the old position layout).

Arms (recipes/easy_to_hard_arithmetic.yaml unless named, ``method.label=``):
- ``vote``: TTRL's majority vote (share >= 0.6) + the paper's length filter;
- ``none``: every sample trained, no filter;
- ``gold``: the samples the verifier calls correct (oracle, not label-free);
- ``consistent``: ``vote`` where a trace whose working contradicts itself casts no
  vote (``method.consistency=true``: label-free, read from the completion alone);
- ``vote_big``: ``vote`` with 4x the problems a round (512) and 4x the SFT steps (480),
  nearer the paper's rounds (it trains on far more labels a round);
- ``vote_gaps``, ``none_gaps``, ``gold_gaps``: the three arms on
  recipes/easy_to_hard_gaps_arithmetic.yaml: ``task.position_gaps=2`` (up to 2
  unused position blocks between digits in training, the warm start's included, so
  they build their own model: run them without ``model=``), 1-48 digits pooled and
  held out, ``method.advance=agreement``. Without gaps the warm start writes ``=``
  after the 10 digit lines of every 10-digit sum with a final carry (p = 1.00;
  final_carry.py), so the plain arms stall at 10 digits.
Every arm follows the same label-free schedule (vote agreement); pseudo-label
accuracy against gold is reported every round in every arm.

Prints, per arm and seed, round by round: held-out accuracy by length with 95%
Wilson intervals, the current level and its agreement, pseudo-label accuracy on
it, and the share of kept rows that are right; then the longest length L such
that every length up to L is >= 90% (the issue's goal: L >= 16), the detector's
alarms (benchmarks/collapse.py's scoring) and the fp32 matmul peak. Writes
benchmarks/results/curriculum.json (``--out`` keeps the runs; extra key=value
overrides go to every run).
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

from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder
from collapse import alarm_outcome

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "easy_to_hard_arithmetic.yaml"
SIZE = ["iterations=10", "task.eval_per_group=20", "gate.policy=warn"]  # the recipe, smaller held-out groups
ARMS = {"vote": ["method.label=vote"], "none": ["method.label=none"], "gold": ["method.label=gold"],
        "consistent": ["method.label=vote", "method.consistency=true"],
        # the paper's larger rounds: 4x the problems a round (a larger pool to draw them
        # from) and 4x the steps, to tell too little data from a model that cannot extend
        "vote_big": ["method.label=vote", "method.problems_per_iteration=512", "task.pool_size=12000",
                     "trainer.steps=480"]}
# Randomized block positions in training: recipes/easy_to_hard_gaps_arithmetic.yaml
# (task.position_gaps=2, 1-48 digits, method.advance=agreement; its own tiny model)
GAPS_RECIPE = ROOT / "recipes" / "easy_to_hard_gaps_arithmetic.yaml"
ARMS |= {f"{label}_gaps": [f"method.label={label}"] for label in ("vote", "none", "gold")}
SHOW = [8, 9, 10, 11, 12, 13, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 36, 40, 44, 48]  # lengths in the printed table (all are in the JSON)
GOAL = 0.9


def reach(m: dict, bar: float = GOAL) -> int:
    """The longest L with held-out accuracy >= bar at every length 1..L (0: none)."""
    L = 0
    while isinstance(m.get(f"eval/acc/{L + 1}"), (int, float)) and m[f"eval/acc/{L + 1}"] >= bar:
        L += 1
    return L


def run_arm(arm: str, seed: int, overrides: list[str], out: Path) -> dict:
    from selftaught import config, loop

    args = [*SIZE, *ARMS[arm], f"seed={seed}", *overrides]
    cfg = config.load(GAPS_RECIPE if arm.endswith("_gaps") else RECIPE, [*args, f"name={arm}-s{seed}", f"out_dir={out}"])
    t0 = time.perf_counter()
    store = loop.run(cfg)
    metrics = store.metrics()
    n = {}
    for r in store.rows(0, "eval"):  # held-out problems per length (the same set every round)
        n[str(r["group"])] = n.get(str(r["group"]), 0) + (r["phase"] == "eval")
    # stage_s: the stages' own times, summed over rounds (wall_s is this call's: a resumed run's is short)
    stage_s = sum(v for m in metrics for k, v in m.items() if k.startswith("time/") and isinstance(v, (int, float)))
    return {"arm": arm, "seed": seed, "wall_s": round(time.perf_counter() - t0, 1), "stage_s": round(stage_s, 1),
            "overrides": args, "eval_n": n,
            "reach_90": [reach(m) for m in metrics], "alarms": alarm_outcome(metrics), "metrics": metrics}


def _ci(m: dict, g: int, n: dict) -> str:
    from selftaught.evaluate import wilson

    acc = m.get(f"eval/acc/{g}")
    if not isinstance(acc, (int, float)):
        return ""
    lo, hi = wilson(acc, n.get(str(g), 0))
    return f"{acc:.0%} [{lo:.0%},{hi:.0%}]"


def table(runs: list[dict], peak: float):
    from rich.table import Table

    t = Table(title=f"easy_to_hard on arithmetic, tiny model, labels for 1-8 digits only; held-out acc by length "
                    f"[95% Wilson]; fp32 matmul peak {peak:.0f} GFLOP/s")
    show = [g for g in SHOW if any(str(g) in r["eval_n"] for r in runs)]  # the lengths these runs hold out
    for col in ["arm", "seed", "it", "acc", *map(str, show), "reach90", "level", "agree", "label acc", "kept ok", "kept", "incons"]:
        t.add_column(col, justify="right")
    for r in runs:
        for m in r["metrics"]:
            cur = m.get("curriculum/current")
            t.add_row(r["arm"], str(r["seed"]), str(m["iteration"]), f"{m['eval/acc']:.0%}", *[_ci(m, g, r["eval_n"]) for g in show],
                      str(reach(m)), str(cur or ""), _f(m.get(f"curriculum/agreement/{cur}"), "{:.2f}"),
                      _f(m.get(f"label/acc/{cur}"), "{:.0%}"), _f(m.get("select/kept_correct_frac"), "{:.0%}"),
                      _f(m.get("select/kept"), "{:.0f}"), _f(m.get("select/inconsistent_frac"), "{:.0%}"))
    return t


def _f(v, fmt: str) -> str:
    return fmt.format(v) if isinstance(v, (int, float)) else ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arms", nargs="*", default=["vote", "none", "gold"], choices=list(ARMS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    ap.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temp dir)")
    ap.add_argument("--dest", type=Path, default=ROOT / "benchmarks" / "results" / "curriculum.json")
    args, extra = ap.parse_known_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-curriculum-"))
    os.environ.setdefault("SELFTAUGHT_CACHE", str(out / "cache"))  # one tiny model per seed, shared by the arms
    peak = matmul_peak()
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s", flush=True)
    t0 = time.perf_counter()
    runs = [run_arm(arm, seed, extra, out) for seed in args.seeds for arm in args.arms]

    from rich.console import Console

    con = Console(width=260)
    con.print(table(runs, peak))
    for r in runs:
        a = r["alarms"]
        con.print(f"{r['arm']} seed {r['seed']}: {r['wall_s']:.0f} s ({r['stage_s']:.0f} s in its stages); reach@90% by round {r['reach_90']}; "
                  f"held-out {a['start']:.0%} -> {a['end']:.0%}; collapsed: {a['collapsed']}; "
                  f"alarms (high+) at iterations {a['alarm_iterations']}", highlight=False)
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    args.dest.write_text(json.dumps({"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                                 "python": sys.version.split()[0]},
                                     "matmul_peak_gflops": round(peak, 1), "command": " ".join(sys.argv),
                                     "total_wall_s": round(time.perf_counter() - t0, 1), "runs": runs}, indent=1))
    con.print(f"wrote {args.dest}")


if __name__ == "__main__":
    main()
