"""kill -9 in the middle of a run, resume, and get what an uninterrupted run gets.

Sampling and training are deterministic on CPU for a fixed seed and thread
count, so the resumed run must equal the uninterrupted one record for record
(the only difference allowed: wall times, and absolute paths that name the run
directory). Every run is its own process, forked from a server that imported
torch and TRL once (``forked_cli.py``): a real SIGKILL, without 4 s of imports a run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import forked_cli
from conftest import MICRO


def _argv(root: Path, overrides: list[str]) -> list[str]:
    return ["run", *MICRO, f"out_dir={root.parent}", f"name={root.name}", *overrides]


def _run_cmd(root: Path, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "selftaught.cli", *_argv(root, overrides)]


def _records(root: Path) -> dict:
    """Every record and metric of a run, with run-dir paths and wall times normalised away."""
    out = {}
    for p in sorted(root.rglob("*.parquet")):
        rows = pq.read_table(p).to_pylist()
        out[str(p.relative_to(root))] = json.loads(json.dumps(rows, default=str).replace(str(root), "<run>"))
    for p in sorted(root.glob("iter_*/metrics.json")):
        m = json.loads(p.read_text().replace(str(root), "<run>"))
        out[str(p.relative_to(root))] = {k: v for k, v in m.items() if not k.startswith(("time/", "train/seconds", "train/tokens_per_s"))}
    return out


def _kill_when(argv, env, root: Path, marker: str, delay: float) -> None:
    proc = forked_cli.Run(argv, env)
    deadline = time.time() + 300
    while not (root / marker).exists():
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"run ended before {marker} appeared (exit {proc.poll()})")
        time.sleep(0.05)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, model_cache) -> Path:
    """The uninterrupted run every crashed-and-resumed run must equal."""
    root = tmp_path_factory.mktemp("clean") / "run"
    env = {**os.environ, "SELFTAUGHT_CACHE": str(model_cache), "OMP_NUM_THREADS": "1"}
    done = forked_cli.run(_argv(root, []), env)
    assert done.returncode == 0, done.output[-2000:]
    return root


# Exact points: SIGKILL just before a file is renamed into place (store.fault_point).
# The first write of samples.parquet is generate's; a killed stage leaves its
# outputs written but its .done marker missing, the case resume must not trust.
@pytest.mark.parametrize("point", [
    "iter_001/samples.parquet",   # generate's output, about to land
    "iter_001/verify.done",       # verify rewrote samples.parquet with scores; no marker
    "iter_001/train.parquet",     # select: samples.parquet rewritten, train.parquet not yet
    "iter_001/select.done",
    "iter_001/train.done",        # the checkpoint is saved; no marker
    "iter_002/eval.parquet",
    "iter_002/evaluate.done",
    "crashed/metrics.jsonl",      # iteration metrics written, the run-level file not yet
])
def test_fault_point_then_resume_equals_uninterrupted(tmp_path, clean_run, model_cache, point):
    env = {**os.environ, "SELFTAUGHT_CACHE": str(model_cache), "OMP_NUM_THREADS": "1"}
    crashed = tmp_path / "crashed"
    killed = forked_cli.run(_argv(crashed, []), {**env, "SELFTAUGHT_FAULT": point})
    assert killed.returncode == -signal.SIGKILL, f"the fault point {point} was never reached"
    resumed = forked_cli.run(_argv(crashed, []), env)
    assert resumed.returncode == 0, resumed.output[-2000:]
    assert _records(crashed) == _records(clean_run)
    lines = (crashed / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in lines] == [0, 1, 2]


# Timed kills: anywhere inside a long stage.
@pytest.mark.parametrize("marker,delay", [
    ("iter_000/evaluate.done", 0.3),   # inside iteration 1's generate
    ("iter_001/select.done", 0.5),     # inside iteration 1's train
    ("iter_001/train.done", 0.2),      # inside iteration 1's evaluate
    ("iter_002/generate.done", 0.0),   # between stages
])
def test_kill_and_resume_equals_uninterrupted(tmp_path, clean_run, model_cache, marker, delay):
    env = {**os.environ, "SELFTAUGHT_CACHE": str(model_cache), "OMP_NUM_THREADS": "1"}
    crashed = tmp_path / "crashed"
    _kill_when(_argv(crashed, []), env, crashed, marker, delay)
    assert not (crashed / "iter_002" / "evaluate.done").exists(), "the kill came too late to test anything"
    resumed = forked_cli.run(_argv(crashed, []), env)
    assert resumed.returncode == 0, resumed.output[-2000:]
    assert _records(crashed) == _records(clean_run)
    lines = (crashed / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in lines] == [0, 1, 2]  # nothing lost, nothing doubled


def test_second_process_on_same_run_is_refused(tmp_path, model_cache):
    env = {**os.environ, "SELFTAUGHT_CACHE": str(model_cache), "OMP_NUM_THREADS": "1"}
    root = tmp_path / "busy"
    first = subprocess.Popen(_run_cmd(root, []), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (root / "config.yaml").exists():
            time.sleep(0.05)
        second = subprocess.run(_run_cmd(root, []), env=env, capture_output=True, text=True)
        assert second.returncode != 0 and "in use by pid" in second.stderr
    finally:
        first.kill()
        first.wait()
