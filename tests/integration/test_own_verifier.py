"""A verifier written in a file outside the repository, used from YAML and from
Python: it changes the verdicts as written, every scored row names it in its
``verifier`` column, and the run survives kill -9 and resumes from the CLI (or,
when the verifier was a Python object, says what must be passed again)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from conftest import MICRO

CHECKS = '''
def right_length(problem, completion):
    """Correct when the answer line has as many digits as the gold answer -- on purpose
    not the built-in verdict, so the test can tell whose verdict a row carries."""
    for line in reversed(completion.split("\\n")):
        if line.startswith("="):
            return line[1:].strip().isdigit() and len(line[1:].strip()) == len(problem.answer)
    return False
'''


def _checks(tmp_path: Path) -> Path:
    d = tmp_path / "elsewhere"
    d.mkdir()
    (d / "checks.py").write_text(textwrap.dedent(CHECKS))
    return d


def _scored_rows(root: Path) -> list[dict]:
    return [r for p in sorted(root.glob("iter_*/*.parquet")) if p.stem in ("samples", "eval")
            for r in pq.read_table(p).to_pylist() if r.get("verifier") is not None]


def _assert_verdicts_are_the_files(root: Path, checks_dir: Path, stamp: str) -> None:
    sys.path.insert(0, str(checks_dir))
    try:
        from checks import right_length
    finally:
        sys.path.remove(str(checks_dir))
    from selftaught.records import Problem
    from selftaught.tasks.arithmetic import verify as builtin

    rows = _scored_rows(root)
    assert rows and {r["verifier"].split("#")[0] for r in rows} == {stamp}
    differs = 0
    for r in rows:
        a, b = (int(x) for x in r["problem_id"].split("+"))
        p = Problem(r["problem_id"], r["problem_id"], str(a + b), meta={"a": a, "b": b})
        assert r["correct"] == right_length(p, r["completion"]), r["sample_id"]
        differs += builtin(p, r["completion"]).correct != r["correct"]
    assert differs > 0, "the file's verifier never disagreed with the built-in one: the test shows nothing"
    lines = (root / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in lines] == list(range(len(lines))) and len(lines) >= 2


def test_yaml_verifier_survives_kill_and_cli_resume(tmp_path, model_cache):
    checks_dir = _checks(tmp_path)
    recipe = yaml.safe_load((Path(__file__).parents[2] / "src/selftaught/recipes/star_arithmetic.yaml").read_text())
    recipe["task"]["verifier"] = "./checks.py:right_length"  # relative to where the run starts
    (checks_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    root = tmp_path / "runs" / "own"
    cmd = [sys.executable, "-m", "selftaught.cli", "run", "recipe.yaml", *MICRO, f"out_dir={root.parent}", "name=own"]
    env = {**os.environ, "SELFTAUGHT_CACHE": str(model_cache), "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(cmd, cwd=checks_dir, env={**env, "SELFTAUGHT_FAULT": "iter_001/verify.done"}, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (yaml.safe_load((root / "config.yaml").read_text())["task"]["verifier"]
            == f"{checks_dir.resolve()}/checks.py:right_length")
    resumed = subprocess.run([sys.executable, "-m", "selftaught.cli", "run", str(root)], cwd=tmp_path, env=env,
                             capture_output=True, text=True)  # another directory: the saved spec is absolute
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_verdicts_are_the_files(root, checks_dir, "arithmetic@checks.py:right_length")


PY_RUN = '''
import sys
sys.path.insert(0, {checks!r})
import selftaught
from checks import right_length
run = selftaught.run(None, {overrides!r}, verifier=right_length)
print("ACC", run.metrics[-1]["eval/acc"], "BEST", run.best["iteration"])
'''


def test_python_verifier_resume_needs_it_again(tmp_path, model_cache):
    checks_dir = _checks(tmp_path)
    root = tmp_path / "runs" / "py"
    overrides = [*MICRO, "iterations=1", f"out_dir={root.parent}", "name=py"]
    script = PY_RUN.format(checks=str(checks_dir), overrides=overrides)
    env = {**os.environ, "SELFTAUGHT_CACHE": str(model_cache), "OMP_NUM_THREADS": "1"}
    killed = subprocess.run([sys.executable, "-c", script], env={**env, "SELFTAUGHT_FAULT": "iter_001/train.done"},
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert yaml.safe_load((root / "config.yaml").read_text())["task"]["verifier"] == "python:verifier.right_length"
    cli = subprocess.run([sys.executable, "-m", "selftaught.cli", "run", str(root)], env=env, capture_output=True, text=True)
    msg = " ".join(cli.stderr.split())
    assert cli.returncode == 2 and "python:verifier.right_length" in msg and "selftaught.run(RUN_DIR, verifier=...)" in msg
    resume = script.replace("selftaught.run(None, " + repr(overrides), f"selftaught.run({str(root)!r}")
    again = subprocess.run([sys.executable, "-c", resume], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "ACC" in again.stdout, again.stderr[-2000:]
    _assert_verdicts_are_the_files(root, checks_dir, "arithmetic@python:checks.py:right_length")
