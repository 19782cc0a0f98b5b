"""Self-Rewarding's EFT + IFT seed stage (methods/_eft.py) on hand-made records:
target judgements follow the verifier's verdict and parse with the judge's own
parser, balancing, IFT targets, which problems are used (never held-out ones, and
never again as Self-Rewarding prompts), and the stage wiring through a real
Iteration with a scripted backend."""

import re
from types import SimpleNamespace

import pytest

from selftaught import templates
from selftaught.config import MixConfig
from selftaught.iteration import Iteration
from selftaught.methods import _eft, self_rewarding
from selftaught.records import Problem, Score
from selftaught.tasks import _qa
from selftaught.verifiers.judge import parse_score
from scripted import Scripted  # tests/unit/scripted.py

TEMPLATE = templates.load("judge_additive", ("prompt", "response"))


def _verify(p: Problem, completion: str) -> Score:
    got = _qa.final_answer(completion)
    return Score(float(got == p.answer), got == p.answer, got, "")


POOL = [Problem(f"p{i}", f"What is {i} + 1?", str(i + 1)) for i in range(20)]
HELD = [Problem(f"e{i}", f"What is {i} + 100?", str(i + 100)) for i in range(5)]
TASK = _qa.QATask("toy", POOL, HELD, _verify)  # no seed set: EFT draws from the pool


def cand(pid, i, correct, answer="7", text=None):
    return {"sample_id": f"1/sample/{pid}/{i}", "problem_id": pid, "prompt": f"Q {pid}",
            "completion": text or f"so it is {answer}. Answer: {answer}", "correct": correct, "answer": answer}


@pytest.mark.parametrize("justification", ["solve", "verdict"])
def test_target_judgements_follow_the_gold_verdict_and_parse(justification):
    cfg = _eft.EFT(justification=justification)
    right = _eft.target_judgement(cand("p1", 0, True, "2"), "2", cfg)
    wrong = _eft.target_judgement(cand("p1", 1, False, "3"), "2", cfg)
    missing = _eft.target_judgement(cand("p1", 2, False, None), "2", cfg)
    assert parse_score(right) == 5.0 and parse_score(wrong) == 1.0 and parse_score(missing) == 1.0
    assert "correct" in right and "wrong" in wrong and "missing" in missing
    assert ("The correct answer is 2." in wrong) == (justification == "solve")
    other = _eft.EFT(right_score=4, wrong_score=0)
    assert parse_score(_eft.target_judgement(cand("p1", 0, True), "7", other)) == 4.0
    assert parse_score(_eft.target_judgement(cand("p1", 0, False), "7", other)) == 0.0


def test_examples_judge_the_candidates_balance_verdicts_and_add_ift():
    problems = {"p1": Problem("p1", "Q1", "2"), "p2": Problem("p2", "Q2", "3", rationale="1 + 2 = 3\nAnswer: 3")}
    rows = [cand("p1", 0, True, "2"), cand("p1", 1, False, "5"), cand("p1", 2, False, "6"),
            cand("p2", 0, False, "4"), cand("p2", 1, False, "1")]
    train, why = _eft.examples(rows, problems, lambda p: f"plain {p.id}", _eft.EFT(), TEMPLATE, seed=0)
    eft = [t for t in train if t["source"] == "eft"]
    assert sum(t["gold_correct"] for t in eft) == 1 and len(eft) == 2  # 1 right, so 1 of the 4 wrong kept
    by_id = {r["sample_id"]: r for r in rows}
    for t in eft:
        r = by_id[t["sample_id"]]
        assert t["prompt"] == templates.fill(TEMPLATE, prompt=r["prompt"], response=r["completion"])
        assert parse_score(t["completion"]) == (5.0 if r["correct"] else 1.0)
        assert f"The correct answer is {problems[r['problem_id']].answer}." in t["completion"]
    assert sum(w.startswith("dropped: balancing") for w in why.values()) == 3 and set(why) == set(by_id)
    again, _ = _eft.examples(rows, problems, lambda p: f"plain {p.id}", _eft.EFT(), TEMPLATE, seed=0)
    assert again == train  # seeded
    ift = {t["problem_id"]: t for t in train if t["source"] == "ift"}
    assert ift["p1"]["completion"] == "Answer: 2" and ift["p2"]["completion"] == problems["p2"].rationale
    assert ift["p1"]["prompt"] == "plain p1"
    unbalanced, _ = _eft.examples(rows, problems, str, _eft.EFT(balance=False, ift=False), TEMPLATE, seed=0)
    assert [t["sample_id"] for t in unbalanced] == [r["sample_id"] for r in rows]
    one_sided, _ = _eft.examples(rows[3:], problems, str, _eft.EFT(ift=False), TEMPLATE, seed=0)
    assert len(one_sided) == 2  # nothing to balance against: all kept


def test_eft_problems_come_from_the_pool_never_held_out_and_are_stable():
    got, from_seed = _eft.eft_problems(TASK, TASK.train_pool(), 6, seed=0)
    assert not from_seed and len(got) == 6 and {p.id for p in got} <= {p.id for p in POOL}
    assert got == _eft.eft_problems(TASK, TASK.train_pool(), 6, seed=0)[0]  # every iteration finds the same
    assert {p.id for p in got} != {p.id for p in _eft.eft_problems(TASK, POOL, 6, seed=1)[0]}
    seeded = _qa.QATask("toy", POOL, HELD, _verify, seeds=[Problem("s0", "Q", "1", rationale="Answer: 1")])
    assert _eft.eft_problems(seeded, POOL, 6, seed=0) == ([seeded.seed_set()[0]], True)


def _it(k, reply, method_cfg):
    cfg = SimpleNamespace(seed=0, mix=MixConfig(dedup="none", natural_fraction=0.0), method=method_cfg)
    return Iteration(k, cfg, TASK, Scripted(reply), None, "BASE", "M1" if k > 1 else "BASE", "h", "unused",
                     {p.id: p for p in [*POOL, *HELD]})


def test_eft_stage_then_self_rewarding_prompts_exclude_eft_and_held_out_problems():
    cfg = self_rewarding.Config(problems_per_iteration=None, candidates=2, judge_samples=1,
                                eft=_eft.EFT(problems=5, candidates=2))
    method = self_rewarding.SelfRewarding(cfg)

    def reply(prompt, i):  # candidates: right then wrong; judgements: unparseable
        if "additive 5-point" in prompt:
            return "hmm"
        return "Answer: -1" if i else "Answer: %d" % (int(re.search(r"What is (\d+) \+ 1", prompt).group(1)) + 1)

    it1 = _it(1, reply, cfg)
    rows = it1.score(method.generate(it1, POOL))
    eft_ids = {r["problem_id"] for r in rows}
    assert len(eft_ids) == 5 and len(rows) == 10 and all(r["judge_score"] is None for r in rows)
    assert not any("additive" in p for p in it1.backend.prompts)  # judge_before off: no judging in the seed stage
    rows, train, m = method.select(it1, rows)
    assert m["eft/examples"] == sum(t["source"] == "eft" for t in train) and m["eft/ift_examples"] == 5
    assert m["eft/examples_right"] * 2 == m["eft/examples"] and all(r["kept"] for r in rows)
    it2 = _it(2, reply, cfg)
    sr = method.generate(it2, POOL)
    used = {r["problem_id"] for r in sr}
    assert used == {p.id for p in POOL} - eft_ids  # the whole pool but the EFT problems, no held-out ones
    assert all(r["checkpoint"] == "M1" and r["judge_prompt"] for r in sr)


def test_needs_dpo_only_after_the_seed_stage():
    with_eft = self_rewarding.Config(eft=_eft.EFT())
    assert with_eft.needs(1).trainer == () and with_eft.needs(2).trainer == ("dpo",)
    assert self_rewarding.Config().needs(1).trainer == ("dpo",)


def test_judge_before_measures_the_starting_models_judge_on_the_eft_candidates():
    cfg = self_rewarding.Config(candidates=2, judge_samples=1, eft=_eft.EFT(problems=4, candidates=2, judge_before=True))
    method = self_rewarding.SelfRewarding(cfg)

    def reply(prompt, i):  # candidates: right then wrong; the judge always says 3
        if "additive 5-point" in prompt:
            return "Score: 3"
        return "Answer: -1" if i else "Answer: %d" % (int(re.search(r"What is (\d+) \+ 1", prompt).group(1)) + 1)

    it1 = _it(1, reply, cfg)
    rows, train, m = method.select(it1, it1.score(method.generate(it1, POOL)))
    assert all(r["judge_score"] == 3.0 and r["checkpoint"] == "BASE" for r in rows)
    assert m["judge/parsed_frac"] == 1.0 and m["judge/gold_pair_agreement"] == 0.5 and m["judge/gold_pairs"] == 4
    assert all(parse_score(t["completion"]) in (1.0, 5.0) for t in train if t["source"] == "eft")  # targets: gold, not the judge
