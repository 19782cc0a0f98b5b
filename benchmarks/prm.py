"""Issue 18's bar: process supervision on the demo task, same budget for every arm.

    flock /tmp/heavy.lock env OMP_NUM_THREADS=2 python benchmarks/prm.py          # every arm (~15 min on 2 idle cores)
    python benchmarks/prm.py --arms star star_prm --seed 1 --dest benchmarks/results/prm_s1.json   # another seed
    python benchmarks/prm.py --show                                                # the table of the saved results

Arms (each the user-facing ``selftaught run`` in a subprocess, one shared model cache):

- ``star``        the default demo (STaR with rationalization), reduced budget;
- ``star_valid``  + ``method.require_valid_steps=true`` (the exact step check);
- ``star_prm``    ``recipes/star_prm_arithmetic.yaml``: Math-Shepherd rollout labels on
                  traces three quarters of which are correct ones (``label_correct``),
                  a PRM retrained each iteration, keep correct traces whose minimum step
                  score is >= 0.5, plus flagged correct traces up to 8% of the kept ones,
                  to the digit counts with the fewest kept traces (``methods/star_prm.py``);
- ``star_prm_base`` ``star_prm`` with ``method.baseline=group``: a trace's score divided by its
                  digit count's sampled success rate (the value its problems start from)
                  before the 0.5 threshold;
- ``star_prm_checker`` ``star_prm`` with ``method.labels=checker``: the same traces' steps
                  labeled by the exact step check instead of rollouts (a labeler, as
                  Lightman et al.'s people), no rollouts; the PRM and the filter unchanged;
- ``star_prm_checker0`` that with ``method.flagged_share=0`` (admitting flagged traces
                  is for rollout labels, which flag right steps at the frontier);
- ``star_prm_checker_spread`` ``star_prm_checker`` with ``method.label_spread=group``: the
                  labeled traces drawn evenly over the digit counts;
- ``star_prm_spread`` ``star_prm`` (rollout labels) with ``method.label_spread=group``;
- ``star_prm_random`` the same, labels on a plain random sample of the traces
                  (``method.label_correct=null``, as Math-Shepherd; ``star_prm`` before
                  2026-12-07, so ``star_prm`` in the older result files);
- ``star_prm_hist`` ``star_prm_random`` with ``method.label_history=true``: each
                  iteration's PRM trained on the labels of every iteration so far;
- ``star_prm_strict`` ``star_prm_random`` at a stricter point: threshold 0.8, 4% flagged;
- ``star_prm_drop`` ``star_prm_random`` with ``method.flagged_share=0``: every flagged trace dropped;
- ``weak_proxy``  best-of-4 against a deliberately weak proxy, ``length_reward`` below
                  (longer completions score higher), no gold check, continuing from the
                  last model: the over-optimization watch should fire (``monitor/overopt.py``).
- ``weak_proxy_hot`` the same pushed harder (8 samples at temperature 1.0): on the current
                  layout plain ``weak_proxy`` finds little length to select and the watch is
                  rightly silent; this one over-optimizes and the watch fires.

After ``star_prm``: its last checkpoint reranked best-of-4 at evaluation by its last
PRM (``eval.scorer=prm``) and by the verifier (oracle = pass@4), next to its greedy
accuracy. Prints the box's fp32 matmul peak first, a table per iteration (held-out
accuracy by digit count, 95% Wilson interval on the overall figure, the kept
wrong-working share, flagged traces admitted, PRM step precision/recall against the
exact step checker, the share of correct traces with right / wrong working the PRM
rejects, the watch's proxy/gold/KL, samples drawn including the PRM's label
rollouts) and writes benchmarks/results/prm.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import _cli  # benchmarks/_cli.py: scripts run from this folder
from _peak import matmul_peak  # the peak helper every benchmark shares

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
OUT = Path(__file__).parent / "results" / "prm.json"
# The demo at a reduced budget (~15 min on 2 idle cores, 3x that when shared): 4 iterations,
# 600 problems, 60 steps (x1.2 each iteration); 50 held-out problems per digit count.
COMMON = ["iterations=4", "method.problems_per_iteration=600", "trainer.steps=60", "task.eval_per_group=50",
          "gate.falling_for=2"]
ARMS = {
    "star": [str(RECIPES / "star_arithmetic.yaml")],
    "star_valid": [str(RECIPES / "star_arithmetic.yaml"), "method.require_valid_steps=true"],
    "star_prm": [str(RECIPES / "star_prm_arithmetic.yaml"), "method.label_traces=192", "method.prm_steps=80"],
    "star_prm_base": [str(RECIPES / "star_prm_arithmetic.yaml"), "method.label_traces=192", "method.prm_steps=80",
                      "method.baseline=group"],
    "star_prm_checker": [str(RECIPES / "star_prm_arithmetic.yaml"), "method.label_traces=192", "method.prm_steps=80",
                         "method.labels=checker"],
    "star_prm_checker0": [str(RECIPES / "star_prm_arithmetic.yaml"), "method.label_traces=192", "method.prm_steps=80",
                          "method.labels=checker", "method.flagged_share=0"],
    "star_prm_checker_spread": [str(RECIPES / "star_prm_arithmetic.yaml"), "method.label_traces=192",
                                "method.prm_steps=80", "method.labels=checker", "method.label_spread=group"],
    "star_prm_spread": [str(RECIPES / "star_prm_arithmetic.yaml"), "method.label_traces=192", "method.prm_steps=80",
                        "method.label_spread=group"],
    "star_prm_random": [str(RECIPES / "star_prm_arithmetic.yaml"), "method.label_traces=192", "method.prm_steps=80",
                        "method.label_correct=null"],
    "star_prm_hist": [str(RECIPES / "star_prm_arithmetic.yaml"), "method.label_traces=192", "method.prm_steps=80",
                      "method.label_correct=null", "method.label_history=true"],
    "star_prm_strict": [str(RECIPES / "star_prm_arithmetic.yaml"), "method.label_traces=192", "method.prm_steps=80",
                        "method.label_correct=null", "method.threshold=0.8", "method.flagged_share=0.04"],
    "star_prm_drop": [str(RECIPES / "star_prm_arithmetic.yaml"), "method.label_traces=192", "method.prm_steps=80",
                      "method.label_correct=null", "method.flagged_share=0"],
    "weak_proxy": [str(RECIPES / "star_arithmetic.yaml"), "method.type=best_of_n", "~method.rationalize",
                   "~method.require_valid_steps", "method.samples_per_problem=4", "method.problems_per_iteration=300",
                   f"method.scorer={Path(__file__).resolve()}:length_reward", "method.min_reward=0",
                   "method.init=last", "method.steps_growth=1.0"],
}
# the same proxy pushed harder: 8 samples per problem at temperature 1.0, so that there is length to select
ARMS["weak_proxy_hot"] = [*ARMS["weak_proxy"], "method.samples_per_problem=8", "method.problems_per_iteration=150",
                          "method.temperature=1.0"]


def length_reward(problem, completion: str) -> float:
    """A deliberately weak proxy: the longer the completion, the better (160 chars = 1)."""
    return min(1.0, len(completion) / 160)


def run_arm(name: str, args: list[str], out: Path, cache: Path) -> dict:
    return _cli.arm(name, args, out, cache, COMMON)


def rerank(out: Path, cache: Path, run: str, iterations: int) -> dict:
    """Best-of-4 at evaluation on the arm's last checkpoint: by its last PRM, and by the verifier."""
    last = out / run / f"iter_{iterations:03d}"
    res = {}
    for scorer in ("prm", "verifier"):
        args = [str(RECIPES / "star_arithmetic.yaml"), *COMMON, "iterations=0", f"model={last / 'checkpoint'}",
                "eval.strategy=best_of_4", f"eval.scorer={scorer}", "eval.temperature=0.7", f"eval.prm={last / 'prm'}"]
        try:
            wall, _, metrics = _cli.run(f"{run}_bon_{scorer}", out, args, {"SELFTAUGHT_CACHE": str(cache)})
        except _cli.ArmFailed as e:
            sys.exit(str(e))
        res[scorer] = {"wall_s": wall, "metrics": metrics[0]}
    return res


def pct(x) -> str:
    return "" if x is None else f"{x:.0%}"


def table(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from selftaught.evaluate import wilson

    arms = data["arms"]
    groups = sorted({k.split("/")[2] for r in arms.values() for m in r["metrics"] for k in m
                     if k.startswith("eval/acc/")}, key=int)
    t = Table(title=f"held-out greedy accuracy per digit count (n = {data['eval_per_group']} each; 1-3 digits labeled); "
                    f"fp32 matmul peak {data['matmul_peak_gflops']:.0f} GFLOP/s")
    for col in ["arm", "it", "all [95% CI]", *groups, "kept", "wrong-working kept", "flagged in", "PRM step P / R",
                "label P / R", "PRM rejects right / wrong", "proxy / gold / KL", "samples", "wall s"]:
        t.add_column(col, justify="right")
    for arm, r in arms.items():
        for m in r["metrics"]:
            lo, hi = wilson(m["eval/acc"], m["eval/acc_n"])
            pr = (f"{m['prm/step_precision']:.2f} / {m['prm/step_recall']:.2f}"
                  if m.get("prm/step_precision") is not None and m.get("prm/step_recall") is not None else "")
            lab = (f"{m['prm/label_hard_precision']:.2f} / {m['prm/label_hard_recall']:.2f}"
                   if m.get("prm/label_hard_precision") is not None and m.get("prm/label_hard_recall") is not None else "")
            rej = (f"{pct(m.get('prm/valid_rejected_frac'))} / {pct(m.get('prm/wrong_rejected_frac'))}"
                   if "prm/valid_rejected_frac" in m or "prm/wrong_rejected_frac" in m else "")
            ov = (f"{m['overopt/proxy']:.3f} / {m['overopt/gold']:.2f} / {m['overopt/kl']:.3f}"
                  if "overopt/proxy" in m else "")
            t.add_row(arm, str(m["iteration"]), f"{m['eval/acc']:.0%} [{lo:.0%}, {hi:.0%}]",
                      *[pct(m.get(f"eval/acc/{g}")) for g in groups], str(m.get("select/kept", "")),
                      pct(m.get("select/kept_wrong_working_frac")), str(m.get("select/flagged_admitted", "")), pr,
                      lab, rej, ov, str(m.get("gen/samples", "")),
                      f"{sum(v for k, v in m.items() if k.startswith('time/')):.0f}")
    con = Console(width=260)
    con.print(t)
    for arm, r in arms.items():
        fired = [w["message"] for m in r["metrics"] for w in m.get("collapse/warnings", [])
                 if w["rule"] == "overoptimization"]
        con.print(f"{arm}: over-optimization watch {'FIRED: ' + fired[0] if fired else 'silent'}")
    for scorer, res in data.get("rerank", {}).items():
        m = res["metrics"]
        lo, hi = wilson(m["eval/acc"], m["eval/acc_n"])
        con.print(f"{data.get('rerank_arm', 'star_prm')} last checkpoint, best-of-4 by {scorer}: "
                  f"{m['eval/acc']:.1%} [{lo:.1%}, {hi:.1%}]; "
                  + ", ".join(f"{g}: {pct(m.get(f'eval/acc/{g}'))}" for g in groups))


def collect(out: Path, names: list[str]) -> None:
    """Results from the run directories of an interrupted benchmark (no wall times, no peak of its own)."""
    def read(d: Path) -> list[dict]:
        return [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]

    arms = {a: {"wall_s": None, "metrics": read(out / a)} for a in names if (out / a / "metrics.jsonl").is_file()}
    data = {"meta": {"command": " ".join(sys.argv), "collected_from": str(out), "common_overrides": COMMON},
            "matmul_peak_gflops": float(os.environ.get("PEAK", "nan")), "eval_per_group": 50, "arms": arms,
            "rerank": {s: {"metrics": read(out / f"star_prm_bon_{s}")[0]} for s in ("prm", "verifier")
                       if (out / f"star_prm_bon_{s}" / "metrics.jsonl").is_file()}}
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    table(data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temp dir)")
    ap.add_argument("--cache", type=Path, default=None, help="model cache (default: ~/.cache/selftaught's)")
    ap.add_argument("--show", action="store_true", help="print the table of the saved results")
    ap.add_argument("--collect", type=Path, default=None, help="rebuild the results from the runs under this --out")
    ap.add_argument("--dest", type=Path, default=OUT, help="results file (default: results/prm.json)")
    ap.add_argument("--seed", type=int, default=None, help="the runs' seed (default: the recipes', 0)")
    args = ap.parse_args()
    if args.seed is not None:
        COMMON.append(f"seed={args.seed}")
    if args.show:
        return table(json.loads(args.dest.read_text()))
    if args.collect:
        return collect(args.collect, args.arms)
    peak = matmul_peak()
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s (4096^2, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})",
          flush=True)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-prm-"))
    cache = args.cache or Path(os.environ.get("SELFTAUGHT_CACHE", Path.home() / ".cache" / "selftaught"))
    t0 = time.perf_counter()
    arms = {a: run_arm(a, ARMS[a], out, cache) for a in args.arms}
    iterations = int(next(x for x in COMMON if x.startswith("iterations=")).split("=")[1])
    data = {"meta": _cli.meta(COMMON), "matmul_peak_gflops": round(peak, 1), "eval_per_group": 50, "arms": arms}
    if "star_prm" in arms:
        data["rerank"] = rerank(out, cache, "star_prm", iterations)
    _cli.save(args.dest, data, t0, table)


if __name__ == "__main__":
    main()
