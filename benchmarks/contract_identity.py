"""Same micro-run, two source trees, byte-identical records: the check that a
refactor of the method contract changed no behaviour.

For every method recipe it runs the test suite's ``MICRO`` micro-run (plus the
overrides its integration test uses) under ``--src`` and writes a digest of
every record file and metric: per iteration, the SHA-256 of ``samples``,
``train`` and ``eval`` (rows as canonical JSON, run-directory paths replaced by
``<run>``) and the metrics without wall times. Compare two digests with
``--compare``.

    git worktree add /tmp/base 42f1f54
    python benchmarks/contract_identity.py --src /tmp/base/src --out /tmp/before.json
    python benchmarks/contract_identity.py --src src --out /tmp/after.json
    python benchmarks/contract_identity.py --compare /tmp/before.json /tmp/after.json

Both runs share one model cache (``SELFTAUGHT_CACHE``), so they start from the
same warm-started tiny model file. ``--extra`` adds overrides to every run;
``--no-packing`` turns off the SFT trainer's packing (the default since the
refactor's tree also gained it), so the padded path of the old tree is compared:

    python benchmarks/contract_identity.py --src src --out /tmp/after.json --no-packing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _peak import matmul_peak  # benchmarks/_peak.py: scripts run from this folder

ROOT = Path(__file__).resolve().parents[1]
MICRO = [
    "iterations=2", "warm_start_steps=60", "task.seed_size=300", "task.pool_size=300",
    "task.eval_digits=[1,4]", "task.eval_per_group=8", "method.problems_per_iteration=48",
    "trainer.steps=8", "trainer.batch_size=16", "backend.batch_size=64", "eval.max_new_tokens=64",
    "method.max_new_tokens=64",
]
# recipe, overrides: the integration tests' (tests/integration/test_*_micro.py, test_star_loop.py)
ARMS = {
    "star": ("star_arithmetic", []),
    "rft": ("rft_arithmetic", ["mix.natural_fraction=0", "mix.dedup=none"]),
    "rest_em": ("rest_em_arithmetic", ["method.max_per_problem=2"]),
    "rest": ("rest_arithmetic", ["method.improve_steps=3"]),
    "ttrl": ("ttrl_arithmetic", ["method.samples_per_problem=4"]),
    "self_play": ("self_play_arithmetic", ["method.judge_samples=2"]),
    "best_of_n": ("best_of_n_arithmetic", []),
    "spin": ("spin_arithmetic", ["method.problems_per_iteration=24"]),
    "self_rewarding": ("self_rewarding_arithmetic", [
        "method.problems_per_iteration=8", "method.candidates=3", "method.judge_samples=1",
        "method.judge_max_new_tokens=12"]),
    "cai": ("cai_arithmetic", ["method.problems_per_iteration=12", "method.sl_trainer.steps=4",
                               "method.sl_trainer.batch_size=8", "method.critique_max_new_tokens=16"]),
    "self_instruct": ("self_instruct_arithmetic", ["method.problems_per_iteration=32", "method.solutions=2",
                                                   "method.propose_max_new_tokens=16"]),
}
# arms whose recipe trains with SFT (the rest use DPO; cai's SL stage has its own sft trainer)
NO_PACKING = {"cai": ["method.sl_trainer.packing=false"], "spin": [], "self_rewarding": []}
TIMING = ("time/", "_s", "seconds", "runtime", "per_second", "samples_per_sec", "steps_per_sec", "tok_per_s", "hw/")

RUNNER = """
import sys
from selftaught import config, loop
cfg = config.load(sys.argv[1], sys.argv[2:])
loop.run(cfg)
"""


def recipe_path(src: Path, name: str) -> Path:
    """A recipe as that tree had it (recipes/ beside src/, or the package's own copy)."""
    for p in (src.parent / "recipes" / f"{name}.yaml", src / "selftaught" / "recipes" / f"{name}.yaml"):
        if p.is_file():
            return p
    raise FileNotFoundError(f"{name}.yaml in neither {src.parent / 'recipes'} nor the package")


def canonical(value, root: str):
    text = json.dumps(value, sort_keys=True, default=str)
    return text.replace(root, "<run>")


def digest(run: Path) -> dict:
    import pyarrow.parquet as pq

    out = {}
    for it in sorted(run.glob("iter_*")):
        entry = {}
        for name in ("samples", "train", "eval"):
            f = it / f"{name}.parquet"
            if f.is_file():
                rows = pq.read_table(f).to_pylist()
                entry[name] = hashlib.sha256(canonical(rows, str(run)).encode()).hexdigest()
                entry[f"{name}_rows"] = len(rows)
        m = json.loads((it / "metrics.json").read_text())
        entry["metrics"] = json.loads(canonical({k: v for k, v in m.items() if not any(t in k for t in TIMING)},
                                                str(run)))
        out[it.name] = entry
    return out


def run_all(src: Path, arms: list[str], extra: list[str], no_packing: bool = False) -> dict:
    results = {}
    work = Path(tempfile.mkdtemp(prefix="identity-"))
    env = {**os.environ, "PYTHONPATH": str(src)}
    for arm in arms:
        recipe, overrides = ARMS[arm]
        out_dir = work / "runs"  # the same path for both trees: paths in records compare equal
        shutil.rmtree(out_dir, ignore_errors=True)
        args = [*MICRO, f"out_dir={out_dir}", f"name={arm}", *overrides, *extra]
        if no_packing:
            args += NO_PACKING.get(arm, ["trainer.packing=false"])
        print(f"[{src}] {arm} ...", flush=True)
        proc = subprocess.run([sys.executable, "-c", RUNNER, str(recipe_path(src, recipe)), *args], env=env,
                              capture_output=True, text=True)
        if proc.returncode:
            results[arm] = {"error": proc.stderr[-2000:]}
            print(proc.stderr[-2000:], flush=True)
            continue
        results[arm] = digest(out_dir / arm)
    shutil.rmtree(work, ignore_errors=True)
    return results


def untimed(d: dict) -> dict:
    """A digest without wall-time metrics (digests written before a key joined TIMING)."""
    return {arm: {it: {**e, "metrics": {k: v for k, v in e["metrics"].items() if not any(t in k for t in TIMING)}}
                  if isinstance(e, dict) and "metrics" in e else e for it, e in v.items()} for arm, v in d.items()}


def compare(a: dict, b: dict) -> bool:
    a, b, same = untimed(a), untimed(b), True
    print(f"{'method':16} {'result':10} detail")
    for arm in sorted(k for k in set(a) | set(b) if not k.startswith("_")):  # "_meta": the box, not an arm
        x, y = a.get(arm), b.get(arm)
        if x == y:
            print(f"{arm:16} {'identical':10} {sum(v.get('samples_rows', 0) for v in x.values())} sample rows")
            continue
        same = False
        diffs = []
        for it in sorted(set(x or {}) | set(y or {})):
            ex, ey = (x or {}).get(it, {}), (y or {}).get(it, {})
            for key in sorted(set(ex) | set(ey)):
                if key == "metrics" and isinstance(ex.get(key), dict) and isinstance(ey.get(key), dict):
                    keys = [k for k in set(ex[key]) | set(ey[key]) if ex[key].get(k) != ey[key].get(k)]
                    if keys:
                        diffs.append(f"{it}/metrics: {sorted(keys)[:6]}")
                elif ex.get(key) != ey.get(key):
                    diffs.append(f"{it}/{key}")
        print(f"{arm:16} {'DIFFERENT':10} {'; '.join(diffs)[:400]}")
    return same


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, help="the source tree to run (its src/ folder)")
    ap.add_argument("--out", type=Path, help="digest JSON to write")
    ap.add_argument("--methods", nargs="*", default=list(ARMS))
    ap.add_argument("--extra", nargs="*", default=[], help="overrides added to every run")
    ap.add_argument("--no-packing", action="store_true", help="the SFT trainer's padded path (packing=false)")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        a, b = (json.loads(p.read_text()) for p in args.compare)
        return 0 if compare(a, b) else 1
    import torch

    peak = round(matmul_peak(), 1)  # before the arms
    print(f"fp32 matmul peak {peak:.1f} GFLOP/s (4096² products, {torch.get_num_threads()} threads)", flush=True)
    results = {"_meta": {"matmul_peak_gflops": peak},
               **run_all(args.src.resolve(), args.methods, args.extra, args.no_packing)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
