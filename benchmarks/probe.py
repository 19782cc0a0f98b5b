"""Probe table: base greedy accuracy of the built-in pretrained models on real
tasks, with 95% Wilson intervals and the zone of proximal development (25-75%).

    flock /tmp/selftaught-heavy.lock python benchmarks/probe.py                       # everything
    flock /tmp/selftaught-heavy.lock python benchmarks/probe.py --models builtin:gemma3-270m --tasks gsm8k,math
    python benchmarks/probe.py --table                                                # print saved results

Results merge into benchmarks/results/probe.json (one entry per model x task),
so the table can be filled in several runs that each fit a time budget.
Gemma-3-270M is the *base* model: it is prompted without a chat template.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder

RESULTS = Path(__file__).parent / "results" / "probe.json"
MODELS = ["builtin:smollm2-135m-instruct", "builtin:gemma3-270m"]
SIMPLE = ["allow_negation=false", "allow_parentheses=false"]
TASKS = {  # label -> (task type, overrides)
    "arith +- 1-2d": ("reasoning_gym:basic_arithmetic", ["kwargs.min_terms=2", "kwargs.max_terms=2", "kwargs.min_digits=1",
                      "kwargs.max_digits=2", "kwargs.operators=[+,-]", *(f"kwargs.{s}" for s in SIMPLE)]),
    "arith + 1-2d": ("reasoning_gym:basic_arithmetic", ["kwargs.min_terms=2", "kwargs.max_terms=2", "kwargs.min_digits=1",
                     "kwargs.max_digits=2", "kwargs.operators=[+]", *(f"kwargs.{s}" for s in SIMPLE)]),  # the STaR recipe's
    "products 1d": ("reasoning_gym:products", ["kwargs.min_digits=1", "kwargs.max_digits=1"]),
    "leg_counting 1-2": ("reasoning_gym:leg_counting", ["kwargs.min_animals=1", "kwargs.max_animals=2",
                         "kwargs.max_instances=3"]),
    "gsm8k": ("gsm8k", []),
    "math L1": ("math", ["levels=[1]"]),
    "arc_easy": ("mcq", ["dataset=arc_easy"]),
    "csqa": ("mcq", ["dataset=csqa"]),
}
BASE_MODELS = {"builtin:gemma3-270m"}  # no chat template: these are not instruct models


def run(models: list[str], labels: list[str], n: int, max_new_tokens: int) -> None:
    import torch

    from selftaught.probe import probe

    peak = round(matmul_peak(), 1)  # before the probes; saved with each entry (entries merge across runs)
    print(f"fp32 matmul peak {peak:.1f} GFLOP/s (4096² products, {torch.get_num_threads()} threads)", flush=True)
    saved = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for model in models:
        for label in labels:
            task, overrides = TASKS[label]
            extra = ["backend.chat_template=false"] if model in BASE_MODELS else []
            r = probe(model, task, n=n, overrides=[*overrides, *extra], max_new_tokens=max_new_tokens)
            r["label"], r["matmul_peak_gflops"] = label, peak
            saved[f"{model} | {label}"] = r
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(saved, indent=1))  # after every pair: a cut-short run keeps what it measured
            print(f"{model} {label}: {r['acc']:.3f} [{r['ci_low']:.2f},{r['ci_high']:.2f}] {r['zone']} "
                  f"({r['s_per_item']} s/item)", file=sys.stderr, flush=True)


def table() -> str:
    saved = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    lines = ["| model | task | n | acc | 95% CI | answered | zone | s/item | fp32 matmul peak GFLOP/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in saved.values():
        zone = r["zone"] + ("" if r["zone_certain"] else "?")
        lines.append(f"| {r['model'].removeprefix('builtin:')} | {r['label']} | {r['n']} | {r['acc']:.2f} | "
                     f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}] | {r['answered_frac']:.2f} | {zone} | {r['s_per_item']} | "
                     f"{r.get('matmul_peak_gflops', 'n/a')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--table", action="store_true", help="only print the saved table")
    args = ap.parse_args()
    if not args.table:
        run(args.models.split(","), args.tasks.split(","), args.n, args.max_new_tokens)
    print(table())


if __name__ == "__main__":
    main()
