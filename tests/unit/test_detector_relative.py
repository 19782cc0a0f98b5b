"""Collapse rules relative to the starting model, and no stop before the first training."""

from selftaught.config import GateConfig
from selftaught.monitor import detector

REP = "collapse/eval/repetition"


def at(k, **metrics):
    return {"iteration": k, "model": f"m{k}", **metrics}


def test_an_untrained_models_short_answers_never_stop_a_run():
    # issue 17: "[high] collapse/eval/repetition above 0.3: 0.5752 (iteration 0)" ended a run before training
    h = [at(0, **{REP: 0.5752, "eval/acc": 0.1})]
    out = detector.decide(GateConfig(policy="stop"), h)
    assert out["collapse/warnings"] == [] and out["gate/stop"] == ""
    # the same repetition after training is no rise: quiet; a rise past the ceiling fires
    h.append(at(1, **{REP: 0.60, "eval/acc": 0.1, "train/steps": 10}))
    assert detector.decide(GateConfig(policy="stop"), h)["gate/stop"] == ""
    h[-1][REP] = 0.70
    out = detector.decide(GateConfig(policy="stop"), h)
    assert [w["rule"] for w in out["collapse/warnings"]] == ["repetition"]
    assert out["collapse/warnings"][0]["values"] == [0.5752, 0.7] and out["gate/stop"].startswith("stop: [high]")


def test_repetition_needs_both_the_ceiling_and_the_rise():
    cfg = GateConfig()
    assert detector.check(cfg, [at(0, **{REP: 0.05}), at(1, **{REP: 0.28})]) == []  # rose 0.23, under 0.3
    assert [w.rule for w in detector.check(cfg, [at(0, **{REP: 0.05}), at(1, **{REP: 0.31})])] == ["repetition"]
    assert detector.check(GateConfig(repetition_rise=0.3), [at(0, **{REP: 0.05}), at(1, **{REP: 0.31})]) == []


def test_gen_metrics_start_from_the_first_iteration_that_sampled():
    gen = "collapse/gen/repetition"  # iteration 1's samples come from the starting model
    h = [at(0), at(1, **{gen: 0.45}), at(2, **{gen: 0.5})]
    assert detector.check(GateConfig(), h) == []
    h.append(at(3, **{gen: 0.6}))
    (w,) = detector.check(GateConfig(), h)
    assert w.iterations == [1, 3] and w.values == [0.45, 0.6]


def test_below_start_is_critical_and_configurable():
    h = [at(0, **{"eval/acc": 0.5}), at(1, **{"eval/acc": 0.45}), at(2, **{"eval/acc": 0.38})]
    (w,) = detector.check(GateConfig(), h)
    assert (w.rule, w.severity, w.iterations, w.values) == ("below_start", "critical", [0, 2], [0.5, 0.38])
    assert detector.check(GateConfig(), h[:2]) == []  # 5 points down: within max_drop_from_start
    assert detector.check(GateConfig(max_drop_from_start=None), h) == []
    # a collapse that ended an iteration ago, with no accuracy now, does not fire now
    assert detector.check(GateConfig(), [*h, at(3)]) == []


def test_no_stop_before_the_first_training():
    # two iterations that trained nothing (no rows kept): a fall is noise of the same model, never a stop
    h = [at(0, **{"eval/acc": 0.5}), at(1, **{"eval/acc": 0.3, "train/skipped": 1}),
         at(2, **{"eval/acc": 0.3, "train/skipped": 1})]
    out = detector.decide(GateConfig(policy="rollback", patience=1), h)
    assert out["collapse/warnings"] and out["gate/stop"] == ""
    assert "no stop before the first training" in out["gate/held_back"]
    h[2].pop("train/skipped")  # now iteration 2 trained: the same warning stops the run
    out = detector.decide(GateConfig(policy="rollback"), h)
    assert out["gate/stop"].startswith("rollback: [critical]") and "gate/held_back" not in out
    assert detector.trained(h) and not detector.trained(h[:1])


def test_gen_diversity_compares_only_iterations_that_sampled_the_same_level():
    # a curriculum samples a harder level as its schedule advances: distinct-3 over 9-12 digit
    # sums is not a fall of one model's diversity (two false alarms in detector_replay.py)
    gen = "collapse/gen/distinct_3"
    values = [0.040, 0.030, 0.020, 0.010]
    walked = [at(k, **{gen: v, "curriculum/current": str(9 + k), "eval/acc": 0.44}) for k, v in enumerate(values)]
    assert detector.check(GateConfig(), walked) == []
    held = [at(k, **{gen: v, "curriculum/current": "10", "eval/acc": 0.44}) for k, v in enumerate(values)]
    (w,) = detector.check(GateConfig(), held)  # the same level every round: a real fall, it fires
    assert (w.rule, w.metric, w.iterations) == ("diversity_falling", gen, [0, 1, 2, 3])
    plain = [at(k, **{gen: v, "eval/acc": 0.44}) for k, v in enumerate(values)]  # methods with one pool
    assert [w.rule for w in detector.check(GateConfig(), plain)] == ["diversity_falling"]
    # the eval set never changes: its diversity is watched across levels
    ev = "collapse/eval/distinct_3"
    walked_eval = [at(k, **{ev: v, "curriculum/current": str(9 + k), "eval/acc": 0.44}) for k, v in enumerate(values)]
    assert [w.metric for w in detector.check(GateConfig(), walked_eval)] == [ev]


def test_accuracy_falling_needs_more_than_the_held_out_sets_noise():
    # self-play in benchmarks/results/methods_line_start.json: 0.7 points over 3 iterations fired "critical"
    drift = [at(k, **{"eval/acc": v}) for k, v in enumerate([0.3882, 0.3868, 0.384, 0.3812])]
    assert detector.check(GateConfig(), drift) == []
    assert [w.rule for w in detector.check(GateConfig(accuracy_min_change=0), drift)] == ["accuracy_falling"]
    fall = [at(k, **{"eval/acc": v}) for k, v in enumerate([0.4183, 0.41, 0.3906, 0.3463])]  # weak_proxy_hot
    assert [w.rule for w in detector.check(GateConfig(), fall)] == ["accuracy_falling"]
