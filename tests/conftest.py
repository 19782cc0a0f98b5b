import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Built models go to a per-session cache, never the user's."""
    cache = os.environ.get("SELFTAUGHT_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache")
    monkeypatch.setenv("SELFTAUGHT_CACHE", cache)
    yield Path(cache)
