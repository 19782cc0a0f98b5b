"""A loop built to collapse next to the same loop with the mitigations on, on the
built-in arithmetic task, over several seeds (issues 5 and 17).

    python benchmarks/collapse.py                          # both arms, seeds 0 1 2
    python benchmarks/collapse.py --arms collapse --seeds 0  # extra key=value overrides go to every arm

``seed=N`` also seeds the tiny model's build, so each seed starts from its own
model unless ``model=<dir>`` names one (results/collapse.json: one model, the
loop's seeds 0 1 2; its ``command`` says how it was run).

Arms (ReST-EM with ``threshold=0``: every sample is trained on, right or wrong --
Shumailov et al.'s setting, no quality filter -- one sample per problem drawn at
``temperature=1.5``, hotter than the model, continuing from the last checkpoint):
- ``collapse``: no natural data, no near-duplicate filter, replace (train on the
  latest iteration's rows only). Each round fits samples flatter than the model
  itself, so the model drifts towards noise: held-out accuracy falls every seed.
- ``mitigated``: the same loop with 30% natural data (the labeled 1-3 digit seed
  scratchpads), the per-problem near-duplicate filter and accumulate (all
  iterations' kept rows, Gerstgrasser et al. 2024).
- ``star_collapse`` / ``star_mitigated`` (opt-in): the earlier STaR arms. STaR's
  correctness filter protects accuracy, so that "collapse" arm is one trajectory,
  not a recipe: it fell 52% -> 5% once (commit bd2d072) and rose 50% -> 91% the
  next time with the same overrides.

A run *collapsed* when its final held-out accuracy is >= ``FELL`` (10 points)
below iteration 0's; it *held* when no iteration after 0 is more than ``HELD``
(5 points) below it. The detector's *alarms* are the iterations with a warning
of severity high or above (those that stop a run under ``gate.policy=stop``):
an alarm in a collapsed run is a hit, none a miss; an alarm in a run that did
not collapse is a false alarm (``alarm_outcome``; benchmarks/curriculum.py
scores its runs the same way). The gate runs with ``policy=warn`` so every arm
runs all its iterations. Prints per-iteration held-out accuracy, pass@4 and its
gap to pass@1, diversity metrics, natural-data perplexity and the warnings, and
the fp32 matmul peak; writes benchmarks/results/collapse.json.
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

ROOT = Path(__file__).resolve().parents[1]
SIZE = [  # sized for ~2 minutes an arm on 2 idle cores
    "iterations=4", "warm_start_steps=400", "task.pool_digits=[1,5]", "task.pool_size=3000",
    "task.eval_digits=[1,6]", "task.eval_per_group=30", "backend.batch_size=256",
    "method.problems_per_iteration=200", "method.max_new_tokens=96", "method.init=last",
    "trainer.steps=60", "trainer.batch_size=32", "eval.max_new_tokens=96", "eval.pass_k=4",
    "gate.policy=warn",
]
REST_EM = ROOT / "recipes" / "rest_em_arithmetic.yaml"
NO_FILTER = ["method.threshold=0", "method.samples_per_problem=1", "method.temperature=1.5"]
ARMS = {
    "collapse": (REST_EM, [*NO_FILTER, "mix.natural_fraction=0", "mix.dedup=none", "mix.accumulate=false"]),
    "mitigated": (REST_EM, [*NO_FILTER, "mix.natural_fraction=0.3", "mix.dedup=problem", "mix.accumulate=true"]),
    "star_collapse": (None, ["method.temperature=0.3", "mix.natural_fraction=0", "mix.dedup=none", "mix.accumulate=false"]),
    "star_mitigated": (None, ["method.temperature=0.3", "mix.natural_fraction=0.3", "mix.dedup=problem",
                              "mix.accumulate=true", "mix.temperature_schedule=[0.5,0.7,0.9]"]),
}
FELL, HELD = 0.10, 0.05
COLUMNS = [  # (header, metric, format)
    ("acc", "eval/acc", "{:.0%}"), ("pass@4", "eval/pass@4", "{:.0%}"), ("gap", "eval/pass@4_gap", "{:.2f}"),
    ("kept", "select/kept", "{:.0f}"), ("nat", "mix/natural_rows", "{:.0f}"),
    ("gen d-3", "collapse/gen/distinct_3", "{:.3f}"), ("gen rep", "collapse/gen/repetition", "{:.3f}"),
    ("gen sBLEU", "collapse/gen/self_bleu", "{:.3f}"), ("gen len", "collapse/gen/mean_length", "{:.0f}"),
    ("eval d-3", "collapse/eval/distinct_3", "{:.3f}"), ("eval H(ans)", "collapse/eval/answer_entropy", "{:.3f}"),
    ("eval emb", "collapse/eval/embedding_diversity", "{:.3f}"), ("nat ppl", "collapse/natural_ppl", "{:.3f}"),
]


def run_arm(name: str, seed: int, overrides: list[str], out: Path) -> dict:
    from selftaught import config, loop

    recipe, arm = ARMS[name]
    args = [*SIZE, *arm, f"seed={seed}", *overrides]
    cfg = config.load(recipe, [*args, f"name={name}-s{seed}", f"out_dir={out}"])
    t0 = time.perf_counter()
    store = loop.run(cfg)
    wall = time.perf_counter() - t0
    metrics = store.metrics()
    return {"arm": name, "seed": seed, "wall_s": round(wall, 1), "overrides": args, "metrics": metrics,
            "alarms": alarm_outcome(metrics), "result": json.loads((store.root / "result.json").read_text())}


def alarm_outcome(metrics: list[dict], metric: str = "eval/acc") -> dict:
    """Did the run collapse (final ``metric`` >= FELL below iteration 0's), did it hold
    (no later iteration more than HELD below it), and where did the detector raise
    a warning of severity high or above: hit, miss, false alarm or quiet."""
    from selftaught.monitor.detector import SEVERITY

    acc = [m[metric] for m in metrics]
    alarms = [m["iteration"] for m in metrics
              if any(SEVERITY[w["severity"]] >= SEVERITY["high"] for w in m.get("collapse/warnings") or [])]
    collapsed = acc[-1] <= acc[0] - FELL
    first_fall = next((m["iteration"] for m in metrics if m[metric] <= acc[0] - FELL), None)
    outcome = ("hit" if alarms else "miss") if collapsed else ("false alarm" if alarms else "quiet")
    return {"start": acc[0], "end": acc[-1], "collapsed": collapsed, "held": min(acc[1:] or acc) >= acc[0] - HELD,
            "first_fall": first_fall, "alarm_iterations": alarms, "outcome": outcome}


def _cell(m: dict, key: str, fmt: str) -> str:
    v = m.get(key)
    return fmt.format(v) if isinstance(v, (int, float)) else ""


def table(runs: list[dict], peak: float):
    from rich.table import Table

    t = Table(title="Collapse vs mitigations on arithmetic (held-out 1-6 digits; gen = the iteration's samples); "
                    f"fp32 matmul peak {peak:.0f} GFLOP/s")
    for col in ["arm", "seed", "it", *[c[0] for c in COLUMNS], "warnings"]:
        t.add_column(col, justify="right")
    for r in runs:
        for m in r["metrics"]:
            warns = ", ".join(f"{w['severity']} {w['rule']}:{w['metric'].split('/', 1)[1]}"
                              for w in m.get("collapse/warnings") or [])
            t.add_row(r["arm"], str(r["seed"]), str(m["iteration"]), *[_cell(m, k, f) for _, k, f in COLUMNS], warns)
    return t


def summary(runs: list[dict]) -> dict:
    """Per arm: how many seeds collapsed / held; over all runs: the detector's outcomes."""
    arms: dict[str, dict] = {}
    for r in runs:
        a = arms.setdefault(r["arm"], {"seeds": 0, "collapsed": 0, "held": 0, "start": [], "end": []})
        a["seeds"] += 1
        a["collapsed"] += r["alarms"]["collapsed"]
        a["held"] += r["alarms"]["held"]
        a["start"].append(round(r["alarms"]["start"], 3))
        a["end"].append(round(r["alarms"]["end"], 3))
    outcomes = [r["alarms"]["outcome"] for r in runs]
    return {"arms": arms, "detector": {o: outcomes.count(o) for o in ("hit", "miss", "false alarm", "quiet")}}


def main() -> None:
    from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder

    ap = argparse.ArgumentParser()
    ap.add_argument("--arms", nargs="*", default=["collapse", "mitigated"], choices=list(ARMS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temp dir)")
    ap.add_argument("--embeddings", action="store_true", help="also measure MiniLM embedding diversity")
    args, extra = ap.parse_known_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-collapse-"))
    os.environ.setdefault("SELFTAUGHT_CACHE", str(out / "cache"))  # one tiny model per seed, shared by the arms
    extra = [*extra, *(["gate.embedding_diversity=true"] if args.embeddings else [])]
    peak = matmul_peak()
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s", flush=True)
    t0 = time.perf_counter()
    runs = [run_arm(arm, seed, extra, out) for seed in args.seeds for arm in args.arms]

    from rich.console import Console

    con = Console(width=250)
    con.print(table(runs, peak))
    for r in runs:
        a = r["alarms"]
        fired = [(m["iteration"], w["message"]) for m in r["metrics"] for w in m.get("collapse/warnings") or []]
        con.print(f"[bold]{r['arm']} seed {r['seed']}[/]: {r['wall_s']:.0f} s; held-out {a['start']:.0%} -> {a['end']:.0%} "
                  f"(collapsed: {a['collapsed']}, held: {a['held']}); detector: {a['outcome']}"
                  + "".join(f"\n  iteration {k}: {msg}" for k, msg in fired), highlight=False)
    summ = summary(runs)
    con.print(f"summary: {json.dumps(summ)}", highlight=False)
    dest = ROOT / "benchmarks" / "results" / "collapse.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps({"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                            "python": sys.version.split()[0]},
                                "matmul_peak_gflops": round(peak, 1), "command": " ".join(sys.argv),
                                "total_wall_s": round(time.perf_counter() - t0, 1), "summary": summ, "runs": runs},
                               indent=1))
    con.print(f"wrote {dest}")


if __name__ == "__main__":
    main()
