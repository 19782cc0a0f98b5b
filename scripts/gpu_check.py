"""The CUDA check behind ``scripts/gpu_check.sh`` (run that; it refuses without CUDA).

One STaR iteration of a small real model with the ``hf`` backend (iteration-0
eval, sampling, LoRA SFT, held-out eval, natural-data perplexity), then one DPO
step against a reference model. Each stage's entry point is wrapped to time it,
take its peak GPU memory, and read where its model *actually* was -- the
sampler's weights, the Trainer's placed model and flags, every model load -- so
the check does not take the resolution's word for it. Exit 1 if any stage ran
off the GPU or outside bf16.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

STAGES: list[dict] = []  # one per wrapped call, in order
LOADS: list[dict] = []  # every load_pretrained: where the model ended up


def _where(model) -> dict:
    """Device and dtype of a model's weights (the input embedding: LoRA adapters may be fp32)."""
    w = model.get_input_embeddings().weight
    return {"device": w.device.type, "dtype": str(w.dtype).replace("torch.", "")}


def _wrap(owner, attr: str, label, where) -> None:
    """Replace ``owner.attr`` by a timed call that records seconds, peak memory and placement."""
    real = getattr(owner, attr)

    def timed(*args, **kwargs):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = real(*args, **kwargs)
        torch.cuda.synchronize()
        STAGES.append({"stage": label(args, kwargs), "seconds": time.perf_counter() - t0,
                       "peak_gib": torch.cuda.max_memory_allocated() / 2**30, **where(args, out)})
        return out

    setattr(owner, attr, timed)


def instrument() -> None:
    import transformers

    from selftaught.backends import hf
    from selftaught.models import loading
    from selftaught.monitor import perplexity

    _wrap(hf.HFBackend, "sample", lambda a, k: f"sample: {k.get('desc') or 'sample'}", lambda a, out: _where(a[0].model))

    def trained(a, out):
        t = a[0]  # the Trainer, after training: its model is where it trained
        return {**_where(t.model), "args": f"device={t.args.device} bf16={t.args.bf16} use_cpu={t.args.use_cpu}",
                "ok_args": t.args.bf16 and t.args.device.type == "cuda"}

    _wrap(transformers.Trainer, "train", lambda a, k: f"train: {type(a[0]).__name__}", trained)
    _wrap(perplexity, "perplexity", lambda a, k: "perplexity (natural data)", lambda a, out: dict(LOADS[-1]))
    real_load = loading.load_pretrained

    def load(path, for_training=False):
        model, tok = real_load(path, for_training)
        LOADS.append({**_where(model), "for_training": for_training, "path": str(path)})
        return model, tok

    loading.load_pretrained = load


def star_iteration(recipe: str, model: str, root: Path, extra: list[str]) -> dict:
    from selftaught import config, hardware, loop

    cfg = config.load(recipe, [
        "iterations=1", f"out_dir={root}", "name=gpu-check", f"model={model}", "task.pool_size=400",
        "task.eval_size=64", "method.problems_per_iteration=64", "method.samples_per_problem=4",
        "method.max_new_tokens=96", "eval.max_new_tokens=96", "trainer.steps=8", "trainer.batch_size=8",
        "trainer.lora={r: 16, alpha: 32}", "gate.natural_ppl_examples=32", *extra])
    hw = hardware.use(cfg.hardware)  # loop.run resolves it too; this is the value the check expects
    print(f"hardware: {hw.describe()}", flush=True)
    t0 = time.perf_counter()
    store = loop.run(cfg, root / "gpu-check")
    print(f"STaR iteration (with iteration-0 eval): {time.perf_counter() - t0:.1f} s", flush=True)
    metrics = store.metrics()
    return {"cfg": cfg, "metrics": metrics[-1] if metrics else {}}


def natural_ppl(cfg, model_path: str) -> float:
    """The perplexity monitor on held-out (prompt, answer) pairs, for tasks without natural data."""
    from selftaught import registry
    from selftaught.models.loading import resolve
    from selftaught.monitor import perplexity

    task = registry.build("task", cfg.task)
    pairs = [(task.prompt(p), f"Answer: {p.answer}") for p in task.eval_set()[:32]]
    return perplexity.perplexity(resolve(model_path), pairs)


def dpo_step(cfg, model_path: str, out: Path) -> dict:
    """Two DPO steps (full fine-tune, so a separate reference model is loaded too)."""
    from selftaught import registry
    from selftaught.models.loading import resolve
    from selftaught.trainers import dpo

    task = registry.build("task", cfg.task)
    problems = task.eval_set()[:16]
    rows = [{"prompt": task.prompt(p), "chosen": f"Answer: {p.answer}", "rejected": f"Answer: {p.answer}1"}
            for p in problems]
    trainer = dpo.build(dpo.Config(steps=2, batch_size=4, lr=1e-6, max_length=256))
    return trainer.train(resolve(model_path), rows, str(out), seed=0, desc="dpo (gpu check)")


def report(expect: str) -> int:
    print(f"\n{'stage':48} {'seconds':>8} {'peak GiB':>9}  where")
    bad = []
    for s in STAGES:
        where = f"{s['device']}/{s['dtype']}" + (f"  [{s['args']}]" if "args" in s else "")
        print(f"{s['stage'][:48]:48} {s['seconds']:8.1f} {s['peak_gib']:9.2f}  {where}")
        if s["device"] != "cuda" or s["dtype"] != expect or s.get("ok_args") is False:
            bad.append(s["stage"])
    for ld in LOADS:
        wrong = ld["dtype"] != expect or (not ld["for_training"] and ld["device"] != "cuda")
        if wrong:
            bad.append(f"load {ld['path']} (for_training={ld['for_training']}): {ld['device']}/{ld['dtype']}")
    kinds = {s["stage"].split(":")[0] for s in STAGES}
    for need in ("sample", "train", "perplexity (natural data)"):
        if need not in kinds:
            bad.append(f"no {need} stage ran")
    print(f"\n{len(STAGES)} stages, {len(LOADS)} model loads; max peak {max(s['peak_gib'] for s in STAGES):.2f} GiB "
          f"on {torch.cuda.get_device_name(0)}")
    if bad:
        print("FAILED: not on CUDA in " + expect + ":\n  " + "\n  ".join(bad))
        return 1
    print(f"OK: every stage ran on CUDA in {expect}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--recipe", default="recipes/star_smollm2_reasoning_gym.yaml")
    ap.add_argument("--expect-dtype", default="bfloat16")
    ap.add_argument("overrides", nargs="*", help="more recipe overrides (key=value)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA device; this check runs only on a CUDA machine (nothing was run)")
    instrument()
    with tempfile.TemporaryDirectory(prefix="selftaught-gpu-check-") as tmp:
        run = star_iteration(args.recipe, args.model, Path(tmp), args.overrides)
        m = run["metrics"]
        print("iteration metrics: " + ", ".join(f"{k}={m[k]}" for k in sorted(m)
                                               if k.startswith(("hw/", "eval/acc", "train/seconds", "train/loss"))))
        ckpt = Path(tmp) / "gpu-check" / "iter_001" / "checkpoint"
        if not any(st["stage"].startswith("perplexity") for st in STAGES):  # the task has no natural data
            natural_ppl(run["cfg"], str(ckpt if ckpt.is_dir() else args.model))
        dpo_metrics = dpo_step(run["cfg"], str(ckpt if ckpt.is_dir() else args.model), Path(tmp) / "dpo")
        print(f"dpo: loss {dpo_metrics['train/loss']:.4f}, {dpo_metrics['train/seconds']} s")
    return report(args.expect_dtype)


if __name__ == "__main__":
    sys.exit(main())
