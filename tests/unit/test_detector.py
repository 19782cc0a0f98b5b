"""Collapse rules and the gate on synthetic metric histories."""

import json

import pytest

from selftaught.config import GateConfig
from selftaught.monitor import detector


def hist(**series):
    """history from columns: hist(**{"eval/acc": [...]}) -> [{"iteration": 0, ...}, ...]"""
    n = max(len(v) for v in series.values())
    rows = [{"iteration": i, "model": f"m{i}"} for i in range(n)]
    for key, values in series.items():
        for i, v in enumerate(values):
            if v is not None:
                rows[i][key] = v
    return rows


D3 = "collapse/gen/distinct_3"


def test_diversity_falling_three_in_a_row_is_high():
    w = detector.check(GateConfig(), hist(**{D3: [0.5, 0.4, 0.3, 0.2]}))
    assert [(x.rule, x.metric, x.severity) for x in w] == [("diversity_falling", D3, "high")]
    assert w[0].values == [0.5, 0.4, 0.3, 0.2] and w[0].iterations == [0, 1, 2, 3]
    assert "0.5 -> 0.4 -> 0.3 -> 0.2" in w[0].message and D3 in w[0].message


def test_diversity_falling_while_accuracy_rises_is_info_and_does_not_stop():
    h = hist(**{D3: [0.5, 0.4, 0.3, 0.2], "eval/acc": [0.3, 0.5, 0.4, 0.7]})
    w = detector.check(GateConfig(), h)
    assert [(x.rule, x.severity) for x in w] == [("diversity_falling", "info")]
    assert "while eval/acc rose 0.3 -> 0.7" in w[0].message
    assert not detector.decide(GateConfig(policy="stop"), h)["gate/stop"]
    assert detector.check(GateConfig(diversity_when_improving="high"), h)[0].severity == "high"
    flat = hist(**{D3: [0.5, 0.4, 0.3, 0.2], "eval/acc": [0.5, 0.6, 0.6, 0.5]})  # no better than at the start
    assert detector.check(GateConfig(), flat)[0].severity == "high"
    assert detector.decide(GateConfig(policy="stop"), flat)["gate/stop"]


@pytest.mark.parametrize("values", [[0.5, 0.4, 0.3], [0.5, 0.4, 0.45, 0.3], [0.5, 0.4, 0.3, 0.3], [0.5, 0.4, 0.3, 0.2, 0.25]])
def test_diversity_not_falling_three_in_a_row_is_quiet(values):
    assert detector.check(GateConfig(), hist(**{D3: values})) == []


def test_thresholds_are_configurable():
    h = hist(**{D3: [0.5, 0.4, 0.3]})
    assert detector.check(GateConfig(falling_for=2), h)[0].values == [0.5, 0.4, 0.3]
    assert detector.check(GateConfig(falling_for=2, falling_tolerance=0.2), h) == []
    assert detector.check(GateConfig(falling_for=2, diversity_metrics=["other"]), h) == []


def test_rising_self_bleu_counts_as_falling_diversity():
    h = hist(**{"collapse/gen/self_bleu": [0.2, 0.3, 0.4, 0.5]})
    assert detector.check(GateConfig(), h) == []  # not watched by default
    w = detector.check(GateConfig(diversity_metrics=["collapse/gen/self_bleu"]), h)
    assert w[0].rule == "diversity_falling" and "rose" in w[0].message


def test_accuracy_falling_is_critical_and_needs_the_latest_iteration():
    w = detector.check(GateConfig(max_drop_from_start=None), hist(**{"eval/acc": [0.9, 0.8, 0.7, 0.6]}))
    assert [(x.rule, x.severity, x.values) for x in w] == [("accuracy_falling", "critical", [0.9, 0.8, 0.7, 0.6])]
    # the fall ended one iteration ago, and the latest has no accuracy: nothing fires now
    assert detector.check(GateConfig(), hist(**{"eval/acc": [0.9, 0.8, 0.7, 0.6, None], D3: [1, 1, 1, 1, 1]})) == []


def test_repetition_above_threshold_is_high():
    rep = "collapse/gen/repetition"
    w = detector.check(GateConfig(), hist(**{rep: [0.1, 0.31]}))
    assert [(x.rule, x.metric, x.severity, x.values) for x in w] == [("repetition", rep, "high", [0.1, 0.31])]  # start, now
    assert detector.check(GateConfig(), hist(**{rep: [0.5, 0.3]})) == []  # only the latest counts; 0.3 is not above
    assert detector.check(GateConfig(repetition_max=0.2), hist(**{rep: [0.1, 0.25]}))[0].rule == "repetition"


def test_policies():
    h = hist(**{D3: [0.5, 0.4, 0.3, 0.2], "eval/acc": [0.4, 0.4, 0.4, 0.4]})
    assert detector.decide(GateConfig(policy="warn"), h)["gate/stop"] == ""
    assert len(detector.decide(GateConfig(policy="warn"), h)["collapse/warnings"]) == 1
    stop = detector.decide(GateConfig(policy="stop"), h)["gate/stop"]
    assert stop.startswith("stop: [high]") and D3 in stop
    assert detector.decide(GateConfig(policy="stop", stop_severity="critical"), h)["gate/stop"] == ""
    crit = hist(**{"eval/acc": [0.9, 0.8, 0.7, 0.6]})
    assert detector.decide(GateConfig(policy="rollback", stop_severity="critical"), crit)["gate/stop"].startswith("rollback: [critical]")


def test_early_stopping_with_patience():
    h = hist(**{"eval/acc": [0.2, 0.5, 0.4, 0.45]})
    assert detector.early_stop(h, "eval/acc", 2).startswith("eval/acc has not improved on 0.5 for 2")
    assert detector.early_stop(h, "eval/acc", 3) == ""  # 0.5 came within the last 3
    assert detector.early_stop(h, "eval/acc", None) == ""
    assert detector.early_stop(h[:2], "eval/acc", 1, min_delta=0.35).startswith("eval/acc has not improved on 0.2")
    assert detector.decide(GateConfig(patience=2), h)["gate/stop"].endswith("(patience)")  # any policy


def test_best_iteration_prefers_the_earliest_on_ties():
    assert detector.best_iteration(hist(**{"eval/acc": [0.1, 0.5, 0.3, 0.5]})) == 1
    assert detector.best_iteration(hist(**{"x": [1]})) is None


def test_result_pointer(tmp_path):
    h = hist(**{"eval/acc": [0.1, 0.6, 0.4]})
    r = detector.write_result(tmp_path, GateConfig(policy="rollback"), h, "rollback: why")
    assert (r["iteration"], r["model"], r["stopped"]) == (1, "m1", "rollback: why")
    assert json.loads((tmp_path / "result.json").read_text())["iteration"] == 1
    assert detector.write_result(tmp_path, GateConfig(policy="warn"), h, "")["iteration"] == 2


def test_a_diversity_drift_of_a_few_percent_is_quiet():
    # V-STaR's flat top-1 arm: distinct-3 fell 3 iterations in a row, 4% in all
    drift = hist(**{D3: [0.05599, 0.05471, 0.05409, 0.05379]})
    assert detector.check(GateConfig(), drift) == []
    assert [x.rule for x in detector.check(GateConfig(diversity_min_change=0), drift)] == ["diversity_falling"]
    assert [x.rule for x in detector.check(GateConfig(diversity_min_change=0.03), drift)] == ["diversity_falling"]
