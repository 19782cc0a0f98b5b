"""report_to: loop-level metrics to TensorBoard (real), W&B and MLflow (their dispatch, with fake modules)."""

import sys
from types import SimpleNamespace

import pytest

from selftaught import config
from selftaught.report import after_each_iteration, trackers
from selftaught.report.trackers import TrackerError, Trackers

METRICS = {"iteration": 1, "eval/acc": 0.5, "eval/pass@4": 0.75, "model": "iter_001/checkpoint", "gate/stop": "",
           "collapse/warnings": [], "train/steps": 10, "flag": True}


def test_config_field():
    assert config.load(None).report_to == []
    assert config.load(None, ["report_to=tensorboard"]).report_to == ["tensorboard"]
    with pytest.raises(config.ConfigError, match="report_to"):
        config.load(None, ["report_to=[neptune]"])


def test_missing_library_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(trackers.MODULES, "wandb", ("no_such_module_xyz", "wandb"))
    with pytest.raises(TrackerError, match="pip install wandb"):
        Trackers(["wandb"], "/nonexistent", "x", {})


def test_hook_checks_trackers_before_the_run(monkeypatch, tmp_path):
    monkeypatch.setitem(trackers.MODULES, "mlflow", ("no_such_module_xyz", "mlflow"))
    cfg = SimpleNamespace(name="x", iterations=1, report_to=["mlflow"], model_dump=lambda mode: {})
    with pytest.raises(TrackerError, match="mlflow"):
        after_each_iteration(cfg, SimpleNamespace(root=tmp_path))


def test_only_numbers_are_logged():
    assert trackers.numeric(METRICS) == {"eval/acc": 0.5, "eval/pass@4": 0.75, "train/steps": 10.0}


def test_tensorboard_event_file(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    t = Trackers(["tensorboard"], tmp_path, "run", {"trainer": {"lr": 0.1}})
    t.log(METRICS, step=1)
    t.log({**METRICS, "iteration": 2, "eval/acc": 0.625}, step=2)
    t.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    ea = EventAccumulator(str(tmp_path / "tensorboard"))
    ea.Reload()
    assert [(e.step, e.value) for e in ea.Scalars("eval/acc")] == [(1, 0.5), (2, 0.625)]
    assert "model" not in ea.Tags()["scalars"]


def test_wandb_and_mlflow_dispatch(monkeypatch, tmp_path):
    calls = []
    run = SimpleNamespace(log=lambda m, step: calls.append(("wandb", step, m)), finish=lambda: calls.append(("finish",)))
    wandb = SimpleNamespace(init=lambda **kw: calls.append(("init", kw["name"])) or run)
    mlflow = SimpleNamespace(start_run=lambda run_name: calls.append(("start", run_name)),
                             log_params=lambda p: calls.append(("params", p)),
                             log_metrics=lambda m, step: calls.append(("mlflow", step, m)),
                             end_run=lambda: calls.append(("end",)))
    for name, mod in (("wandb", wandb), ("mlflow", mlflow)):
        monkeypatch.setitem(sys.modules, name, mod)
        monkeypatch.setattr(trackers.importlib.util, "find_spec", lambda n: object())
    t = Trackers(["wandb", "mlflow"], tmp_path, "run", {"trainer": {"lr": 0.1}})
    assert calls == []  # nothing opened before the first iteration ends
    t.log(METRICS, step=3)
    t.close()
    assert ("init", "run") in calls and ("start", "run") in calls and ("params", {"trainer.lr": "0.1"}) in calls
    assert ("wandb", 3, {"eval/acc": 0.5, "eval/pass@4": 0.75, "train/steps": 10.0}) in calls
    assert ("mlflow", 3, {"eval/acc": 0.5, "eval/pass_4": 0.75, "train/steps": 10.0}) in calls  # @ is not allowed
    assert calls[-2:] == [("finish",), ("end",)]


def test_resumed_run_does_not_log_finished_iterations_again(tmp_path, monkeypatch):
    import warnings

    from selftaught.report import after_each_iteration
    from selftaught.report.trackers import Trackers
    from selftaught.store import RunStore

    cfg = config.load(None, ["iterations=2"])
    store = RunStore(tmp_path / "run")
    store.create_or_check(config.to_yaml(cfg))
    store.write_metrics(0, {"eval/acc": 0.5})  # finished by an earlier process
    logged = []
    monkeypatch.setattr(Trackers, "log", lambda self, metrics, step: logged.append(step))
    hook = after_each_iteration(cfg, store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report of this bare run dir is beside the point
        hook(store, {"iteration": 0, "eval/acc": 0.5})  # replayed on resume
        hook(store, {"iteration": 1, "eval/acc": 0.6})
    assert logged == [1]
