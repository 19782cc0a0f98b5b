"""Run one benchmark arm as the user would: ``selftaught run ...`` in a subprocess
(shared by star_arithmetic.py, methods.py and demo_time.py)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


class ArmFailed(RuntimeError):
    pass


def run(name: str, out: Path, args: list[str], env: dict | None = None) -> tuple[float, list[str], list[dict]]:
    """``selftaught run <args> name=<name> out_dir=<out>`` with ``env`` added to this
    process's environment: (wall seconds, the command, the run's metrics.jsonl rows).
    Raises ArmFailed with the tail of stderr if the command fails."""
    cmd = [sys.executable, "-m", "selftaught.cli", "run", *args, f"name={name}", f"out_dir={out}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    wall = round(time.perf_counter() - t0, 1)
    if proc.returncode:
        raise ArmFailed(f"{name} failed:\n{proc.stderr[-3000:]}")
    metrics = [json.loads(x) for x in (out / name / "metrics.jsonl").read_text().splitlines()]
    return wall, cmd, metrics


def meta(common: list[str], **extra) -> dict:
    """The ``meta`` block of a benchmark's JSON: machine, command, date, the overrides
    every arm shares; ``wall_s`` is filled by ``save``."""
    return {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
            "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"), "wall_s": None,
            "common_overrides": common, **extra}


def results_args(ap, name: str, cache_help: str) -> None:
    """The options every arm-running benchmark shares: --out, --cache, --name, --show."""
    ap.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temp dir)")
    ap.add_argument("--cache", type=Path, default=None, help=f"model cache (default: {cache_help})")
    ap.add_argument("--name", default=name, help="results file: benchmarks/results/<name>.json")
    ap.add_argument("--show", action="store_true", help="print the table of the saved results")


def print_peak() -> float:
    """Measure and print the box's fp32 matmul peak (every benchmark prints it first)."""
    from _peak import matmul_peak

    peak = matmul_peak()
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s (4096^2, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})",
          flush=True)
    return peak


def save(out: Path, data: dict, t0: float, table) -> None:
    """Record the wall time since ``t0``, write ``data`` to ``out``, print ``table(data)``."""
    data["meta"]["wall_s"] = round(time.perf_counter() - t0)
    out.write_text(json.dumps(data, indent=1) + "\n")
    table(data)
    print(f"wrote {out} ({data['meta']['wall_s']} s)")


def arm(name: str, args: list[str], out: Path, cache: Path, common: list[str]) -> dict:
    """One arm (``args`` = recipe, its overrides) with the shared ``common`` overrides
    and model ``cache``: {wall_s, command, metrics}; exits with the arm's error."""
    recipe, *overrides = args
    try:
        wall, cmd, metrics = run(name, out, [recipe, *common, *overrides], {"SELFTAUGHT_CACHE": str(cache)})
    except ArmFailed as e:
        sys.exit(str(e))
    print(f"{name}: {wall:.0f} s", flush=True)
    return {"wall_s": wall, "command": " ".join(cmd[2:]), "metrics": metrics}
