"""The benchmark scripts' own bookkeeping (benchmarks/ is not a package: imported by path)."""

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.append(str(BENCH))  # appended: never shadows an installed module

import methods  # noqa: E402


def test_methods_refuses_to_merge_arms_run_with_other_overrides():
    old = json.loads((BENCH / "results" / "methods.json").read_text())  # the 150-step table
    assert "trainer.steps=150" in old["common_overrides"]
    assert "other common overrides" in methods.unmergeable(old)
    same = {"common_overrides": methods.COMMON, "methods": {"star": {}}}
    assert methods.unmergeable(same) is None and methods.unmergeable({}) is None
    assert methods.unmergeable({"common_overrides": ["x"], "smollm2": {"star": {}}}) is None  # no tiny arms to mislabel
