"""The issue-5 bar: a loop built to collapse next to the same loop with the
mitigations on, on the built-in arithmetic task, same seeds.

    python benchmarks/collapse.py                    # both arms (~6-8 min on 2 idle cores)
    python benchmarks/collapse.py --arms collapse    # one arm; extra key=value overrides go to every arm

Arms (STaR, continuing from the last checkpoint every iteration, ``method.init=last``):
- ``collapse``: no natural data, no near-duplicate filter, low temperature
  (0.3), replace (train on the latest iteration's rows only).
- ``mitigated``: 30% natural data (the labeled 1-3 digit seed scratchpads),
  per-problem near-duplicate filter, accumulate all iterations' kept rows, and a
  rising temperature schedule.
- ``nofilter`` (opt-in, ``--arms nofilter``): ReST-EM with ``threshold=0``: every
  sample is kept, right or wrong -- Shumailov et al.'s setting, no quality filter.

The collapse arm is one trajectory, not a guarantee: one run (commit bd2d072)
fell 52% -> 5% held-out over 6 iterations; the re-run in results/collapse.json,
with a freshly built tiny model (50% at iteration 0), rose to 91%. Judge it
over several seeds (``seed=N`` passes through to every arm).

The gate runs with ``policy=warn`` so every arm runs all its iterations and we see
where the detector would have fired. Prints per-iteration held-out accuracy,
pass@4 and its gap to pass@1, diversity metrics, natural-data perplexity and the
warnings, and writes benchmarks/results/collapse.json.
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
SIZE = [  # sized for <= 10 minutes for both arms on 2 cores
    "iterations=6", "warm_start_steps=400", "task.pool_digits=[1,5]", "task.pool_size=3000",
    "task.eval_digits=[1,6]", "task.eval_per_group=30", "backend.batch_size=256",
    "method.problems_per_iteration=200", "method.max_new_tokens=96", "method.init=last",
    "trainer.steps=60", "trainer.batch_size=32", "eval.max_new_tokens=96", "eval.pass_k=4",
    "gate.policy=warn",
]
ARMS = {
    "collapse": (None, ["method.temperature=0.3", "mix.natural_fraction=0", "mix.dedup=none", "mix.accumulate=false"]),
    "mitigated": (None, ["method.temperature=0.3", "mix.natural_fraction=0.3", "mix.dedup=problem", "mix.accumulate=true",
                         "mix.temperature_schedule=[0.5,0.7,0.9]"]),
    "nofilter": (ROOT / "recipes" / "rest_em_arithmetic.yaml",
                 ["method.threshold=0", "method.samples_per_problem=2", "method.temperature=0.3",
                  "mix.natural_fraction=0", "mix.dedup=none"]),
}
COLUMNS = [  # (header, metric, format)
    ("acc", "eval/acc", "{:.0%}"), ("pass@4", "eval/pass@4", "{:.0%}"), ("gap", "eval/pass@4_gap", "{:.2f}"),
    ("kept", "select/kept", "{:.0f}"), ("nat", "mix/natural_rows", "{:.0f}"),
    ("gen d-3", "collapse/gen/distinct_3", "{:.3f}"), ("gen rep", "collapse/gen/repetition", "{:.3f}"),
    ("gen sBLEU", "collapse/gen/self_bleu", "{:.3f}"), ("gen len", "collapse/gen/mean_length", "{:.0f}"),
    ("eval d-3", "collapse/eval/distinct_3", "{:.3f}"), ("eval H(ans)", "collapse/eval/answer_entropy", "{:.3f}"),
    ("eval emb", "collapse/eval/embedding_diversity", "{:.3f}"), ("nat ppl", "collapse/natural_ppl", "{:.3f}"),
]


def run_arm(name: str, overrides: list[str], out: Path) -> dict:
    from selftaught import config, loop

    recipe, arm = ARMS[name]
    cfg = config.load(recipe, [*SIZE, *arm, *overrides, f"name={name}", f"out_dir={out}"])
    t0 = time.perf_counter()
    store = loop.run(cfg)
    wall = time.perf_counter() - t0
    metrics = [json.loads(x) for x in (store.root / "metrics.jsonl").read_text().splitlines()]
    return {"wall_s": round(wall, 1), "overrides": [*SIZE, *arm, *overrides], "metrics": metrics,
            "result": json.loads((store.root / "result.json").read_text())}


def _cell(m: dict, key: str, fmt: str) -> str:
    v = m.get(key)
    return fmt.format(v) if isinstance(v, (int, float)) else ""


def table(results: dict):
    from rich.table import Table

    t = Table(title="Collapse vs mitigations, STaR on arithmetic (held-out 1-6 digits; gen = the iteration's samples)")
    for col in ["arm", "it", *[c[0] for c in COLUMNS], "warnings"]:
        t.add_column(col, justify="right")
    for arm, r in results.items():
        for m in r["metrics"]:
            warns = ", ".join(f"{w['rule']}:{w['metric'].split('/', 1)[1]}" for w in m.get("collapse/warnings") or [])
            t.add_row(arm, str(m["iteration"]), *[_cell(m, k, f) for _, k, f in COLUMNS], warns)
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arms", nargs="*", default=["collapse", "mitigated"], choices=list(ARMS))
    ap.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temp dir)")
    ap.add_argument("--embeddings", action="store_true", help="also measure MiniLM embedding diversity")
    args, extra = ap.parse_known_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-collapse-"))
    os.environ.setdefault("SELFTAUGHT_CACHE", str(out / "cache"))  # the same tiny model for every arm
    extra = [*extra, *(["gate.embedding_diversity=true"] if args.embeddings else [])]
    t0 = time.perf_counter()
    results = {arm: run_arm(arm, extra, out) for arm in args.arms}

    from rich.console import Console

    con = Console(width=250)
    con.print(table(results))
    for arm, r in results.items():
        fired = [(m["iteration"], w["message"]) for m in r["metrics"] for w in m.get("collapse/warnings") or []]
        con.print(f"[bold]{arm}[/]: {r['wall_s']:.0f} s; best held-out iteration {r['metrics'][-1]['gate/best_iteration']}; "
                  f"{len(fired)} warnings" + "".join(f"\n  iteration {k}: {msg}" for k, msg in fired), highlight=False)
    dest = ROOT / "benchmarks" / "results" / "collapse.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps({"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                            "python": sys.version.split()[0]},
                                "total_wall_s": round(time.perf_counter() - t0, 1), "arms": results}, indent=1))
    con.print(f"wrote {dest}")


if __name__ == "__main__":
    main()
