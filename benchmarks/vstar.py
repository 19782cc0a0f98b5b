"""Issue 17, item 2: a learned verifier for self-play (V-STaR, arXiv 2402.06457),
next to self-play's re-derivation judge, no filter and gold-filtered ReST-EM,
at the same budget (same pool problems per iteration, same generator SFT).

    flock /tmp/heavy.lock env OMP_NUM_THREADS=2 python benchmarks/vstar.py      # every arm (~12 min on 2 idle cores)
    python benchmarks/vstar.py --arms vstar --iterations 1                      # a subset
    python benchmarks/vstar.py --show                                           # the table of the saved results

Arms (each the user-facing ``selftaught run`` in a subprocess, one shared model cache):

- ``vstar``      ``recipes/vstar_arithmetic.yaml``: a DPO verifier trained on the seed
                 problems' (correct, incorrect) sample pairs, accumulated; per pool problem
                 its top-scored sample, kept if the score is >= 0 (``methods/vstar.py``);
- ``vstar_top1`` the same, every problem's top-scored sample kept (no threshold: top-1 of k);
- ``no_filter``  the same with ``method.filter=none``: every pool sample is trained on
                 (the verifier is still trained, so its precision/recall are reported);
- ``self_play``  ``recipes/self_play_arithmetic.yaml``: the model's re-derivation judge;
- ``rest_em``    ``recipes/rest_em_arithmetic.yaml``: gold-filtered (the ceiling).

After ``vstar``: its last checkpoint samples 4 candidates per held-out problem
(``eval.strategy=best_of_4``, temperature 0.7) and its last verifier picks one
(``vstar.rerank``), next to the first candidate (pass@1 sampled) and any-correct
(pass@4). Prints the fp32 matmul peak first, then per arm and iteration held-out
greedy accuracy with its 95% Wilson interval, the verifier's (or judge's) precision
/ recall against gold on the pool, pool samples kept and their gold-correct share,
samples drawn, wall seconds; writes benchmarks/results/vstar.json.
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
OUT = Path(__file__).parent / "results" / "vstar.json"
EVAL_PER_GROUP = 40
# ~3 min an arm on 2 idle cores: 3 iterations of 200 pool problems, 50 SFT steps; 1-8 digits x 40 held out
COMMON = ["method.problems_per_iteration=200", "trainer.steps=50", "trainer.batch_size=32",
          f"task.eval_per_group={EVAL_PER_GROUP}", "method.max_new_tokens=96", "eval.max_new_tokens=96"]
VSTAR = [str(RECIPES / "vstar_arithmetic.yaml"), "method.seed_problems_per_iteration=64",
         "method.verifier_trainer.steps=40", "mix.dedup=none"]  # as the rest_em recipe: no filter keeps all
ARMS = {
    "vstar": VSTAR,
    "vstar_top1": [*VSTAR, "method.threshold=-1000000.0"],
    "no_filter": [*VSTAR, "method.filter=none"],
    "self_play": [str(RECIPES / "self_play_arithmetic.yaml")],
    "rest_em": [str(RECIPES / "rest_em_arithmetic.yaml")],
}


def run_arm(name: str, args: list[str], out: Path, cache: Path, common: list[str]) -> dict:
    return _cli.arm(name, args, out, cache, common)


def rerank(out: Path, cache: Path, arm: dict, iterations: int, common: list[str]) -> dict:
    """Best-of-4 on the held-out set by the arm's last verifier (scored here, in this process)."""
    os.environ["SELFTAUGHT_CACHE"] = str(cache)
    from selftaught import config, registry
    from selftaught.methods import vstar
    from selftaught.store import read_parquet

    last = out / "vstar" / f"iter_{iterations:03d}"
    args = [*VSTAR, *common, "iterations=0", f"model={last / 'checkpoint'}", "eval.strategy=best_of_4",
            "eval.scorer=verifier", "eval.temperature=0.7"]
    try:
        wall, _, _ = _cli.run("vstar_bon", out, args, {"SELFTAUGHT_CACHE": str(cache)})
    except _cli.ArmFailed as e:
        sys.exit(str(e))
    cfg = config.load(VSTAR[0], [*VSTAR[1:], *common])
    rows = [r for r in read_parquet(out / "vstar_bon" / "iter_000" / "eval.parquet") if r["phase"].startswith("eval_bon")]
    t0 = time.perf_counter()
    base = arm["metrics"][-1]["train/init"]  # the verifier's init and DPO reference: the base model
    res = vstar.rerank(str(last / "verifier"), base, registry.build("task", cfg.task), rows,
                       cfg.method.verifier_trainer.beta)
    return {**res, "wall_s": round(wall + time.perf_counter() - t0, 1), "greedy": arm["metrics"][-1]["eval/acc"]}


def pct(x) -> str:
    return "" if x is None else f"{x:.0%}"


def pr(m: dict) -> str:
    for p, r in (("vstar/precision", "vstar/recall"), ("self_play/judge_precision", "self_play/judge_recall")):
        if p in m:
            return f"{m[p]:.2f} / {m[r]:.2f}"
    return "gold" if m["iteration"] else ""


def kept(m: dict) -> tuple[str, str]:
    if "vstar/kept_pool" in m:
        return str(m["vstar/kept_pool"]), pct(m["vstar/kept_pool_correct_frac"])
    if "self_play/judge_precision" in m:
        return str(m.get("select/kept", "")), pct(m.get("select/kept_correct_frac"))
    return str(m.get("select/kept", "")), ("100%" if m["iteration"] else "")


def table(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from selftaught.evaluate import wilson

    t = Table(title=f"held-out greedy accuracy, 1-8 digits (n = {data['eval_n']}; seed problems 1-3 digits, "
                    f"pool 1-7 unlabeled); fp32 matmul peak {data['matmul_peak_gflops']:.0f} GFLOP/s; seed {data['seed']}")
    for col in ["arm", "it", "acc [95% CI]", "4-8 digits", "verifier/judge P / R", "pool kept", "kept correct",
                "pairs", "samples", "wall s"]:
        t.add_column(col, justify="right")
    for arm, r in data["arms"].items():
        for m in r["metrics"]:
            lo, hi = wilson(m["eval/acc"], m["eval/acc_n"])
            hard = [m[f"eval/acc/{g}"] for g in range(4, 9) if f"eval/acc/{g}" in m]
            t.add_row(arm, str(m["iteration"]), f"{m['eval/acc']:.0%} [{lo:.0%}, {hi:.0%}]",
                      pct(sum(hard) / len(hard)) if hard else "", pr(m), *kept(m), str(m.get("vstar/pairs", "")),
                      str(m.get("gen/samples", "")), f"{sum(v for k, v in m.items() if k.startswith('time/')):.0f}")
    con = Console(width=200)
    con.print(t)
    for arm, r in data["arms"].items():
        con.print(f"{arm}: {r['wall_s']} s wall")
    b = data.get("rerank")
    if b:
        lo, hi = wilson(b["best_of_k"], b["n"])
        con.print(f"vstar last checkpoint, {b['k']} samples per held-out problem (T=0.7): best-of-{b['k']} by its "
                  f"verifier {b['best_of_k']:.1%} [{lo:.1%}, {hi:.1%}]; first sample {b['first']:.1%}; "
                  f"pass@{b['k']} (oracle) {b['pass_at_k']:.1%}; greedy {b['greedy']:.1%}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temp dir)")
    ap.add_argument("--cache", type=Path, default=None, help="model cache (default: ~/.cache/selftaught's)")
    ap.add_argument("--show", action="store_true", help="print the table of the saved results")
    args = ap.parse_args()
    if args.show:
        return table(json.loads(OUT.read_text()))
    peak = matmul_peak()
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s (4096^2, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})",
          flush=True)
    common = [*COMMON, f"iterations={args.iterations}", f"seed={args.seed}"]
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-vstar-"))
    cache = args.cache or Path(os.environ.get("SELFTAUGHT_CACHE", Path.home() / ".cache" / "selftaught"))
    t0 = time.perf_counter()
    arms = {a: run_arm(a, ARMS[a], out, cache, common) for a in args.arms}
    data = {"meta": _cli.meta(common, out=str(out)), "matmul_peak_gflops": round(peak, 1), "seed": args.seed, "arms": arms,
            "eval_n": next(iter(arms.values()))["metrics"][0]["eval/acc_n"]}
    if "vstar" in arms:
        data["rerank"] = rerank(out, cache, arms["vstar"], args.iterations, common)
    _cli.save(OUT, data, t0, table)


if __name__ == "__main__":
    main()
