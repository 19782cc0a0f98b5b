"""Preference methods and inference-time strategies on a real model on this box:
SmolLM2-135M-Instruct x reasoning-gym basic_arithmetic (1-2 digit +/-, in its
zone of proximal development; recipes/star_smollm2_reasoning_gym.yaml's task).

    flock /tmp/selftaught-heavy.lock python benchmarks/methods_pref.py strategies [n [strategy ...]]
    flock /tmp/selftaught-heavy.lock python benchmarks/methods_pref.py train spin|self_rewarding|cai

``strategies``: held-out accuracy of the untrained model under each eval
strategy at an equal budget of ~3 generations per problem (maj@3; Self-Refine
with 1 feedback->refine round; Reflexion with 2 attempts, whose feedback is the
gold verifier's verdict -- an oracle, so it is success-within-2, not pass@1),
next to greedy pass@1. ``train <method>``: one iteration of the method from the
same model (LoRA), then greedy held-out accuracy. Each part is one job of a few
minutes; results merge into benchmarks/results/methods_pref.json. 95% Wilson
intervals throughout (``evaluate.wilson``).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "star_smollm2_reasoning_gym.yaml"
RESULTS = Path(__file__).parent / "results" / "methods_pref.json"
STRATEGIES = [("greedy", {}), ("maj@3", {"temperature": 0.7}), ("self_refine", {"rounds": 1}),
              ("reflexion", {"rounds": 2})]
TRAIN = {
    "spin": ["method.target=answer", "method.problems_per_iteration=48", "method.temperature=0.7"],
    "self_rewarding": ["method.problems_per_iteration=16", "method.candidates=4",
                       "method.judge_samples=1", "method.judge_max_new_tokens=64"],
    "cai": ["method.sl_iterations=0", "method.problems_per_iteration=48"],
}
COMMON = ["task.eval_size=60", "gate.natural_ppl_examples=0", "eval.max_new_tokens=96"]


def _measure_peak() -> float:
    """This job's fp32 matmul peak, measured before its heavy work and printed."""
    import torch

    peak = round(matmul_peak(), 1)
    print(f"fp32 matmul peak {peak:.1f} GFLOP/s (4096² products, {torch.get_num_threads()} threads)", flush=True)
    return peak


def _merge(key: str, value) -> dict:
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data[key] = value
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=1))
    return data


def strategies_part(n: int, names: list[str]) -> None:
    from selftaught import config, registry, strategies
    from selftaught.evaluate import accuracy_metrics
    from selftaught.iteration import Iteration
    from selftaught.models.loading import checkpoint_hash, resolve

    peak = _measure_peak()  # saved with each row: rows of one table come from separate jobs
    cfg = config.load(RECIPE, [*COMMON, f"task.eval_size={n}"])
    task = registry.build("task", cfg.task)
    model = resolve(cfg.model, task, seed=cfg.seed)
    backend = registry.build("backend", cfg.backend)
    problems = task.eval_set()
    it = Iteration(0, cfg, task, backend, None, model, model, checkpoint_hash(model), "unused", {p.id: p for p in problems})
    for name, extra in STRATEGIES:
        if names and name not in names:
            continue
        ecfg = cfg.eval.model_copy(update={"strategy": name, **extra})
        t0 = time.perf_counter()
        _, final, m = strategies.run(name, it, problems, ecfg)
        acc = accuracy_metrics(final)
        row = {"strategy": name, "acc": acc["eval/acc"], "ci_low": acc["eval/acc_ci_low"],
               "ci_high": acc["eval/acc_ci_high"], "n": acc["eval/acc_n"],
               "generations_per_problem": round(m["eval/generations_per_problem"], 2),
               "seconds": round(time.perf_counter() - t0, 1), "matmul_peak_gflops": peak, "settings": extra}
        print(row, flush=True)
        old = json.loads(RESULTS.read_text()).get("strategies", {}) if RESULTS.is_file() else {}
        rows = [r for r in old.get("rows", []) if r["strategy"] != name] + [row]  # one job per strategy is fine
        _merge("strategies", {"model": cfg.model, "task": cfg.task.type, "kwargs": cfg.task.kwargs, "rows": rows})


def train_part(method: str) -> None:
    import yaml

    from selftaught import config, loop

    peak = _measure_peak()
    tmp = Path(tempfile.mkdtemp(prefix=f"pref-{method}-"))
    tree = yaml.safe_load(RECIPE.read_text())  # the STaR recipe's model, task and backend; our method and trainer
    tree["method"] = {"type": method}
    tree["trainer"] = {"type": "dpo", "lora": tree["trainer"].get("lora")}
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tree))
    overrides = [*COMMON, "iterations=1", "trainer.lr=5e-5", "trainer.batch_size=8", "trainer.steps=12",
                 "trainer.max_length=384", "trainer.beta=0.1", *TRAIN[method], f"out_dir={tmp}", f"name={method}"]
    cfg = config.load(recipe, overrides)
    t0 = time.perf_counter()
    store = loop.run(cfg)
    ms = store.metrics()
    keep = ("eval/acc", "eval/acc_ci_low", "eval/acc_ci_high", "eval/acc_n", "select/pairs", "spin/reward_margin",
            "train/reward_margin", "train/reward_accuracy", "judge/parsed_frac", "judge/gold_pair_agreement",
            "judge/score_mean", "gen/len_chars_mean", "select/len_chars_chosen", "select/len_chars_rejected",
            "cai/label_parsed_frac", "cai/label_consistent_frac", "cai/label_gold_agreement", "cai/label_a_frac",
            "train/skipped", "time/generate_s", "time/train_s", "time/evaluate_s")
    rows = [{"iteration": m["iteration"], **{k: m[k] for k in keep if k in m}} for m in ms]
    for r in rows:
        print(r, flush=True)
    _merge(f"train/{method}", {"overrides": overrides, "seconds": round(time.perf_counter() - t0, 1),
                               "matmul_peak_gflops": peak, "iterations": rows})
    shutil.rmtree(tmp, ignore_errors=True)


def table() -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if "strategies" in data:
        print(f"\nInference-time strategies, {data['strategies']['model']} x {data['strategies']['task']} (untrained)")
        print("| strategy | acc | 95% CI | n | generations/problem | s | fp32 matmul peak GFLOP/s |\n"
              "|---|---|---|---|---|---|---|")
        for r in data["strategies"]["rows"]:
            print(f"| {r['strategy']} | {r['acc']:.3f} | [{r['ci_low']:.2f}, {r['ci_high']:.2f}] | {r['n']} | "
                  f"{r['generations_per_problem']} | {r['seconds']} | {r.get('matmul_peak_gflops', 'n/a')} |")
    for key in sorted(k for k in data if k.startswith("train/")):
        print(f"\n{key}: one iteration ({data[key]['seconds']} s, "
              f"fp32 matmul peak {data[key].get('matmul_peak_gflops', 'n/a')} GFLOP/s)")
        for r in data[key]["iterations"]:
            print("  " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "strategies":
        strategies_part(int(args[1]) if len(args) > 1 else 80, args[2:])
    elif args and args[0] == "train":
        train_part(args[1])
    table()
