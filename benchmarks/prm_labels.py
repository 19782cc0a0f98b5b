"""Which step labels could flag the wrong working STaR keeps? Read off a finished
``star_prm`` run (``benchmarks/prm.py --out DIR``): for every labeled step of a
*correct* trace (the only traces a gold-checked filter decides on) whose exactness
the task checks, the rollout label against the exact step checker, and labels the
same rollouts also give for free:

- ``value (Math-Shepherd hard)``: flag a step when none of the k rollouts from its
  prefix reaches the answer -- what the PRM is trained on;
- ``value drop``: flag it when the value falls to 0 from a prefix that had some
  (Setlur et al. 2024's "progress", arXiv 2410.08146, in its simplest form);
- ``re-sample agreement``: the rollouts from prefix j-1 each re-write step j; flag
  step j when fewer than m of them write it as the trace did (a step the policy
  rarely writes is suspect), alone and together with the value label.

    python benchmarks/prm_labels.py /tmp/prm/star_prm            # a run directory
    python benchmarks/prm_labels.py /tmp/prm/star_prm --dest benchmarks/results/prm_labels_s1.json

Prints a table per iteration (flag precision / recall against the exact check, and
how many wrong steps there were), then how well the trained PRM's trace score ranks
the correct traces of one digit count (the ROC AUC of right over wrong working:
0.5 is no better than chance; whatever threshold or baseline selection uses, it
can only trade the frontier's traces for their wrong working when this is near
0.5), and writes the JSON. Reads only; no model runs.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from selftaught.store import read_parquet
from selftaught.tasks.arithmetic import Arithmetic, Config as TaskConfig
from selftaught.verifiers import prm
from selftaught.verifiers.prm import ROLLOUT


def rules(agree: int, n: int, v: float, v_before: float | None) -> dict[str, bool]:
    """Flag (True) or pass, for one step, under every label rule."""
    value = v == 0
    return {"value (Math-Shepherd hard)": value,
            "value drop": value and (v_before is None or v_before > 0),
            "re-sample agreement < 2": n > 0 and agree < 2,
            "value or agreement < 2": value or (n > 0 and agree < 2),
            "value or agreement < 3": value or (n > 0 and agree < 3)}


def records(run: Path, k: int) -> tuple[list[dict], list[dict]] | None:
    """Iteration k's step labels and samples, read once for both tables; None without labels."""
    steps_file = run / f"iter_{k:03d}" / "steps.parquet"
    if not steps_file.is_file():
        return None
    return read_parquet(steps_file), read_parquet(run / f"iter_{k:03d}" / "samples.parquet")


def iteration(task, labels: list[dict], samples: list[dict]) -> dict:
    resampled = defaultdict(list)  # (trace, prefix step) -> the rollouts' own steps
    for r in samples:
        if r["phase"] == ROLLOUT:
            resampled[(r["rollout_of"], r["rollout_step"])].append(task.steps(r["completion"]))
    traces = {r["sample_id"]: r for r in samples if r["phase"] != ROLLOUT}
    value = {(l["trace_id"], l["step"]): l["soft"] for l in labels}
    flags: dict[str, list[list[float]]] = defaultdict(list)  # per rule, 0.0 = flagged (step_quality's score)
    exact: list[list[bool]] = []
    for l in labels:
        t = traces[l["trace_id"]]
        if l["source"] != "rollout" or l["exact"] is None or not t["correct"] or l["step"] < 2:
            continue  # step 1 has no rollouts before it to re-sample it
        j = l["step"]
        step = task.steps(t["completion"])[j - 1]
        again = resampled[(l["trace_id"], j - 1)]
        agree = sum(len(s) >= j and s[j - 1] == step for s in again)
        for name, flag in rules(agree, len(again), l["soft"], value.get((l["trace_id"], j - 1))).items():
            flags[name].append([0.0 if flag else 1.0])
        exact.append([l["exact"]])
    out = {}
    for name, pred in flags.items():  # flagging wrong steps, scored as the PRM is (prm.step_quality)
        q = prm.step_quality(pred, exact, prefix="q")
        out[name] = {"precision": q["q_precision"] and round(q["q_precision"], 3),
                     "recall": q["q_recall"] and round(q["q_recall"], 3), "wrong_steps": q["q_wrong_n"],
                     "steps": q["q_n"]}
    return out


def ranking(labels: list[dict], samples: list[dict]) -> dict:
    """Per digit count: the correct sampled or rationalized traces with right and with
    wrong working the PRM was not trained on, and the AUC of their PRM score
    (Mann-Whitney U / n1 n2; scipy comes with datasketch); None where either kind is missing."""
    from scipy.stats import mannwhitneyu

    seen = {l["trace_id"] for l in labels}
    by: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for r in samples:
        if r["phase"] == ROLLOUT or r["sample_id"] in seen or not r["correct"]:
            continue
        if r.get("prm_score") is not None and r["steps_ok"] is not None:
            by[str(r["group"])][0 if r["steps_ok"] else 1].append(r["prm_score"])
    out = {}
    for g in sorted(by, key=lambda g: (len(g), g)):
        right, wrong = by[g]
        auc = mannwhitneyu(right, wrong).statistic / (len(right) * len(wrong)) if right and wrong else None
        out[g] = {"right": len(right), "wrong": len(wrong), "auc": auc if auc is None else round(float(auc), 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path, help="a star_prm run directory (holds iter_001/steps.parquet ...)")
    ap.add_argument("--dest", type=Path, help="write the JSON here")
    args = ap.parse_args()
    task = Arithmetic(TaskConfig())
    result, ranks = {}, {}
    for k in range(1, 100):
        got = records(args.run, k)
        if got is None and k > 1:
            break
        if got is not None:
            result[k], ranks[k] = iteration(task, *got), ranking(*got)
    if not result:
        raise SystemExit(f"{args.run}: no iter_k/steps.parquet (is it a star_prm run directory?)")
    names = list(next(iter(result.values())))
    if names:
        print(f"steps 2.. of correct traces, flag precision / recall against the exact step check ({args.run})")
        print("| iteration | wrong steps | " + " | ".join(names) + " |")
        print("|---|---|" + "---|" * len(names))
        for k, r in result.items():
            cells = [f"{r[n]['precision'] if r[n]['precision'] is not None else '-'} / "
                     f"{r[n]['recall'] if r[n]['recall'] is not None else '-'}" for n in names]
            print(f"| {k} | {r[names[0]]['wrong_steps']} of {r[names[0]]['steps']} | " + " | ".join(cells) + " |")
    else:  # labels: checker -- no rollouts to read label rules from
        print(f"{args.run}: no rollout labels (a `labels: checker` run); the PRM's ranking only")
    groups = sorted({g for r in ranks.values() for g in r}, key=lambda g: (len(g), g))
    print("\nthe PRM's trace score on correct traces, per digit count (traces it was not "
          "trained on): right / wrong working, AUC of right over wrong")
    print("| iteration | " + " | ".join(groups) + " |")
    print("|---|" + "---|" * len(groups))
    for k, r in ranks.items():
        cells = [f"{r[g]['right']} / {r[g]['wrong']}, {r[g]['auc'] if r[g]['auc'] is not None else '-'}"
                 if g in r else "" for g in groups]
        print(f"| {k} | " + " | ".join(cells) + " |")
    if args.dest:
        args.dest.write_text(json.dumps({"run": str(args.run), "iterations": result, "ranking": ranks},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
