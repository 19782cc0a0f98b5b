"""STaR on a real pretrained model, on this box: SmolLM2-135M-Instruct on
reasoning-gym basic_arithmetic (1-2 digit sums, inside its zone of proximal
development), held-out accuracy with a 95% Wilson interval per iteration and
the wall time of every stage.

    python benchmarks/star_smollm2.py [--results FILE.json] [key=value ...]

Runs ``recipes/star_smollm2_reasoning_gym.yaml`` with the overrides below (sized
to ~15 minutes on 2 CPU cores) in a fresh directory, prints the table and writes
benchmarks/results/star_smollm2.json. Extra ``key=value`` arguments override
the recipe further.
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
RESULTS = Path(__file__).parent / "results" / "star_smollm2.json"
OVERRIDES = ["iterations=2", "method.problems_per_iteration=96", "task.eval_size=150", "trainer.steps=20",
             "gate.natural_ppl_examples=0"]
STAGES = ("generate", "verify", "select", "train", "evaluate")


def main(extra: list[str], results: Path = RESULTS) -> None:
    import torch

    from selftaught import config, loop

    peak, threads = round(matmul_peak(), 1), torch.get_num_threads()  # before the run
    out = Path(tempfile.mkdtemp(prefix="star-smollm2-"))
    cfg = config.load(RECIPE, [*OVERRIDES, *extra, f"out_dir={out}", "name=bench"])
    t0 = time.perf_counter()
    store = loop.run(cfg)
    total = time.perf_counter() - t0
    rows = []
    for m in store.metrics():
        rows.append({"iteration": m["iteration"], "acc": m.get("eval/acc"), "ci_low": m.get("eval/acc_ci_low"),
                     "ci_high": m.get("eval/acc_ci_high"), "n": m.get("eval/acc_n"),
                     "kept": m.get("select/kept"), "kept_rationalized": m.get("select/kept_rationalized"),
                     "sample_correct_frac": m.get("verify/correct_frac"), "train_loss": m.get("train/loss"),
                     **{f"{s}_s": m.get(f"time/{s}_s") for s in STAGES}})
    result = {"recipe": str(RECIPE.relative_to(ROOT)), "overrides": [*OVERRIDES, *extra], "total_s": round(total, 1),
              "matmul_peak_gflops": peak, "iterations": rows}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=1) + "\n")
    print(f"STaR, SmolLM2-135M-Instruct x basic_arithmetic; {total / 60:.1f} min total; "
          f"fp32 matmul peak {peak:.1f} GFLOP/s (4096² products, {threads} threads)")
    print("| iter | held-out acc | 95% CI | kept (rationalized) | sample acc | " + " | ".join(f"{s} s" for s in STAGES) + " |")
    print("|---|---|---|---|---|" + "---|" * len(STAGES))
    for r in rows:
        kept = "" if r["kept"] is None else f"{r['kept']} ({r['kept_rationalized']})"
        samp = "" if r["sample_correct_frac"] is None else f"{r['sample_correct_frac']:.2f}"
        times = " | ".join("" if r[f"{s}_s"] is None else f"{r[f'{s}_s']:.0f}" for s in STAGES)
        print(f"| {r['iteration']} | {r['acc']:.3f} (n={r['n']}) | [{r['ci_low']:.2f}, {r['ci_high']:.2f}] | "
              f"{kept} | {samp} | {times} |")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--results"]:
        main(args[2:], Path(args[1]))
    else:
        main(args)
