import os
from pathlib import Path

import pytest

# A micro-loop of the built-in demo that runs in seconds: small splits, a tiny
# warm start, few steps. Integration tests apply these overrides (plus their own).
MICRO = [
    "iterations=2", "warm_start_steps=400", "task.seed_size=300", "task.pool_size=300",
    "task.eval_digits=[1,4]", "task.eval_per_group=8", "method.problems_per_iteration=48",
    "trainer.steps=8", "trainer.batch_size=16", "backend.batch_size=64", "eval.max_new_tokens=64",
    "method.max_new_tokens=64",
]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One model cache per test session (SELFTAUGHT_TEST_CACHE keeps it across sessions)."""
    return Path(os.environ.get("SELFTAUGHT_TEST_CACHE") or tmp_path_factory.mktemp("cache"))


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
