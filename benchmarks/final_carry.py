"""Does the tiny model write the final-carry line one length past its training?
The probe behind the curriculum's stall (issue 17, item 1; README, methods).

    python benchmarks/final_carry.py                          # both curriculum recipes' warm starts
    python benchmarks/final_carry.py --model DIR [DIR ...]    # checkpoints (iter_00k/checkpoint)

For n-digit sums whose answer has n + 1 digits, the input is the prompt and the n
right scratchpad lines; the next token is the carry line's first character ('0'
of "0+0+1=1,0") or '=' (the answer line, one digit short). Prints, per length, how
many of ``--cases`` the model continues with the carry line, and its mean p('0')
and p('='), one forward pass each on the sampling layout (``Positions()``, no gaps).
A recipe's model is built if it is not cached (the warm start: minutes). Writes
benchmarks/results/final_carry.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder

ROOT = Path(__file__).resolve().parents[1]
RECIPES = [ROOT / "recipes" / "easy_to_hard_arithmetic.yaml", ROOT / "recipes" / "easy_to_hard_gaps_arithmetic.yaml"]


def recipe_model(recipe: Path) -> str:
    from selftaught import config, registry
    from selftaught.models.loading import resolve

    run = config.load(recipe, ["out_dir=/nonexistent"])
    return str(resolve(run.model, registry.build("task", run.task), seed=run.seed, warm_start_steps=run.warm_start_steps))


def probe(model_dir: str, lengths: list[int], cases: int, seed: int = 0) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selftaught.tasks.arithmetic import Positions, reverse, scratchpad

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    zero, eq = tok.convert_tokens_to_ids("0"), tok.convert_tokens_to_ids("=")
    rng, out = random.Random(seed), []
    for n in lengths:
        p0, peq = [], []
        while len(p0) < cases:
            a, b = rng.randint(10 ** (n - 1), 10**n - 1), rng.randint(10 ** (n - 1), 10**n - 1)
            if a + b < 10**n:  # no final carry
                continue
            lines = scratchpad(a, b).split("\n")
            text = f"{reverse(a)}+{reverse(b)}\n" + "\n".join(lines[:n]) + "\n"
            tracker = Positions()
            pos = [tracker.feed(c) for c in text]
            ids = torch.tensor([tok.convert_tokens_to_ids(list(text))])
            with torch.no_grad():  # an explicit mask: with position ids that restart, transformers
                # would otherwise infer packed sequences and attend within each "segment" only
                logits = model(input_ids=ids, position_ids=torch.tensor([pos]), attention_mask=torch.ones_like(ids)).logits
            p = logits[0, -1].softmax(-1)
            p0.append(p[zero].item())
            peq.append(p[eq].item())
        out.append({"digits": n, "cases": cases, "writes_carry_line": sum(x > y for x, y in zip(p0, peq)),
                    "p_carry_line": round(sum(p0) / cases, 4), "p_answer_line": round(sum(peq) / cases, 4)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", nargs="*", default=None, help="model dirs (default: the two curriculum recipes' warm starts)")
    ap.add_argument("--lengths", nargs="*", type=int, default=[8, 9, 10, 11, 12])
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--dest", type=Path, default=ROOT / "benchmarks" / "results" / "final_carry.json")
    args = ap.parse_args()
    peak = matmul_peak()
    models = {m: m for m in args.model} if args.model else {r.name: recipe_model(r) for r in RECIPES}
    rows = [{"model": name, "dir": d, **r} for name, d in models.items() for r in probe(d, args.lengths, args.cases)]
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s")
    print(f"{'model':<40} {'digits':>6} {'carry line':>10} {'p(0)':>6} {'p(=)':>6}")
    for r in rows:
        print(f"{r['model'][-40:]:<40} {r['digits']:>6} {r['writes_carry_line']:>5}/{r['cases']:<4} "
              f"{r['p_carry_line']:>6.2f} {r['p_answer_line']:>6.2f}")
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    args.dest.write_text(json.dumps({"matmul_peak_gflops": round(peak, 1), "command": " ".join(sys.argv), "rows": rows}, indent=1))
    print(f"wrote {args.dest}")


if __name__ == "__main__":
    main()
