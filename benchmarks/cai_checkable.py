"""Issue 17, item 5: Constitutional AI with a constitution a program can check, on
SmolLM2-135M-Instruct (LoRA) x reasoning-gym 1-2 digit sums.

    flock /tmp/heavy.lock env OMP_NUM_THREADS=2 python benchmarks/cai_checkable.py            # seed 0 (~8 min on 2 cores)
    python benchmarks/cai_checkable.py --seeds 0 1 method.problems_per_iteration=32   # extra key=value overrides
    python benchmarks/cai_checkable.py --show                                          # the table of the saved results

The recipe (recipes/cai_checkable_smollm2.yaml) runs iteration 1 as SL-CAI
(draft -> critique -> revise, SFT on the revisions) and iterations 2-3 as RL-CAI
(AI preference labels, DPO) with templates/constitution_checkable.txt: the
'Answer: <answer>' last line (``format``), at most 20 words (``short``), no
I/we/you words (``impersonal``). Every principle carries a program check, so
this script reports, per iteration:

- the held-out responses' satisfaction of each principle and of all of them
  (greedy, the loop's eval set; iteration 0 is the untrained model): *before* ->
  *after the SL stage* -> *after each RL iteration*;
- SL: the iteration's drafts vs their revisions (``cai/satisfied/draft`` ->
  ``cai/satisfied/revision``), what the SFT trains on;
- RL: the AI labels' agreement with the program's preference under the principle
  the pair was asked about (pairs where exactly one response passes its check):
  for the kept, order-consistent labels and for the first-order answers before
  the swap check; pairs kept; the chosen vs rejected responses' satisfaction;
- held-out accuracy. 95% Wilson intervals throughout (``evaluate.wilson``).

The run is the user-facing ``selftaught run`` in a subprocess (``_cli.py``); the
held-out satisfaction is recomputed from each iteration's eval.parquet. Prints
the box's fp32 matmul peak and writes benchmarks/results/cai_checkable.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import _cli  # benchmarks/_cli.py: scripts run from this folder

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "cai_checkable_smollm2.yaml"
RESULTS = Path(__file__).parent / "results"


def held_out_satisfaction(run_dir: Path, principles: list[dict]) -> list[dict]:
    """Per iteration: each checkable principle's satisfaction on the greedy held-out
    responses, with counts and Wilson intervals (``held/<name>``, ``held/all``)."""
    from selftaught.evaluate import wilson
    from selftaught.methods._constitution import satisfaction
    from selftaught.store import RunStore

    store = RunStore(run_dir)
    out = []
    for k in store.iterations():
        texts = [r["completion"] for r in store.rows(k, "eval") if r["phase"] == "eval"]
        s = satisfaction(texts, principles, "held")
        n = s.pop("held_n")
        out.append({"iteration": k, "n": n, **{key: _share(v, n, wilson) for key, v in s.items()}})
    return out


def _share(p: float, n: int, wilson) -> dict:
    return {"p": round(p, 4), "k": round(p * n), "n": n, "ci": [round(x, 4) for x in wilson(p, n)]}


def label_cells(metrics: list[dict]) -> list[dict]:
    """The RL iterations' label-vs-program agreement as shares with intervals."""
    from selftaught.evaluate import wilson

    out = []
    for m in metrics:
        if not m.get("cai/stage_rl"):
            continue
        cell = {"iteration": m["iteration"]}
        for key, n_key in (("cai/label_program_agreement", "cai/label_program_n"),
                           ("cai/label_program_agreement_first_order", "cai/label_program_first_order_n")):
            n = m.get(n_key, 0)
            cell[key] = _share(m[key], n, wilson) if n else None
        out.append(cell)
    return out


def run_seed(seed: int, extra: list[str], out: Path, cache: Path) -> dict:
    from selftaught import config
    from selftaught.methods._constitution import load_principles

    name = f"cai-checkable-s{seed}"
    try:
        wall, cmd, metrics = _cli.run(name, out, [str(RECIPE), f"seed={seed}", *extra], {"SELFTAUGHT_CACHE": str(cache)})
    except _cli.ArmFailed as e:
        sys.exit(str(e))
    principles = load_principles(config.load(out / name / "config.yaml").method.principles)
    held = held_out_satisfaction(out / name, principles)
    print(f"{name}: {wall:.0f} s; held-out all-satisfied " + " -> ".join(f"{h['held/all']['p']:.0%}" for h in held)
          + "; acc " + " -> ".join(f"{m['eval/acc']:.0%}" for m in metrics), flush=True)
    return {"seed": seed, "wall_s": wall, "command": " ".join(cmd[2:]), "principles": [p["name"] for p in principles
            if "check" in p], "held_out": held, "labels": label_cells(metrics), "metrics": metrics}


def _ci(c: dict | None) -> str:
    return "" if not c else f"{c['p']:.0%} [{c['ci'][0]:.0%}, {c['ci'][1]:.0%}] ({c['k']}/{c['n']})"


def _pct(v) -> str:
    return "" if v is None else f"{v:.0%}"


def table(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=240)
    for r in data["runs"]:
        names = [*r["principles"], "all"]
        t = Table(title=f"CAI, checkable constitution, SmolLM2-135M-Instruct (LoRA), seed {r['seed']}: held-out "
                        f"responses (greedy); fp32 matmul peak {data['matmul_peak_gflops']:.0f} GFLOP/s")
        for col in ["it", "stage", *[f"held-out {n} [95% CI]" for n in names], "held-out acc [95% CI]"]:
            t.add_column(col, justify="right")
        for h, m in zip(r["held_out"], r["metrics"]):
            stage = "start" if h["iteration"] == 0 else ("after SL" if m.get("cai/stage_sl") else "after RL")
            acc = {"p": m["eval/acc"], "ci": [m["eval/acc_ci_low"], m["eval/acc_ci_high"]],
                   "k": round(m["eval/acc"] * m["eval/acc_n"]), "n": m["eval/acc_n"]}
            t.add_row(str(h["iteration"]), stage, *[_ci(h[f"held/{n}"]) for n in names], _ci(acc))
        con.print(t)
        t = Table(title=f"seed {r['seed']}: the iteration's own samples and labels")
        for col in ["it", "stage", *[f"{n}: draft -> revision | sample" for n in names], "label = program (kept)",
                    "label = program (first order)", "labels consistent", "pairs", "chosen/rejected all",
                    "label = gold", "s"]:
            t.add_column(col, justify="right")
        labels = {c["iteration"]: c for c in r["labels"]}
        for m in r["metrics"][1:]:
            sl = bool(m.get("cai/stage_sl"))
            cells = [f"{_pct(m.get(f'cai/satisfied/draft/{n}'))} -> {_pct(m.get(f'cai/satisfied/revision/{n}'))}" if sl
                     else _pct(m.get(f"cai/satisfied/sample/{n}")) for n in names]
            lab = labels.get(m["iteration"], {})
            t.add_row(str(m["iteration"]), "SL" if sl else "RL", *cells,
                      _ci(lab.get("cai/label_program_agreement")), _ci(lab.get("cai/label_program_agreement_first_order")),
                      _pct(m.get("cai/label_consistent_frac")), str(m.get("select/pairs", m.get("select/train_rows", ""))),
                      "" if sl else f"{_pct(m.get('cai/satisfied/chosen/all'))} / {_pct(m.get('cai/satisfied/rejected/all'))}",
                      _pct(m.get("cai/label_gold_agreement")),
                      f"{sum(v for k, v in m.items() if k.startswith('time/')):.0f}")
        con.print(t)
    con.print("label = program: pairs where exactly one response passes the check of the principle the model was "
              "asked about; kept = order-consistent labels (the DPO pairs), first order = the answer before the swap "
              "check. pairs: SL rows trained on (revisions), RL preference pairs.", highlight=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    _cli.results_args(ap, "cai_checkable", "SELFTAUGHT_CACHE or the user's")
    args, extra = ap.parse_known_args()
    dest = RESULTS / f"{args.name}.json"
    if args.show:
        return table(json.loads(dest.read_text()))
    from selftaught.models.loading import cache_dir

    peak = _cli.print_peak()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-cai-checkable-"))
    t0 = time.perf_counter()
    data = {"meta": _cli.meta(extra, recipe=RECIPE.name), "matmul_peak_gflops": round(peak, 1),
            "runs": [run_seed(s, extra, out, args.cache or cache_dir()) for s in args.seeds]}
    dest.parent.mkdir(parents=True, exist_ok=True)
    _cli.save(dest, data, t0, table)


if __name__ == "__main__":
    main()
