"""Issue 17, item 3: Self-Rewarding seeded as the paper seeds it (Yuan et al. 2024,
arXiv 2401.10020: M1 = base + IFT + EFT), next to Self-Rewarding from the bare
instruct model, on SmolLM2-135M-Instruct x reasoning-gym 1-2 digit sums.

    flock /tmp/heavy.lock env OMP_NUM_THREADS=2 python benchmarks/self_rewarding_eft.py   # both arms (637 s on 2 cores)
    python benchmarks/self_rewarding_eft.py --arms eft --name sr_eft_64 method.eft.problems=64   # results/<name>.json;
                                                                # extra key=value overrides go to every arm
    python benchmarks/self_rewarding_eft.py --show                           # the table of the saved results

Arms (each the user-facing ``selftaught run`` in a subprocess, one model cache):

- ``eft``    ``recipes/self_rewarding_eft_smollm2.yaml`` as written: iteration 1 is
             the EFT + IFT seed (SFT, LoRA), iterations 2-3 Self-Rewarding (DPO, LoRA);
- ``no_eft`` the same recipe with ``~method.eft`` and one iteration fewer: the same
             two Self-Rewarding iterations from the bare model (its judge parsed 3% of
             the time in benchmarks/methods_pref.py).

Per iteration: who judged (the model the iteration sampled from: M0 is the base, M1
the EFT seed...), the judge's parse rate, its agreement with gold over same-prompt
candidate pairs whose verdicts differ (ties half; the 95% Wilson interval treats
those pairs as independent trials, which they are not quite: pairs of one prompt
share candidates), the mean score of right vs wrong candidates, DPO pairs kept
(and how many of them have different gold verdicts, and how often the chosen one
is the right one), held-out greedy accuracy with its 95% Wilson interval. The
paper's claim to check: the judge's agreement rises from M1 to M2 (to M3).
Prints the fp32 matmul peak first; writes benchmarks/results/self_rewarding_eft.json.
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

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "self_rewarding_eft_smollm2.yaml"
RESULTS = Path(__file__).parent / "results"
ARMS = {"eft": ["iterations=3"], "no_eft": ["~method.eft", "iterations=2"]}
KEEP = ("eval/acc", "eval/acc_ci_low", "eval/acc_ci_high", "eval/acc_n", "judge/parsed_frac", "judge/candidates",
        "judge/gold_pair_agreement", "judge/gold_pairs", "judge/score_correct_mean", "judge/score_wrong_mean",
        "judge/score_mean", "select/pairs", "judge/pairs_gold_decisive", "judge/chosen_correct_frac",
        "judge/rejected_correct_frac", "verify/correct_frac", "eft/examples", "eft/examples_right",
        "eft/ift_examples", "eft/candidates_right", "eft/candidates", "train/loss", "train/reward_accuracy",
        "train/skipped", "gen/len_chars_mean", "model")


def rows_of(arm: str, metrics: list[dict]) -> list[dict]:
    """One row per iteration: the kept metrics, the stage, who judged, the intervals."""
    from selftaught.evaluate import wilson

    out, names = [], {}
    for m in metrics:
        k = m["iteration"]
        stage = "start" if k == 0 else "eft" if "eft/stage" in m else "self-rewarding"
        row = {"iteration": k, "stage": stage, **{key: m[key] for key in KEEP if key in m}}
        if "judge/parsed_frac" in m:  # the model iteration k sampled from (k-1's) judged its own candidates
            row["judge"] = names[metrics[k - 1]["model"]]
            row["judge/parsed_ci"] = list(wilson(m["judge/parsed_frac"], m["judge/candidates"]))
        names.setdefault(m["model"], f"M{len(names)}")  # a new name only when training made a new model
        if m.get("judge/gold_pairs"):
            row["judge/agreement_ci"] = list(wilson(m["judge/gold_pair_agreement"], m["judge/gold_pairs"]))
        out.append(row)
    return out


def _pct(v) -> str:
    return "" if v is None else f"{v:.0%}"


def _ci(lo, hi) -> str:
    return f"[{lo:.0%}, {hi:.0%}]"


def table(data: dict) -> None:
    print(f"\nSelf-Rewarding with and without the EFT seed, SmolLM2-135M-Instruct x 1-2 digit sums; "
          f"fp32 matmul peak {data['matmul_peak_gflops']:.1f} GFLOP/s")
    print("| arm | it | stage | judge | parsed [95% CI] | agreement w/ gold [95% CI] (pairs) | score right / wrong | "
          "DPO pairs (gold-decisive, chosen right) | held-out acc [95% CI] (n) | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for arm in data["arms"]:
        for r in arm["rows"]:
            parsed = f"{_pct(r['judge/parsed_frac'])} {_ci(*r['judge/parsed_ci'])}" if "judge" in r else ""
            agree = (f"{r['judge/gold_pair_agreement']:.0%} {_ci(*r['judge/agreement_ci'])} ({r['judge/gold_pairs']})"
                     if "judge/agreement_ci" in r else ("n/a (0)" if "judge" in r else ""))
            scores = " / ".join("-" if r.get(k) is None else f"{r[k]:.2f}"
                                for k in ("judge/score_correct_mean", "judge/score_wrong_mean")) if "judge" in r else ""
            if r["stage"] == "eft":
                pairs = (f"EFT: {r.get('eft/examples')} judge examples ({r.get('eft/examples_right')} right), "
                         f"{r.get('eft/ift_examples')} IFT")
            elif "select/pairs" in r:
                pairs = (f"{r['select/pairs']} ({r.get('judge/pairs_gold_decisive', 0)}, "
                         f"{_pct(r.get('judge/chosen_correct_frac'))})")
            else:
                pairs = ""
            acc = f"{r['eval/acc']:.1%} {_ci(r['eval/acc_ci_low'], r['eval/acc_ci_high'])} ({r['eval/acc_n']})"
            print(f"| {arm['arm']} | {r['iteration']} | {r['stage']} | {r.get('judge', '')} | {parsed} | {agree} | "
                  f"{scores} | {pairs} | {acc} | {r.get('seconds', '')} |")
    print("judge: the model the iteration sampled from, which judged its own candidates (M0: the base; in arm eft, "
          "M1 is the EFT seed, judged before any Self-Rewarding training; an iteration with no pairs trains no new model).")
    for arm in data["arms"]:
        judged = [r for r in arm["rows"] if "judge/agreement_ci" in r]
        if judged:
            print(f"{arm['arm']}: judge agreement " + " -> ".join(
                f"{r['judge']} {r['judge/gold_pair_agreement']:.0%} {_ci(*r['judge/agreement_ci'])}" for r in judged))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    _cli.results_args(ap, "self_rewarding_eft", "$SELFTAUGHT_CACHE or <out>/cache")
    args, extra = ap.parse_known_args()
    dest = RESULTS / f"{args.name}.json"
    if args.show:
        return table(json.loads(dest.read_text()))
    peak = _cli.print_peak()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-sr-eft-"))
    cache = args.cache or Path(os.environ.get("SELFTAUGHT_CACHE") or out / "cache")
    t0 = time.perf_counter()
    data = {"meta": _cli.meta(extra, recipe=RECIPE.name, arms={a: ARMS[a] for a in args.arms}),
            "matmul_peak_gflops": round(peak, 1), "arms": []}
    for arm in args.arms:
        res = _cli.arm(arm, [str(RECIPE), *ARMS[arm]], out, cache, extra)
        rows = rows_of(arm, res["metrics"])
        for r, m in zip(rows, res["metrics"]):
            r["seconds"] = round(sum(v for k, v in m.items() if k.startswith("time/")))
        data["arms"].append({"arm": arm, "command": res["command"], "wall_s": res["wall_s"], "rows": rows})
    dest.parent.mkdir(parents=True, exist_ok=True)
    _cli.save(dest, data, t0, table)


if __name__ == "__main__":
    sys.exit(main())
