"""Run one benchmark arm as the user would: ``selftaught run ...`` in a subprocess
(shared by star_arithmetic.py, methods.py and demo_time.py)."""

from __future__ import annotations

import json
import os
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
