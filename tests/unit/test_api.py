"""The Python API: what ``selftaught.run`` hands the loop for Python objects and
specs, how a resume finds them again, and what ``load_run`` reads back."""

import json
import subprocess
import sys

import pytest
import yaml

import selftaught
from selftaught import config, loop, registry
from selftaught.store import RunDirError, RunStore


@pytest.fixture
def captured(monkeypatch, tmp_path):
    """Replace the loop: record the config it would run and leave a config.yaml."""
    seen = {}

    def fake_run(cfg, root, on_iteration=None):
        seen["cfg"] = cfg
        RunStore(root).create_or_check(config.to_yaml(cfg))
        return RunStore(root)

    monkeypatch.setattr(loop, "run", fake_run)
    return seen


def test_import_selftaught_is_cheap():
    code = "import sys, selftaught; print([m for m in ('torch', 'trl', 'transformers', 'datasets', 'vllm', 'ray') if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_objects_become_python_specs_in_the_config(captured, tmp_path):
    from selftaught.tasks.arithmetic import Arithmetic, Config

    def my_check(problem, completion):
        return True

    task = Arithmetic(Config(pool_size=10))
    run = selftaught.run(None, [f"out_dir={tmp_path}", "name=a", "iterations=1"], task=task)
    assert captured["cfg"].task.type == "python:task.Arithmetic" and registry.load("task", "python:task.Arithmetic").build(None) is task
    assert run.root == tmp_path / "a" and run.config.iterations == 1
    selftaught.run(None, [f"out_dir={tmp_path}", "name=b"], verifier=my_check)
    assert captured["cfg"].task.verifier == "python:verifier.my_check" and captured["cfg"].task.type == "arithmetic"
    selftaught.run({**config.read(None), "out_dir": str(tmp_path), "name": "c"}, verifier="./checks.py:f")
    assert captured["cfg"].task.verifier == f"{tmp_path.cwd()}/checks.py:f"  # a spec string, made absolute


def test_a_verifier_for_a_task_without_one_is_refused(captured, tmp_path):
    with pytest.raises(config.ConfigError, match=r"the task `python:task\.object` has no `verifier` setting"):
        selftaught.run(None, [f"out_dir={tmp_path}"], task=object(), verifier=lambda p, c: True)


def test_resume_registers_objects_under_the_saved_names(captured, tmp_path):
    def first_name(problem, completion):
        return True

    def renamed(problem, completion):
        return False

    selftaught.run(None, [f"out_dir={tmp_path}", "name=r"], verifier=first_name)
    saved = (tmp_path / "r" / "config.yaml").read_text()
    selftaught.run(tmp_path / "r", verifier=renamed)  # another function object, the saved name
    assert config.to_yaml(captured["cfg"]) == saved
    assert registry.resolve_object("python:verifier.first_name") is renamed
    with pytest.raises(config.ConfigError, match="overrides cannot be applied when resuming"):
        selftaught.run(tmp_path / "r", ["iterations=9"])


def _fake_run(root):
    root.mkdir()
    (root / "config.yaml").write_text(yaml.safe_dump({"gate": {"accuracy_metric": "eval/acc"}}))
    store = RunStore(root)
    for k, acc in enumerate([0.2, 0.6, 0.5]):
        store.write_metrics(k, {"eval/acc": acc, "model": f"m{k}"})
        store.write_rows(k, "eval", [{"problem_id": f"p{k}", "correct": True}])
    store.write_rows(1, "samples", [{"sample_id": "s", "problem_id": "p1"}])
    (root / "result.json").write_text(json.dumps({"iteration": 2, "model": "m2"}))


def test_load_run_reads_metrics_best_records(tmp_path):
    _fake_run(tmp_path / "done")
    run = selftaught.load_run(tmp_path / "done")
    assert [m["eval/acc"] for m in run.metrics] == [0.2, 0.6, 0.5]
    assert run.best == {"iteration": 1, "model": "m1", "eval/acc": 0.6} and run.result["model"] == "m2"
    assert [r["problem_id"] for r in run.records("eval")] == ["p0", "p1", "p2"]
    assert run.records("samples", iteration=1) == [{"sample_id": "s", "problem_id": "p1"}] and run.records("train") == []
    assert list(run.table()["eval/acc"]) == [0.2, 0.6, 0.5]
    with pytest.raises(RunDirError, match="not a selftaught run"):
        selftaught.load_run(tmp_path)
