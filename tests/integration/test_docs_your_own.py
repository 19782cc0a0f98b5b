"""Every command and the Python example of docs/your_own.md, run as written, in a
fresh directory holding the files the page shows (``selftaught run`` commands
get the micro overrides of conftest.py so they take seconds)."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import MICRO

REPO = Path(__file__).parents[2]
BLOCK = re.compile(r"```(\w+)([^\n]*)\n(.*?)```", re.S)


def _blocks():
    return [(lang, info.strip(), body) for lang, info, body in BLOCK.findall((REPO / "docs/your_own.md").read_text())]


def _cli(line: str) -> list[str]:
    words = shlex.split(line)
    assert words[0] == "selftaught", line
    args = words[1:]
    if args[0] == "run" and not (len(args) > 1 and "=" not in args[1]):  # a new run, not a resume
        args = ["run", *MICRO, *args[1:]]
    return [sys.executable, "-m", "selftaught.cli", *args]


def test_every_documented_command_runs(tmp_path, model_cache):
    env = {**os.environ, "SELFTAUGHT_CACHE": str(model_cache), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tmp_path)}
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    blocks = _blocks()
    for lang, info, body in blocks:
        if info.startswith("file="):
            (tmp_path / info[5:]).write_text(body)
    outputs = []
    for lang, info, body in blocks:
        if lang != "bash":
            continue
        for line in filter(None, (x.strip() for x in body.splitlines())):
            done = subprocess.run(_cli(line), cwd=tmp_path, env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"
            outputs.append((line, done.stdout))
    verdicts = [[json.loads(x)["correct"] for x in out.splitlines()] for line, out in outputs if line.startswith("selftaught verify")]
    assert verdicts == [[True, True, False], [True, True, True]]  # inferred numeric; then within 1%: 14.1 for 14
    rows = [r for r in (tmp_path / "runs/own/metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3  # the resume found the run finished and did nothing twice
    [example] = [body for lang, info, body in blocks if lang == "python" and not info]
    example = example.replace("overrides=[", f"overrides=[*{MICRO!r}, ")
    done = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "arithmetic@python:checks.py:answer_line_length#" in done.stdout
    cli = subprocess.run(_cli("selftaught run runs/from-python"), cwd=tmp_path, env=env, capture_output=True, text=True)
    assert cli.returncode == 2 and "verifier=..." in cli.stderr  # what the page says the CLI answers
