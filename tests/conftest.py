import os
from pathlib import Path

import pytest

# Under pytest-xdist (pyproject's addopts: one worker per core) each worker gets its
# share of the cores, so two workers do not fight over both (torch reads this at import).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
if _WORKERS > 1 and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _WORKERS))

# A micro-loop of the built-in demo that runs in seconds: small splits, a tiny
# warm start, few steps. Integration tests apply these overrides (plus their own).
MICRO = [
    "iterations=2", "warm_start_steps=250", "task.seed_size=300", "task.pool_size=300",
    "task.eval_digits=[1,4]", "task.eval_per_group=8", "method.problems_per_iteration=48",
    "trainer.steps=8", "trainer.batch_size=16", "backend.batch_size=64", "eval.max_new_tokens=64",
    "method.max_new_tokens=64",
]


def _shared_cache(basetemp: Path) -> Path:
    return basetemp / "model-cache"


def pytest_sessionstart(session):
    """Under xdist, the controller builds the micro tiny model (the integration tests'
    starting model) before the workers start, on all the cores. Without this one
    worker built it on one thread while the other, out of unit tests, waited on the
    build's file lock (133 s of a 632 s run on the 2-core AVX2 box)."""
    cfg = session.config
    if hasattr(cfg, "workerinput") or not getattr(cfg.option, "numprocesses", None) \
            or os.environ.get("SELFTAUGHT_TEST_CACHE") or cfg.option.collectonly:
        return
    from selftaught import config, registry
    from selftaught.models.loading import resolve

    cache = _shared_cache(cfg._tmp_path_factory.getbasetemp())  # the workers' base temps sit inside it
    cache.mkdir(exist_ok=True)
    run = config.load(None, [*MICRO, f"out_dir={cache / 'unused'}"])
    before = os.environ.get("SELFTAUGHT_CACHE")
    os.environ["SELFTAUGHT_CACHE"] = str(cache)
    try:
        resolve(run.model, registry.build("task", run.task), seed=run.seed, warm_start_steps=run.warm_start_steps)
    finally:
        os.environ.pop("SELFTAUGHT_CACHE") if before is None else os.environ.update(SELFTAUGHT_CACHE=before)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One model cache per test session, shared by its xdist workers (the builds take a
    file lock: one worker builds, the other waits); SELFTAUGHT_TEST_CACHE keeps it
    across sessions."""
    if os.environ.get("SELFTAUGHT_TEST_CACHE"):
        return Path(os.environ["SELFTAUGHT_TEST_CACHE"])
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the workers' base temps share a parent
        shared = _shared_cache(tmp_path_factory.getbasetemp().parent)
        shared.mkdir(exist_ok=True)
        return shared
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolated_cache(model_cache, monkeypatch):
    """Built models go to the test cache, never the user's."""
    monkeypatch.setenv("SELFTAUGHT_CACHE", str(model_cache))


@pytest.fixture
def micro(tmp_path):
    """``micro(*overrides, recipe=None)`` -> a validated RunConfig of a seconds-long run
    under tmp_path (``recipe``: a recipe file instead of the built-in default)."""
    from selftaught import config

    def make(*overrides: str, recipe=None):
        return config.load(recipe, [*MICRO, f"out_dir={tmp_path}", *overrides])

    return make


# Under xdist, files go to whichever worker is free, in collection order, so the
# longest files go first and the many short ones fill in behind them (longest
# processing time first: otherwise one worker ran a 25-30 s file alone at the end
# while the other core idled). Seconds per file from ``--durations`` on the 2-core
# AMD box (2026-12-07); files not listed are short and keep their order after these.
_LONGEST_FIRST = ["tests/integration/test_resume.py", "tests/integration/test_preference_micro.py",
                  "tests/integration/test_own_verifier.py", "tests/integration/test_methods_micro.py",
                  "tests/integration/test_prm_micro.py", "tests/integration/test_docs_your_own.py",
                  "tests/unit/test_sandbox.py", "tests/unit/test_models_loading.py", "tests/integration/test_ray.py",
                  "tests/integration/test_accelerate.py"]


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        path = item.nodeid.split("::")[0]
        return _LONGEST_FIRST.index(path) if path in _LONGEST_FIRST else len(_LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within each file is kept
