"""SFT speed, padded batches (``trainer.packing=false``, the code before packing)
vs packed batches (the default, ``trainers/_packing.py``: one flat row of exactly
the batch's tokens, attention per example; on the tiny model also the earlier
4D-mask packing, the trainer's fallback), side by side in one run:
the same rows, steps, seed and batches, the arms alternating (old, new, old,
new, ...) so both see the same machine state. Prints the box's fp32 matmul peak
beside every figure, since boxes of this kind differ by 4x from day to day.

    python benchmarks/sft_speed.py                        # tiny model, then SmolLM2-135M LoRA
    python benchmarks/sft_speed.py --smollm2-steps 0      # tiny model only
    python benchmarks/sft_speed.py --rows runs/star-arithmetic/iter_003/train.parquet
    OMP_NUM_THREADS=1 python benchmarks/sft_speed.py --smollm2-steps 0 --profile-steps 5
    python benchmarks/sft_speed.py --smollm2-steps 0 --base 42f1f54   # + the old code itself

``--base REV`` adds an arm to the tiny model's rotation: the trainer of git revision
REV (a worktree under /tmp, run in a subprocess), on the same rows, steps, batch and
seed. 42f1f54 is the tree issue 16 was filed against: TRL's padded batches with its
per-token position collator, the "old code" of its bar, where ``padded`` is today's
trainer with packing off.

``--profile-steps N`` then runs each tiny arm once more with N steps under
``torch.profiler`` and reports the matrix products' seconds per step (``aten::mm``,
``addmm``, ``bmm``) and, from the timed padded steps of the same run, the ceiling:
the speed-up if everything but the packed step's products cost nothing. Packing
computes the same products on fewer tokens; only fused kernels could cut the rest.

Rows: the demo's iteration-3 training set, rebuilt the way the demo builds it
(``--rows`` reads a real ``train.parquet`` instead): STaR draws 2,000 problems
of 1-7 digits from the pool and, by iteration 3, keeps nearly all of them (the
correct scratchpad, trained without the hint); the mix then makes 30% of the
set natural seed rows (1-3 digits). Useful tokens are the rows' own tokens,
padding never counted. Both arms report the same useful tokens, so the speed-up
is the ratio of train seconds; set-up (model load, TRL's dataset preparation)
is printed apart. Writes benchmarks/results/sft_speed.json (``--dest``: elsewhere).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

from selftaught.models.loading import resolve
from selftaught.tasks.arithmetic import Arithmetic, Config as TaskConfig, scratchpad
from selftaught.trainers import _packing
from selftaught.trainers.sft import SFT, Config, Lora

import _base  # benchmarks/_base.py: scripts run from this folder
from _peak import matmul_peak  # benchmarks/_peak.py

RESULTS = Path(__file__).parent / "results" / "sft_speed.json"
TINY = dict(lr=2e-3, batch_size=64)  # the tiny model's trainer settings in every arm
PROBLEMS, NATURAL_FRAC = 2000, 0.3  # recipes/star_arithmetic.yaml; MixConfig.natural_fraction


def demo_rows(task, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    own = [{"prompt": task.prompt(p), "completion": scratchpad(p.meta["a"], p.meta["b"])}
           for p in rng.sample(task.train_pool(), PROBLEMS)]
    seeds = rng.sample(task.seed_set(), round(PROBLEMS * NATURAL_FRAC / (1 - NATURAL_FRAC)))
    rows = own + [{"prompt": task.prompt(p), "completion": p.rationale} for p in seeds]
    rng.shuffle(rows)
    return rows


def padding_frac(lengths: list[int], batch: int, n: int = 200, seed: int = 0) -> float:
    """Mean share of padding in a batch padded to its longest row (random batches)."""
    rng = random.Random(seed)
    fr = []
    for _ in range(n):
        b = rng.sample(lengths, batch)
        fr.append(1 - sum(b) / (batch * max(b)))
    return statistics.mean(fr)


ARMS = {"padded": False, "packed": True, "packed, 4D mask": True}  # arm -> trainer.packing


def arm(model: str, rows: list[dict], cfg: Config, steps: int, tracker, label: str) -> dict:
    """One SFT call. "packed, 4D mask" is the packed layout of the last version (rows of
    a few examples, a block-diagonal mask), which the trainer keeps as its fallback for
    models outside transformers' attention interface; forced here by hiding the flat path."""
    hide_flat = mock.patch.object(_packing, "supports_flat", lambda m: False)
    with hide_flat if label == "packed, 4D mask" else contextlib.nullcontext(), \
            tempfile.TemporaryDirectory(prefix="sft-speed-") as out:
        t0 = time.perf_counter()
        m = SFT(cfg).train(model, rows, str(Path(out) / "ckpt"), steps=steps, seed=0, position_tracker=tracker,
                           desc=f"{label} {steps} steps")
        wall = time.perf_counter() - t0
    return {"train_s": m["train/seconds"], "wall_s": round(wall, 1), "useful_tok_s": m["train/tokens_per_s"],
            "final_loss": round(m["train/final_loss"], 4)}


PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm")


def products_per_step(model: str, rows: list[dict], cfg: Config, steps: int, tracker) -> dict:
    """One SFT call with ``steps`` steps under torch.profiler after 3 warm-up steps: the
    products' self CPU seconds per step and their share of the profiled time."""
    import transformers

    from selftaught.trainers import sft

    state = {}

    class Profile(transformers.TrainerCallback):
        def on_step_begin(self, args, st, control, **kw):
            if st.global_step == 3:
                state["prof"] = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                state["prof"].__enter__()

        def on_step_end(self, args, st, control, **kw):
            if st.global_step == 3 + steps:
                state["prof"].__exit__(None, None, None)

    with mock.patch.object(sft, "_progress_callback", lambda desc: Profile()), \
            tempfile.TemporaryDirectory(prefix="sft-prof-") as out:
        SFT(cfg).train(model, rows, str(Path(out) / "ckpt"), steps=3 + steps, seed=0, position_tracker=tracker)
    times = {e.key: e.self_cpu_time_total / 1e6 for e in state["prof"].key_averages()}
    prod = sum(times.get(k, 0.0) for k in PRODUCTS)
    return {"profiled_steps": steps, "products_s_per_step": round(prod / steps, 4),
            "products_share_of_profiled": round(prod / max(sum(times.values()), 1e-9), 3)}


def compare(name: str, model: str, rows: list[dict], cfg: dict, steps: int, reps: int, tracker, arms,
            base: str | None = None) -> dict:
    """Old (padded) and new (packed) arms, alternating, ``reps`` times each; with ``base``
    also the trainer of that git revision (``base_arm``) in the same rotation."""
    runs = {a: [] for a in [*arms, *([f"at {base}"] if base else [])]}
    for _ in range(reps):
        for label in arms:
            runs[label].append(arm(model, rows, Config(**cfg, packing=ARMS[label]), steps, tracker, label))
        if base:
            runs[f"at {base}"].append(base_arm(base, model, rows, cfg, steps))
    out = {"model": model, "steps": steps, "batch_size": cfg["batch_size"], "rows": len(rows), "reps": runs}
    for label, rs in runs.items():
        out[label] = {"train_s": round(statistics.median(r["train_s"] for r in rs), 2),
                      "useful_tok_s": statistics.median(r["useful_tok_s"] for r in rs),
                      "setup_s": round(statistics.median(r["wall_s"] - r["train_s"] for r in rs), 1)}
    out["speedup"] = round(out["padded"]["train_s"] / out["packed"]["train_s"], 2)
    if "packed, 4D mask" in runs:
        out["speedup_4d_mask"] = round(out["padded"]["train_s"] / out["packed, 4D mask"]["train_s"], 2)
    if base:
        out["base"] = base
        out["speedup_vs_base"] = round(out[f"at {base}"]["train_s"] / out["packed"]["train_s"], 2)
        print(f"  {name}: {out['speedup_vs_base']}x the trainer at {base}", flush=True)
    print(f"  {name}: {out['speedup']}x", flush=True)
    return out


def base_arm(rev: str, model: str, rows: list[dict], cfg: dict, steps: int) -> dict:
    """One SFT call of the tiny model through the trainer of git revision ``rev`` (the
    issue's "old code": 42f1f54 is the tree issue 16 was filed against, its padded TRL
    batches and per-token position collator), in a worktree under /tmp imported by a
    subprocess running ``_sft_base.py``: same rows, steps, batch and seed."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:  # rows: too long for argv
        json.dump({"model": model, "rows": rows, "cfg": cfg, "steps": steps}, f)
    try:
        return _base.run_json([sys.executable, str(Path(__file__).with_name("_sft_base.py")), f.name],
                              _base.worktree(rev, "sft-base"), rev)
    finally:
        os.unlink(f.name)


def collator_ms(tok_dir: str, rows: list[dict], tracker, batch: int = 64, n: int = 20) -> dict:
    """Position ids of one batch: walking every token through the task's tracker on
    every step (the collator before packing) vs the per-example cache."""
    from transformers import AutoTokenizer

    from selftaught.trainers._packing import PositionTable

    tok, rng = AutoTokenizer.from_pretrained(tok_dir), random.Random(0)
    batches = [[tok(r["prompt"] + r["completion"])["input_ids"] for r in rng.sample(rows, batch)] for _ in range(n)]
    t0 = time.perf_counter()
    for b in batches:
        for ids in b:
            walker = tracker()
            [walker.feed(t) for t in tok.convert_ids_to_tokens(ids)]
    walk = (time.perf_counter() - t0) / n
    table = PositionTable(tok, tracker)
    for b in batches:  # first epoch: fills the cache
        [table(ids) for ids in b]
    t0 = time.perf_counter()
    for b in batches:
        [table(ids) for ids in b]
    return {"walk_ms": round(walk * 1e3, 2), "cached_ms": round((time.perf_counter() - t0) / n * 1e3, 2)}


def lengths_of(model: str, rows: list[dict], chat: bool) -> list[int]:
    from transformers import AutoTokenizer

    from selftaught.models.chat import render_prompt

    tok = AutoTokenizer.from_pretrained(model)
    return [len(tok(render_prompt(tok, r["prompt"], None if chat else False) + r["completion"])["input_ids"]) + 1
            for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps per tiny arm")
    ap.add_argument("--reps", type=int, default=2, help="alternating runs of each arm (median reported)")
    ap.add_argument("--smollm2-steps", type=int, default=5, help="steps per SmolLM2 LoRA arm (0: skip)")
    ap.add_argument("--profile-steps", type=int, default=0,
                    help="then profile this many steps of each tiny arm: the products' share, and the ceiling")
    ap.add_argument("--dest", type=Path, default=RESULTS, help="where the JSON goes")
    ap.add_argument("--rows", type=Path, help="a train.parquet to train on instead of the rebuilt demo rows")
    ap.add_argument("--base", metavar="REV", help="also train the tiny model with the trainer of git revision REV "
                    "(42f1f54: the code issue 16 was filed against), alternating with the other arms")
    args = ap.parse_args()
    peak, load = matmul_peak(), os.getloadavg()[0]
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s (4096^2, {torch.get_num_threads()} threads); load {load:.1f}", flush=True)
    task = Arithmetic(TaskConfig())
    if args.rows:
        import pyarrow.parquet as pq

        rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in pq.read_table(args.rows).to_pylist()]
    else:
        rows = demo_rows(task)
    tiny = resolve("builtin:tiny", task, seed=0, warm_start_steps=500)
    n_tok = lengths_of(tiny, rows, chat=False)
    data = {"rows": len(rows), "mean_tokens": round(statistics.mean(n_tok), 1), "max_tokens": max(n_tok),
            "padding_frac_batch64": round(padding_frac(n_tok, 64), 3), "source": str(args.rows or "rebuilt demo rows")}
    data["positions_per_batch64"] = collator_ms(tiny, rows, task.position_tracker)
    print(f"rows: {data}", flush=True)
    results = {"tiny": compare("tiny", tiny, rows, TINY, args.steps, args.reps,
                               task.position_tracker, list(ARMS), base=args.base)}
    if args.profile_steps:
        tiny_r = results["tiny"]
        prof = {a: products_per_step(tiny, rows, Config(**TINY, packing=ARMS[a]), args.profile_steps,
                                     task.position_tracker) for a in ("padded", "packed")}
        padded_step = tiny_r["padded"]["train_s"] / args.steps  # the timed (unprofiled) arm of this run
        prof["ceiling_products_only"] = round(padded_step / prof["packed"]["products_s_per_step"], 2)
        tiny_r["products"] = prof
        print(f"  tiny products: {prof}", flush=True)
    if args.smollm2_steps:
        smol = resolve("builtin:smollm2-135m-instruct")
        lora = dict(lr=3e-4, batch_size=8, lora=Lora(r=16, alpha=32))  # recipes/star_smollm2_*.yaml
        results["smollm2_lora"] = compare("smollm2 LoRA", smol, rows, lora, args.smollm2_steps, args.reps, None,
                                          ["padded", "packed"])
        results["smollm2_lora"]["padding_frac_batch8"] = round(padding_frac(lengths_of(smol, rows, chat=True), 8), 3)
    peaks = {"start": round(peak, 1), "end": round(matmul_peak(), 1)}
    loads = {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)}
    table(results, peaks)
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    args.dest.write_text(json.dumps({"machine": machine(), "matmul_peak_gflops": peaks, "load_avg_1min": loads,
                                   "command": command(), "data": data, "results": results},
                                  indent=1) + "\n")


def command() -> str:
    threads = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""
    return f"{threads}python benchmarks/sft_speed.py {' '.join(sys.argv[1:])}".strip()


def machine() -> str:
    info = Path("/proc/cpuinfo")
    names = [x.split(":", 1)[1].strip() for x in info.read_text().splitlines() if x.startswith("model name")] \
        if info.is_file() else []
    return f"{names[0] if names else platform.machine()}, {os.cpu_count()} cpus, torch threads {torch.get_num_threads()}"


def table(results: dict, peaks: dict) -> None:
    print(f"\nfp32 matmul peak (GFLOP/s, 4096^2): {peaks['start']:.0f} at the start, {peaks['end']:.0f} at the end")
    print("| model | steps x batch | padded useful tok/s | packed useful tok/s | speed-up | 4D-mask packing | "
          "set-up s padded/packed |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        mask4d = f"{r['speedup_4d_mask']}x" if "speedup_4d_mask" in r else "-"
        print(f"| {name} | {r['steps']} x {r['batch_size']} | {r['padded']['useful_tok_s']:,.0f} | "
              f"{r['packed']['useful_tok_s']:,.0f} | {r['speedup']}x | {mask4d} | "
              f"{r['padded']['setup_s']}/{r['packed']['setup_s']} |")
    for name, r in results.items():
        if "base" in r:
            b = r[f"at {r['base']}"]
            print(f"\n{name}: the trainer at {r['base']} (old code) {b['useful_tok_s']:,.0f} useful tok/s, "
                  f"{b['train_s']} s; packed {r['packed']['train_s']} s: {r['speedup_vs_base']}x")
    prof = results.get("tiny", {}).get("products")
    if prof:
        print(f"\ntiny, {prof['packed']['profiled_steps']} profiled steps: products {prof['padded']['products_s_per_step']} s "
              f"a padded step, {prof['packed']['products_s_per_step']} s a packed one "
              f"({prof['packed']['products_share_of_profiled']:.0%} of its profiled time); with the rest free the "
              f"speed-up could reach {prof['ceiling_products_only']}x")


if __name__ == "__main__":
    main()
