"""An earlier revision's code, side by side with this tree's (``--base REV`` of
rollout.py and sft_speed.py): a git worktree under /tmp, and a subprocess that imports
it and prints its result as its last JSON line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


def worktree(rev: str, prefix: str) -> Path:
    """``/tmp/<prefix>-<rev>``, checked out at ``rev`` (made once, kept for later runs)."""
    tree = Path(f"/tmp/{prefix}-{rev}")
    if not tree.is_dir():
        subprocess.run(["git", "-C", str(Path(__file__).parent), "worktree", "add", "--detach", str(tree), rev],
                       check=True, capture_output=True)
    return tree


def run_json(cmd: list[str], tree: Path, rev: str) -> dict:
    """Run ``cmd`` with ``tree``'s src first on PYTHONPATH; its last stdout line that is
    JSON, or an error with the tail of its stderr."""
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(tree / "src")}, capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"base {rev} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])
