"""Process supervision on hand-made records: step splitting and the exact step check,
Math-Shepherd labels from rollouts, the PRM (trained on a tiny random model), the
STaR + PRM selection rule, and the over-optimization rule of the gate."""

import random
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from selftaught import config
from selftaught.config import GateConfig
from selftaught.iteration import Iteration
from selftaught.methods import star_prm
from selftaught.monitor import detector, overopt
from selftaught.tasks import Task, arithmetic
from selftaught.verifiers import prm
from scripted import Scripted  # tests/unit/scripted.py

TASK = arithmetic.build(arithmetic.Config(seed_size=3, pool_size=3, eval_per_group=2, eval_digits=(1, 2)))
P = arithmetic._problem(12, 34, labeled=False)  # 21+43 reversed; answer 46
GOOD = arithmetic.scratchpad(12, 34)  # "2+4+0=6,0\n1+3+0=4,0\n=64"
BAD_STEP = "2+4+0=6,0\n1+3+0=5,0\n=64"  # right answer (copied from a hint), wrong second line


def make_it(reply=lambda p, i: "", k=1, out_dir="unused", method=None):
    cfg = SimpleNamespace(seed=0, mix=None, method=method, trainer=SimpleNamespace(steps=1))
    return Iteration(k, cfg, TASK, Scripted(reply), None, "BASE", "LAST", "h", str(out_dir), {P.id: P})


def trace(completion, sid="1/sample/12+34/0", phase="sample"):
    s = TASK.verify(P, completion)
    return {"sample_id": sid, "problem_id": P.id, "iteration": 1, "phase": phase, "prompt": TASK.prompt(P),
            "completion": completion, "correct": s.correct, "reward": s.reward, "verify_reason": s.reason,
            "steps_ok": s.info["steps_ok"]}


def test_steps_concatenate_and_the_exact_check_is_a_prefix_check():
    assert Task.steps(None, "a\n\nb\nc") == ["a\n\n", "b\n", "c"]  # a blank line joins the step before
    assert "".join(TASK.steps(BAD_STEP)) == BAD_STEP
    assert TASK.step_checks(P, GOOD) == [True, True, True]
    assert TASK.step_checks(P, BAD_STEP) == [True, False, False]  # wrong from the first wrong line on
    assert TASK.step_checks(P, GOOD + "\n0+0+0=0,0") == [True, True, True, False]  # past the working
    assert Task.step_checks(None, P, GOOD) is None  # tasks without an exact check


def test_rollouts_force_each_prefix_and_labels_are_hard_and_soft():
    # a continuation reaches the answer only from a right prefix, and then only for even i
    def reply(prompt, i):
        return "1+3+0=4,0\n=64" if prompt.endswith("2+4+0=6,0\n") and i % 2 == 0 else "=99"

    it = make_it(reply)
    t = trace(BAD_STEP)
    rows = it.score(prm.rollouts(it, [t], 4, temperature=0.7, max_new_tokens=20))
    assert it.backend.prompts == [TASK.prompt(P) + "2+4+0=6,0\n", TASK.prompt(P) + "2+4+0=6,0\n1+3+0=5,0\n"]
    assert len({r["sample_id"] for r in rows}) == 8 and all(r["rollout_of"] == t["sample_id"] for r in rows)
    assert all(r["completion"].startswith(r["rollout_prefix"]) and r["prompt"] == TASK.prompt(P) for r in rows)
    assert [r["correct"] for r in rows[:4]] == [True, False, True, False]
    labels = prm.step_labels(TASK, it.problem_of, [t], rows)
    assert [(l["step"], l["hard"], l["soft"], l["source"], l["exact"]) for l in labels] == [
        (1, 1.0, 0.5, "rollout", True), (2, 0.0, 0.0, "rollout", False), (3, 1.0, 1.0, "verdict", False)]
    assert [l["rollouts"] for l in labels] == [4, 4, 0]  # the verdict is the trace's own, no rollouts
    q = prm.label_quality(labels, "hard")  # the rollout labels against the exact check
    assert q["prm/label_hard_precision"] == 1.0 and q["prm/label_hard_recall"] == 1.0


def test_checker_labels_are_the_exact_check_with_no_rollouts(tmp_path, monkeypatch):
    t = trace(BAD_STEP)
    labels = prm.checker_labels(TASK, lambda r: P, [t])
    assert [(l["step"], l["hard"], l["soft"], l["source"], l["rollouts"]) for l in labels] == [
        (1, 1.0, 1.0, "checker", 0), (2, 0.0, 0.0, "checker", 0), (3, 0.0, 0.0, "checker", 0)]
    assert labels[1]["prefix"] == "2+4+0=6,0\n1+3+0=5,0\n" and labels[2]["exact"] is False
    assert prm.label_quality(labels, "hard") == {}  # nothing to grade: the labels are the check
    long = "0+0+0=0,0\n" * (prm.MAX_STEPS + 4) + "=0"  # the first MAX_STEPS steps and the last, as rollouts label
    assert [l["step"] for l in prm.checker_labels(TASK, lambda r: P, [trace(long)])] == [
        *range(1, prm.MAX_STEPS + 1), prm.MAX_STEPS + 5]
    with pytest.raises(ValueError, match="exact step checks"):
        prm.checker_labels(SimpleNamespace(name="gsm8k", steps=TASK.steps, step_checks=lambda p, c: None),
                           lambda r: P, [t])
    # the method samples no rollouts and trains its PRM on these labels
    method = star_prm.build(star_prm.Config(rationalize=False, label_traces=10, labels="checker"))
    it = make_it(lambda p, i: BAD_STEP)
    rows = method.generate(it, [P])
    assert {r["phase"] for r in rows} == {"sample"} and it.backend.prompts == [TASK.prompt(P)]
    (rows, _, _), trained = star_prm_select([trace(BAD_STEP), trace(GOOD, "1/sample/12+34/1")],
                                            {"1/sample/12+34/0": 0.2, "1/sample/12+34/1": 0.9}, tmp_path, monkeypatch,
                                            labels="checker")
    assert [l["hard"] for l in trained[0][1]] == [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert star_prm.Config(labels="checker").needs(5).task == ("step_checks",) and star_prm.Config().needs(5).task == ()
    from selftaught.methods import check_task

    check_task(star_prm.Config(labels="checker"), 5, TASK)  # arithmetic checks its steps
    with pytest.raises(ValueError, match="step_checks"):
        check_task(star_prm.Config(labels="checker"), 5, SimpleNamespace(name="gsm8k", capabilities=frozenset()))


def test_aggregate_and_step_quality():
    assert prm.aggregate([0.9, 0.5, 0.8], "min") == 0.5
    assert prm.aggregate([0.5, 0.5], "prod") == 0.25 and prm.aggregate([]) == 0.0
    q = prm.step_quality([[0.9, 0.2, 0.1], [0.9, 0.9]], [[True, False, False], [True, False]], 0.5)
    # flagged: 2 (both wrong); wrong steps: 3 -> precision 1, recall 2/3
    assert q["prm/step_precision"] == 1.0 and q["prm/step_recall"] == pytest.approx(2 / 3)
    assert q["prm/step_n"] == 5 and prm.step_quality([[0.1]], [None]) == {}


@pytest.fixture(scope="module")
def random_tiny(tmp_path_factory) -> str:
    """An untrained tiny Llama of the built-in architecture (no warm start: seconds)."""
    from selftaught.models import tiny

    path = tmp_path_factory.mktemp("tiny") / "init"
    tiny._init_model(TASK, 0).save_pretrained(path)
    tiny.build_tokenizer(TASK.alphabet).save_pretrained(path)
    return str(path)


def test_prm_learns_step_labels_and_scores_every_step(random_tiny, tmp_path):
    wrong = "2+4+0=6,0\n9+9+9=9,9\n=64"
    labels = []
    for n, c in enumerate([GOOD, wrong] * 8):
        exact = TASK.step_checks(P, c)
        steps = TASK.steps(c)
        labels += [{"trace_id": f"t{n}", "step": j + 1, "prefix": "".join(steps[: j + 1]), "prompt": TASK.prompt(P),
                    "hard": float(exact[j]), "soft": float(exact[j]), "source": "rollout", "exact": exact[j]}
                   for j in range(len(steps))]
    m = prm.train(random_tiny, labels, tmp_path / "prm", TASK, steps=60, lr=3e-3, batch_size=8, seed=0)
    assert (tmp_path / "prm" / "config.json").is_file() and not list(tmp_path.glob(".prm.tmp*"))
    assert m["prm/train_traces"] == 16 and m["prm/train_labels"] == 48
    good, bad = prm.step_scores(str(tmp_path / "prm"), TASK, [TASK.prompt(P)] * 2, [GOOD, wrong])
    assert len(good) == len(bad) == 3  # one score per step
    assert min(good) > 0.5 > max(bad[1:]) and bad[0] > 0.5  # the first step of `wrong` is right
    rows = [trace(GOOD), trace(wrong)]
    assert prm.rewards(str(tmp_path / "prm"), TASK, rows) == [min(good), min(bad)]
    assert rows[0]["prm_steps"] == [round(x, 6) for x in good]


def star_prm_select(rows, scores, tmp_path, monkeypatch, k=1, **cfg):
    """STaR + PRM's select (iteration ``k``) with the PRM replaced by fixed trace scores."""
    method = star_prm.build(star_prm.Config(rationalize=False, label_traces=10, **cfg))
    trained = []
    monkeypatch.setattr(prm, "train", lambda *a, **kw: trained.append(a) or {"prm/train_loss": 0.1})

    def rewards(d, task, rs, how="min"):
        for r in rs:
            r["prm_steps"] = [scores[r["sample_id"]]] * len(task.steps(r["completion"]))
        return [scores[r["sample_id"]] for r in rs]

    monkeypatch.setattr(prm, "rewards", rewards)
    it = make_it(k=k, out_dir=tmp_path / f"iter_{k:03d}" / "checkpoint")
    (tmp_path / f"iter_{k:03d}").mkdir(exist_ok=True)
    return method.select(it, rows), trained


def test_star_prm_keeps_correct_traces_the_prm_approves(tmp_path, monkeypatch):
    rows = [trace(BAD_STEP, "1/sample/12+34/0"), trace(GOOD, "1/sample/12+34/1")]
    roll = {**trace(GOOD, "1/sample/12+34/0/step1/0"), "phase": prm.ROLLOUT, "rollout_of": "1/sample/12+34/0",
            "rollout_step": 1, "rollout_prefix": "2+4+0=6,0\n"}
    (rows, train, m), trained = star_prm_select(rows + [roll], {"1/sample/12+34/0": 0.2, "1/sample/12+34/1": 0.9},
                                                tmp_path, monkeypatch)
    assert [r["kept"] for r in rows] == [False, True, False]
    assert rows[0]["select_reason"] == "rejected: PRM score 0.200 below 0.5"
    assert rows[2]["select_reason"].startswith("step-label rollout")
    assert [t["sample_id"] for t in train] == ["1/sample/12+34/1"] and len(trained) == 1
    labels = pq.read_table(tmp_path / "iter_001" / "steps.parquet").to_pylist()
    assert {l["trace_id"] for l in labels} == {"1/sample/12+34/0", "1/sample/12+34/1"}
    assert m["select/prm_rejected_correct"] == 1 and m["prm/train_loss"] == 0.1


def test_label_history_trains_the_prm_on_every_iteration_s_labels(tmp_path, monkeypatch):
    def rows_of(k):
        ids = [f"{k}/sample/12+34/0", f"{k}/sample/12+34/1"]
        return [dict(trace(BAD_STEP, ids[0]), iteration=k), dict(trace(GOOD, ids[1]), iteration=k)], \
            {ids[0]: 0.2, ids[1]: 0.9}

    rows, scores = rows_of(1)
    star_prm_select(rows, scores, tmp_path, monkeypatch, label_history=True)
    first = pq.read_table(tmp_path / "iter_001" / "steps.parquet").to_pylist()
    rows, scores = rows_of(2)
    (_, _, m), trained = star_prm_select(rows, scores, tmp_path, monkeypatch, k=2, label_history=True)
    labels = trained[0][1]  # prm.train(init, labels, ...)
    assert {l["iteration"] for l in labels} == {1, 2} and len(labels) == 2 * len(first)
    assert labels[: len(first)] == first and m["prm/train_earlier_labels"] == len(first)
    (_, _, m), trained = star_prm_select(rows, scores, tmp_path, monkeypatch, k=2)  # default: this iteration's only
    assert {l["iteration"] for l in trained[0][1]} == {2} and m["prm/train_earlier_labels"] == 0


def test_label_correct_draws_that_share_of_the_labeled_traces_from_correct_ones():
    traces = [{"sample_id": f"s{i}", "correct": i % 5 == 0} for i in range(100)]  # 20 correct
    def pick(n=20, **cfg):
        return star_prm.build(star_prm.Config(label_traces=n, **cfg))._to_label(make_it(), traces)

    half = pick(label_correct=0.5)
    assert sum(t["correct"] for t in half) == 10 and len(half) == 20
    assert [t["sample_id"] for t in half] == sorted((t["sample_id"] for t in half), key=lambda x: int(x[1:]))
    assert half == pick(label_correct=0.5)  # seeded: generate and select choose the same traces
    assert sum(t["correct"] for t in pick(label_correct=1.0)) == 20
    few = pick(30, label_correct=1.0)
    assert sum(t["correct"] for t in few) == 20 and len(few) == 30  # only 20 correct: the rest from the others
    plain = pick()
    assert len(plain) == 20 and sum(t["correct"] for t in plain) < 10  # a plain random sample: ~4 correct


def test_label_spread_group_draws_the_labeled_traces_evenly_over_the_groups():
    # 60 correct traces of 1 digit, 30 of 4, 4 of 7; 20 wrong ones of 7 digits
    groups = [1] * 60 + [4] * 30 + [7] * 4
    traces = [{"sample_id": f"s{i}", "group": g, "correct": True} for i, g in enumerate(groups)]
    traces += [{"sample_id": f"w{i}", "group": 7, "correct": False} for i in range(20)]

    def pick(**cfg):
        return star_prm.build(star_prm.Config(label_traces=12, label_correct=1.0, **cfg))._to_label(make_it(), traces)

    even = pick(label_spread="group")
    assert sorted(t["group"] for t in even) == [1, 1, 1, 1, 4, 4, 4, 4, 7, 7, 7, 7] and all(t["correct"] for t in even)
    assert even == pick(label_spread="group")  # seeded
    assert sum(t["group"] == 7 for t in pick()) < 4  # in proportion: 4 of 94 are 7-digit traces
    assert len(star_prm.spread(random.Random(0), range(5), 9, lambda i: i % 2)) == 5  # fewer than asked: all


def row(pid, group, kept, correct=True, score=0.1, phase="sample"):
    return {"sample_id": f"{phase}/{pid}", "problem_id": pid, "group": group, "phase": phase, "kept": kept,
            "correct": correct, "prm_score": score, "prm_keep": score}


def test_baseline_group_thresholds_the_score_against_the_group_s_value(tmp_path, monkeypatch):
    # one problem, 5 unhinted samples, 1 correct: the group's value (1 + 1) / (5 + 2) = 0.286
    rows = [trace("=99", f"1/sample/12+34/{i}") for i in range(4)] + [trace(GOOD, "1/sample/12+34/4")]
    scores = {r["sample_id"]: 0.01 for r in rows} | {"1/sample/12+34/4": 0.2}
    (plain, _, m0), _ = star_prm_select([dict(r) for r in rows], scores, tmp_path, monkeypatch)
    assert not plain[4]["kept"] and plain[4]["select_reason"] == "rejected: PRM score 0.200 below 0.5"
    assert plain[4]["prm_keep"] == 0.2 and "prm_base" not in plain[4] and m0["select/prm_rejected_correct"] == 1
    (rel, train, m), _ = star_prm_select([dict(r) for r in rows], scores, tmp_path, monkeypatch, baseline="group")
    assert rel[4]["kept"] and [t["sample_id"] for t in train] == ["1/sample/12+34/4"]
    assert rel[4]["prm_base"] == pytest.approx(2 / 7) and rel[4]["prm_keep"] == pytest.approx(0.7)
    assert rel[4]["prm_score"] == 0.2 and m["select/prm_rejected_correct"] == 0  # the raw score is kept as it was
    scores["1/sample/12+34/4"] = 0.1  # 0.1 / 0.286 = 0.35: below half the group's value
    (rel, _, _), _ = star_prm_select([dict(r) for r in rows], scores, tmp_path, monkeypatch, baseline="group")
    assert not rel[4]["kept"] and rel[4]["select_reason"] == "rejected: PRM score 0.100 (/ group value 0.286) below 0.5"
    v = star_prm.group_values([row("a", "2", False), row("b", "2", False, correct=False),
                               row("c", "5", False, phase="rationalize")])
    assert v == {"2": 0.5, "5": 0.5}  # (1 + 1) / (2 + 2); group 5 has no unhinted sample: 0.5
    assert star_prm.group_values([row(f"x{i}", "7", False, correct=False) for i in range(98)]) == {"7": 0.01}
    with pytest.raises(ValueError, match="baseline"):
        star_prm.Config(require_correct=False, rationalize=False, baseline="group")


def test_flagged_traces_are_admitted_to_the_thinnest_groups_up_to_the_share():
    # 18 problems of group 2 have a kept trace; groups 5 and 6 have none (the frontier)
    rows = [row(f"a{i}", "2", True, score=0.9) for i in range(18)]
    rows += [row("b1", "5", False, score=0.1), row("b2", "5", False, score=0.3),  # b2: the higher PRM score
             row("c1", "6", False, correct=False), row("c2", "6", False, phase="rationalize"),
             row("c2", "6", False, score=0.4, phase="sample"), row("d", "2", False),
             row("a0", "2", False, score=0.2)]  # a0's problem is already kept
    n = star_prm.admit_flagged(rows, 0.1, lambda r: r["correct"])
    kept = [r["sample_id"] for r in rows[18:] if r["kept"]]
    assert n == 2 == len(kept)  # 2 <= 0.1 * (18 + 2): the share holds
    assert kept == ["sample/b2", "sample/c2"]  # one per frontier group, sampled before rationalized
    assert "admitted" in rows[19]["select_reason"]
    assert star_prm.admit_flagged([dict(r, kept=False) for r in rows[:18]] + rows[18:], 0.1, bool) == 0  # none kept
    more = [dict(r) for r in rows[:18] * 3]
    for i, r in enumerate(more):
        r["problem_id"] = f"x{i}"
    # 54 kept leave room for 6: all five problems with a correct flagged trace (b1, b2, c2, d, a0) go in
    assert star_prm.admit_flagged(more + [dict(r, kept=False) for r in rows[18:]], 0.1, lambda r: r["correct"]) == 5
    assert star_prm.admit_flagged([dict(r) for r in rows[:18]] + [dict(r, kept=False) for r in rows[18:]], 0.0,
                                  lambda r: r["correct"]) == 0  # share 0: drop them all, as before


def test_trace_quality_counts_only_correct_traces():
    ts = [{"correct": True, "steps_ok": True, "prm_score": 0.9}, {"correct": True, "steps_ok": True, "prm_score": 0.1},
          {"correct": True, "steps_ok": False, "prm_score": 0.2}, {"correct": False, "steps_ok": False, "prm_score": 0.0}]
    q = prm.trace_quality(ts, 0.5)
    assert q == {"prm/valid_rejected_frac": 0.5, "prm/valid_n": 2, "prm/wrong_rejected_frac": 1.0, "prm/wrong_n": 1}
    assert prm.trace_quality([{"correct": True, "steps_ok": None, "prm_score": 0.1}]) == {}


def test_star_prm_without_gold_keeps_the_top_prm_score(tmp_path, monkeypatch):
    rows = [trace("=99", "1/sample/12+34/0"), trace(GOOD, "1/sample/12+34/1")]
    (rows, train, _), _ = star_prm_select(rows, {"1/sample/12+34/0": 0.8, "1/sample/12+34/1": 0.6}, tmp_path,
                                          monkeypatch, require_correct=False)
    assert [r["kept"] for r in rows] == [True, False]  # the proxy, not the gold answer, decides
    with pytest.raises(ValueError, match="rationalize"):
        star_prm.Config(require_correct=False)


def test_scorer_prm_needs_a_model_dir():
    with pytest.raises(config.ConfigError, match="prm"):
        config.load(None, ["method.type=best_of_n", "~method.rationalize", "~method.require_valid_steps",
                           "method.scorer=prm"])


def test_the_default_demo_has_no_proxy_to_watch():
    cfg = config.load(None)
    assert overopt.proxy(make_it(method=cfg.method)) is None
    assert overopt.measure(make_it(method=cfg.method), [{"phase": "eval", "correct": True}]) == {}
    bon = config.load(None, ["method.type=best_of_n", "~method.rationalize", "~method.require_valid_steps",
                             f"method.scorer={Path(__file__).resolve()}:longer"]).method
    rows = [{"completion": "x" * 8, "prompt": "p", "problem_id": P.id}, {"completion": "", "prompt": "p", "problem_id": P.id}]
    assert overopt.proxy(make_it(method=bon))(rows) == [0.8, 0.0]


def longer(problem, completion):  # a deliberately weak scorer: length (used above by path)
    return len(completion) / 10


def hist(proxy, gold, kl=None):
    out = []
    for i, (p, g) in enumerate(zip(proxy, gold)):
        out.append({"iteration": i, "overopt/proxy": p, "overopt/gold": g, **({"overopt/kl": kl[i]} if kl else {})})
    return out


def test_overopt_fires_when_proxy_rises_and_gold_falls_falling_for_times():
    cfg = GateConfig(falling_for=2)
    w = overopt.check(cfg, hist([0.5, 0.6, 0.7], [0.8, 0.7, 0.6], kl=[0.0, 0.1, 0.3]))
    assert len(w) == 1 and w[0].rule == "overoptimization" and w[0].severity == "high" and w[0].iterations == [0, 1, 2]
    assert "0.8 -> 0.7 -> 0.6" in w[0].message and "KL" in w[0].message
    assert not overopt.check(cfg, hist([0.5, 0.6, 0.7], [0.6, 0.7, 0.8]))  # both rise: the proxy is right
    assert not overopt.check(cfg, hist([0.5, 0.6, 0.7], [0.8, 0.81, 0.6]))  # gold fell once only
    assert not overopt.check(cfg, hist([0.7, 0.6, 0.7], [0.8, 0.7, 0.6]))  # the proxy did not rise throughout
    assert not overopt.check(GateConfig(falling_for=2, falling_tolerance=0.2), hist([0.5, 0.6, 0.7], [0.8, 0.7, 0.6]))
    assert not overopt.check(GateConfig(), hist([0.5, 0.6, 0.7], [0.8, 0.7, 0.6]))  # falling_for=3 needs 4 points


def test_overopt_warning_goes_through_the_gate():
    h = hist([0.5, 0.6, 0.7], [0.8, 0.7, 0.6])
    warned = detector.decide(GateConfig(falling_for=2), h)
    assert [w["rule"] for w in warned["collapse/warnings"]] == ["overoptimization"] and not warned["gate/stop"]
    assert detector.decide(GateConfig(falling_for=2, policy="stop"), h)["gate/stop"].startswith("stop: [high] proxy")
