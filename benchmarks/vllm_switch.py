"""Seconds the ``vllm`` backend spends switching to a new checkpoint, once per
iteration: restarting the engine (``reload: false``, the backend before in-place
reload) vs loading the new weights into the running engine (``reload: true``,
the default), side by side in one run, with a check that the reloaded engine
samples what a fresh one does (greedy, against the ``hf`` backend).

Needs vLLM, in its own venv (``bash scripts/test_vllm.sh`` sets it up):

    /tmp/vllm-env/bin/python benchmarks/vllm_switch.py [--switches 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder

RESULTS = Path(__file__).parent / "results" / "vllm_switch.json"
PROMPTS = ["12+345\n", "9+9\n", "1234567+7654321\n", "77+1\n"]


def checkpoints(root: Path, n: int) -> list[str]:
    """``n`` small Llama checkpoints of one architecture (as a run's iterations are)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from selftaught.models.tiny import build_tokenizer
    from selftaught.tasks.arithmetic import ALPHABET

    tok, out = build_tokenizer(ALPHABET), []
    for seed in range(n):
        torch.manual_seed(seed)  # head_dim 32: vLLM's CPU attention has no kernel for 16
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                          num_attention_heads=8, num_key_value_heads=4, head_dim=32, max_position_embeddings=256,
                          initializer_range=0.3, pad_token_id=0, eos_token_id=1, bos_token_id=None)
        d = root / f"iter_{seed:03d}"
        LlamaForCausalLM(cfg).save_pretrained(d)
        tok.save_pretrained(d)
        out.append(str(d))
    return out


def arm(reload: bool, paths: list[str]) -> dict:
    from selftaught.backends import hf, vllm

    b = vllm.build(vllm.Config(dtype="float32", enforce_eager=True, max_model_len=256, cpu_kv_cache_gb=1,
                               reload=reload))
    switches, agree = [], []
    try:
        for path in paths:
            b.load(path)
            switches.append(b.last_switch)
            got = b.sample(PROMPTS, 1, temperature=0.0, max_new_tokens=16, seed=0)
            ref = hf.build(hf.Config())
            ref.load(path)
            want = ref.sample(PROMPTS, 1, temperature=0.0, max_new_tokens=16, seed=0)
            agree.append(sum(g == w for g, w in zip(got, want)))
    finally:
        b.close()
    per_iter = [s["seconds"] for s in switches[1:]]
    return {"reload": reload, "switches": switches, "greedy_agree_with_hf": agree, "prompts": len(PROMPTS),
            "switch_s_mean": round(sum(per_iter) / len(per_iter), 2) if per_iter else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--switches", type=int, default=3, help="checkpoint changes per arm (iterations after the first)")
    args = ap.parse_args()
    import torch
    import vllm

    peak = matmul_peak()
    print(f"fp32 matmul peak {peak:.1f} GFLOP/s (4096² products, {torch.get_num_threads()} threads); vllm {vllm.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = checkpoints(Path(tmp), args.switches + 1)
        t0 = time.perf_counter()
        arms = [arm(False, paths), arm(True, paths)]
    print("| switch | start s | per-iteration switch s (mean) | each | greedy = hf |")
    print("|---|---|---|---|---|")
    for a in arms:
        each = ", ".join(f"{s['how']} {s['seconds']}" for s in a["switches"][1:])
        print(f"| {'reload' if a['reload'] else 'restart'} | {a['switches'][0]['seconds']} | {a['switch_s_mean']} | "
              f"{each} | {a['greedy_agree_with_hf']} of {a['prompts']} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": f"{platform.machine()} {platform.processor()}", "vllm": vllm.__version__,
                                   "matmul_peak_gflops": round(peak, 1), "wall_s": round(time.perf_counter() - t0, 1),
                                   "command": "python benchmarks/vllm_switch.py", "arms": arms}, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":  # vLLM spawns workers that re-import this module
    main()
