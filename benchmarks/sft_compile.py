"""Would fused kernels close issue 16's SFT gap? The packed step of the tiny model,
eager vs ``torch.compile`` (Inductor's C++ kernels on the CPU) vs SDPA's math
backend, side by side in one run, each in its own subprocess (a compile cache or a
backend setting never leaks into the next arm).

    OMP_NUM_THREADS=1 python benchmarks/sft_compile.py            # ~3 min on 2 cores
    OMP_NUM_THREADS=1 python benchmarks/sft_compile.py --steps 40 --reps 3

Why this exists: after packing, the tiny model's packed step spends ~60% of its
time in the matrix products, which already run near the box's fp32 peak, and the
rest in attention and elementwise ops (RMSNorm, rotary, SiLU, the optimizer);
``benchmarks/sft_speed.py --profile-steps`` measures the split. Only fused kernels
could cut the rest, so this measures the two ways PyTorch offers on a CPU:

- ``compiled, regional``: every decoder layer ``torch.compile(dynamic=True)``, the
  packed attention left eager (``torch.compiler.disable``: its per-batch length
  groups would otherwise recompile the graph for every batch);
- ``compiled, model``: the whole decoder stack compiled the same way;
- ``SDPA math``: attention through SDPA's math backend (materialized scores, bmm)
  instead of the CPU flash kernel, whose small-head-dim path is the next largest cost.

The loop is a plain PyTorch step (forward, backward, clip, AdamW), not TRL's
trainer, so only the model's kernels differ between arms; the same 64-example
batches of the demo's rows (``sft_speed.demo_rows``) in the same order, packed by
the trainer's own ``FlatCollator``. Compile time is printed apart (warm-up steps).
Writes benchmarks/results/sft_compile.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "sft_compile.json"
ARMS = ("eager", "compiled, regional", "compiled, model", "SDPA math")
WARMUP = 5


def one_arm(name: str, steps: int, model_dir: str) -> dict:
    """Runs in a subprocess: WARMUP + steps packed steps of ``name``; seconds per step."""
    import torch
    from transformers import AttentionInterface, AutoModelForCausalLM, AutoTokenizer

    from sft_speed import demo_rows  # benchmarks/: the demo's iteration-3 rows, rebuilt
    from selftaught.tasks.arithmetic import Arithmetic, Config as TaskConfig
    from selftaught.trainers import _packing as pk

    task = Arithmetic(TaskConfig())
    tok = AutoTokenizer.from_pretrained(model_dir)
    examples = []
    for r in demo_rows(task):
        prompt = tok(r["prompt"])["input_ids"]
        ids = tok(r["prompt"] + r["completion"])["input_ids"] + [tok.eos_token_id]
        examples.append({"input_ids": ids, "labels": [-100] * len(prompt) + ids[len(prompt):]})
    collate = pk.FlatCollator(pk.PositionTable(tok, task.position_tracker))
    rng = random.Random(0)
    batches = [collate(rng.sample(examples, 64)) for _ in range(WARMUP + steps)]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    pk.use_flat_attention(model)
    model.train()
    if name.startswith("compiled"):
        AttentionInterface.register(pk.ATTENTION, torch.compiler.disable(pk.packed_attention))
        if name == "compiled, regional":
            for i, layer in enumerate(model.model.layers):
                model.model.layers[i] = torch.compile(layer, dynamic=True)
        else:
            model.model = torch.compile(model.model, dynamic=True)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    if name == "SDPA math":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = lambda: sdpa_kernel(SDPBackend.MATH)  # noqa: E731
    else:
        backend = contextlib.nullcontext

    def step(b) -> float:
        with backend():
            out = model(input_ids=b["input_ids"], labels=b["labels"], position_ids=b["position_ids"],
                        packed_plan=b["packed_plan"])
            out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        return out.loss.item()

    t0 = time.perf_counter()
    for b in batches[:WARMUP]:
        step(b)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for b in batches[WARMUP:]:
        loss = step(b)
    return {"step_s": (time.perf_counter() - t0) / steps, "warmup_s": warm, "final_loss": loss,
            "useful_tokens_per_step": statistics.mean(int(b["input_ids"].shape[1]) for b in batches[WARMUP:])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20, help="timed steps per arm (after 5 warm-up steps)")
    ap.add_argument("--reps", type=int, default=2, help="alternating runs of every arm (median reported)")
    ap.add_argument("--dest", type=Path, default=RESULTS)
    ap.add_argument("--arm", help=argparse.SUPPRESS)  # internal: run one arm, print its JSON
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.arm:
        print(json.dumps(one_arm(args.arm, args.steps, args.model_dir)))
        return
    import torch

    from _peak import matmul_peak  # benchmarks/_peak.py
    from selftaught.models.loading import resolve
    from selftaught.tasks.arithmetic import Arithmetic, Config as TaskConfig
    from sft_speed import machine

    peak = matmul_peak()
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s (4096^2, {torch.get_num_threads()} threads)", flush=True)
    model_dir = resolve("builtin:tiny", Arithmetic(TaskConfig()), seed=0, warm_start_steps=500)
    runs = {a: [] for a in ARMS}
    for _ in range(args.reps):
        for a in ARMS:
            out = subprocess.run([sys.executable, __file__, "--arm", a, "--steps", str(args.steps),
                                  "--model-dir", model_dir], capture_output=True, text=True,
                                 cwd=Path(__file__).parent)
            if out.returncode:
                raise SystemExit(f"arm {a!r} failed:\n{out.stderr[-3000:]}")
            runs[a].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {a}: {runs[a][-1]['step_s']:.3f} s/step", flush=True)
    summary = {a: {"step_s": round(statistics.median(r["step_s"] for r in rs), 4),
                   "warmup_s": round(statistics.median(r["warmup_s"] for r in rs), 1),
                   "final_loss": round(rs[-1]["final_loss"], 5)} for a, rs in runs.items()}
    base = summary["eager"]["step_s"]
    for a in summary:
        summary[a]["vs_eager"] = round(base / summary[a]["step_s"], 2)
    end = matmul_peak()
    print(f"\nfp32 matmul peak (GFLOP/s, 4096^2): {peak:.0f} at the start, {end:.0f} at the end; tiny model, "
          f"packed, batch 64, {args.steps} steps x {args.reps}")
    print("| arm | s / step | vs eager | warm-up s (5 steps, compile included) | final loss |")
    print("|---|---|---|---|---|")
    for a, s in summary.items():
        print(f"| {a} | {s['step_s']:.3f} | {s['vs_eager']}x | {s['warmup_s']} | {s['final_loss']} |")
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    threads = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""
    args.dest.write_text(json.dumps({
        "machine": machine(), "matmul_peak_gflops": {"start": round(peak, 1), "end": round(end, 1)},
        "command": f"{threads}python benchmarks/sft_compile.py {' '.join(sys.argv[1:])}".strip(),
        "torch": torch.__version__, "steps": args.steps, "reps": args.reps, "summary": summary, "runs": runs},
        indent=1) + "\n")


if __name__ == "__main__":
    main()
