"""The difficulty schedule (curriculum.py) and the label-free easy-to-hard method's
selection (methods/easy_to_hard.py) on hand-made records."""

from types import SimpleNamespace

import pytest

from selftaught import curriculum
from selftaught.methods import easy_to_hard as E
from selftaught.records import Problem
from selftaught.tasks import arithmetic

TASK = arithmetic.build(arithmetic.Config())


def problems(level: str, n: int) -> list[Problem]:
    return [Problem(id=f"{level}/{i}", question=f"q{level}/{i}", answer="", group=level) for i in range(n)]


def test_by_group_orders_levels_numerically_and_keeps_every_problem():
    pool = problems("10", 2) + problems("2", 3) + problems("9", 1)
    g = curriculum.ByGroup(pool)
    assert g.levels() == ["2", "9", "10"]
    assert [p.id for p in g.problems_at("2")] == ["2/0", "2/1", "2/2"] and g.problems_at("7") == []
    assert g.answer_lengths("2") is None
    assert TASK.graded(pool).answer_lengths("9") == (9, 10)  # a 9-digit sum has 9 or 10 digits


def voted(level: str, answers_per_problem: list[list[str]]) -> list[dict]:
    return [{"problem_id": f"{level}/{i}", "level": level, "vote_answer": a}
            for i, answers in enumerate(answers_per_problem) for a in answers]


def test_agreement_is_the_mean_majority_share():
    rows = voted("4", [["1", "1", "1", "1"], ["1", "2", "2", None]])
    assert curriculum.agreement(rows) == pytest.approx((1.0 + 0.5) / 2)
    assert curriculum.agreement([]) == 0.0


def fake_sampler(agree: dict[str, float], calls: list):
    """Votes whose majority share per level is ``agree[level]`` (4 votes a problem)."""
    def sample(ps):
        calls.append((ps[0].group, len(ps)))
        same = round(agree[ps[0].group] * 4)
        return [{"problem_id": p.id, "vote_answer": "7" if i < same else str(i)} for p in ps for i in range(4)]
    return sample


def test_walk_climbs_mastered_levels_and_samples_the_current_one_in_full():
    pool = [p for lv in ["1", "2", "3", "4", "5"] for p in problems(lv, 10)]
    calls: list = []
    rows = curriculum.walk(curriculum.ByGroup(pool), 1, fake_sampler({"2": 1.0, "3": 1.0, "4": 0.5, "5": 1.0}, calls),
                           probe=2, full=6, advance_at=0.9, seed=0)
    assert calls == [("2", 2), ("3", 2), ("4", 2), ("4", 4)]  # level 5 never enters: 4 is below 0.9
    assert {r["level"] for r in rows} == {"2", "3", "4"} and sum(r["level"] == "4" for r in rows) == 6 * 4
    # the outcome is recomputed from the rows alone (what a resumed run reads back)
    front = curriculum.frontier(rows, ["1", "2", "3", "4", "5"], 0.9)
    assert front.current == "4" and front.mastered == ["2", "3"] and front.agreement["4"] == 0.5
    assert curriculum.frontier(rows, ["1", "2", "3", "4", "5"], 0.4).current is None  # every walked level passed


def test_a_level_never_taught_is_not_mastered_however_much_the_model_agrees_on_it():
    pool = [p for lv in ["1", "2", "3", "4"] for p in problems(lv, 10)]
    calls: list = []
    agree = {"2": 1.0, "3": 1.0, "4": 1.0}
    rows = curriculum.walk(curriculum.ByGroup(pool), 1, fake_sampler(agree, calls), probe=2, full=6,
                           advance_at=0.9, seed=0, learned={"2"})
    assert calls == [("2", 2), ("3", 2), ("3", 4)]  # 2 was taught: passed; 3 was not: learned now, in full
    levels = ["1", "2", "3", "4"]
    front = curriculum.frontier(rows, levels, 0.9, {"2"})
    assert front.current == "3" and front.mastered == ["2"]
    assert curriculum.frontier(rows, levels, 0.9).current is None  # agreement alone: 3 would count as mastered
    calls.clear()
    curriculum.walk(curriculum.ByGroup(pool), 1, fake_sampler(agree, calls), probe=2, full=6, advance_at=0.9, seed=0)
    assert calls == [("2", 2), ("3", 2), ("4", 2)]  # without learned: up to the top, nothing in full


def test_learned_levels_are_the_levels_of_earlier_rounds_kept_rows(tmp_path):
    from selftaught.iteration import Iteration
    from selftaught.store import write_parquet

    for k, rows in [(1, [{"level": "4", "kept": True}, {"level": "5", "kept": False}]),
                    (2, [{"level": "4", "kept": True}, {"level": "5", "kept": True}]),
                    (3, [{"level": "6", "kept": True}])]:
        (tmp_path / f"iter_{k:03d}").mkdir()
        write_parquet(tmp_path / f"iter_{k:03d}" / "samples.parquet", rows)
    cfg = SimpleNamespace(seed=0, trainer=SimpleNamespace(steps=10), mix=None)
    it = lambda k: Iteration(k, cfg, TASK, None, None, "B", "L", "h", str(tmp_path / f"iter_{k:03d}" / "checkpoint"))
    assert E.learned_levels(it(1), E.Config()) == set()
    assert E.learned_levels(it(2), E.Config()) == {"4"}  # 5 was sampled in round 1 but nothing of it kept
    assert E.learned_levels(it(3), E.Config()) == {"4", "5"}  # round 3's own rows never count
    assert E.learned_levels(it(3), E.Config(advance="agreement")) is None


def test_walk_draws_are_seeded_and_differ_by_level():
    pool = [p for lv in ["1", "2"] for p in problems(lv, 50)]
    ids = lambda seed: [r["problem_id"] for r in curriculum.walk(
        curriculum.ByGroup(pool), 0, fake_sampler({"1": 1.0, "2": 0.25}, []), probe=3, full=3, advance_at=0.9, seed=seed)]
    assert ids(5) == ids(5) and ids(5) != ids(6)


def test_reasoning_gym_difficulty_kwargs_are_levels():
    rg = pytest.importorskip("reasoning_gym")  # the task's own dependency
    from selftaught.tasks import reasoning_gym as R

    task = R.build(R.Config(type="reasoning_gym:basic_arithmetic", group_by="num_digits", pool_size=60, eval_size=10,
                            kwargs={"min_digits": 1, "max_digits": 3, "min_terms": 2, "max_terms": 2}))
    g = task.graded(task.train_pool())
    assert rg and g.levels() == ["1", "2", "3"]
    assert all(p.meta["entry"]["metadata"]["num_digits"] == 3 for p in g.problems_at("3"))


# --- the method's selection --------------------------------------------------------
P = {f"{a}+{b}": arithmetic._problem(a, b, labeled=False) for a, b in [(1234, 4321), (5678, 8765), (12, 34)]}


def row(pid: str, answer: str | None, i: int) -> dict:
    p = P[pid]
    text = arithmetic.scratchpad(p.meta["a"], p.meta["b"]).rsplit("=", 1)[0] + "=" + (answer or "x")[::-1]
    s = TASK.verify(p, text)
    return {"sample_id": f"1/sample/{pid}/{i}", "problem_id": pid, "phase": "sample", "level": p.group,
            "completion": text, "vote_answer": answer, "answer": s.answer, "correct": s.correct,
            "verify_reason": s.reason, "steps_ok": s.info.get("steps_ok")}


def rows_of() -> list[dict]:
    # 1234+4321=5555: a right majority (3 of 4); 5678+8765=14443: a wrong majority of a
    # length a 4-digit sum cannot have (3 digits); 12+34=46: a split vote (2 of 4 < 0.6)
    return ([row("1234+4321", a, i) for i, a in enumerate(["5555", "5555", "5555", "5556"])]
            + [row("5678+8765", a, i) for i, a in enumerate(["144", "144", "144", "14443"])]
            + [row("12+34", a, i) for i, a in enumerate(["46", "46", "47", "48"])])


def fake_it():
    from selftaught.iteration import Iteration

    cfg = SimpleNamespace(seed=0, trainer=SimpleNamespace(steps=10), mix=None)
    return Iteration(1, cfg, TASK, None, None, "BASE", "LAST", "h", "unused", dict(P))


def select(**cfg):
    return E.build(E.Config(max_per_problem=None, **cfg)).select(fake_it(), rows_of())


def test_vote_keeps_majority_answers_that_pass_the_share_and_length_filters():
    rows, train, m = select()
    assert [r["kept"] for r in rows] == [True, True, True, False] + [False] * 8
    assert "length level 4 cannot have" in rows[4]["select_reason"] and "majority share 0.50" in rows[8]["select_reason"]
    assert [t["completion"] for t in train] == [rows[0]["completion"]] * 3
    assert m["label/acc"] == pytest.approx(2 / 3) and m["label/acc/4"] == 0.5 and m["label/acc/2"] == 1.0
    assert m["select/kept_correct_frac"] == 1.0 and m["curriculum/current"] == "2"  # level 2's agreement 0.5
    off = select(length_filter=False)[0]
    assert [r["kept"] for r in off[4:8]] == [True, True, True, False]  # the wrong majority gets in


def test_no_filter_and_gold_arms():
    assert all(r["kept"] for r in select(label="none")[0])
    rows, _, m = select(label="gold")
    assert [r["kept"] for r in rows] == [r["correct"] for r in rows_of()] and m["select/kept_correct_frac"] == 1.0


def test_selection_never_reads_gold():
    """Vote decisions are the same when every gold answer is wrong."""
    keep = [r["kept"] for r in select()[0]]
    for p in list(P.values()):
        P[p.id] = Problem(**{**p.__dict__, "answer": "0"})
    try:
        assert [r["kept"] for r in select()[0]] == keep
    finally:
        P.update({f"{a}+{b}": arithmetic._problem(a, b, labeled=False) for a, b in [(1234, 4321), (5678, 8765), (12, 34)]})


def test_the_walk_starts_above_the_labeled_seed_levels():
    assert E.start_index(fake_it(), [str(d) for d in range(1, 9)], E.Config()) == 3  # seed set: 1-3 digits
    assert E.start_index(fake_it(), ["1", "2", "5"], E.Config(start_level="5")) == 2


# --- the self-consistency filter (method.consistency) --------------------------------
def test_arithmetic_consistency_reads_the_working_alone():
    good = arithmetic.scratchpad(5678, 8765)  # ends "0+0+1=1,0\n=34441": the final carry's own line
    assert arithmetic.consistent(good) and arithmetic.consistent(arithmetic.scratchpad(0, 0))
    dropped = good.split("0+0+1")[0] + "=3444"  # the final-carry line left out: the last line carries 1 out
    assert not arithmetic.consistent(dropped)
    assert not arithmetic.consistent(good.replace("7+6+1", "7+6+0"))  # carry in is not the line before's carry out
    assert not arithmetic.consistent(good.replace("=34441", "=34442"))  # answer is not the lines' digits
    assert not arithmetic.consistent("8+5+0=3,1\n7+6") and not arithmetic.consistent("=5")
    # wrong sums with a consistent chain pass: it checks no arithmetic and no question (label-free)
    assert arithmetic.consistent("9+9+0=0,0\n=0")
    assert TASK.graded([]).consistent(dropped) is False and curriculum.ByGroup([]).consistent(good) is None


def test_consistency_takes_self_contradicting_traces_out_of_the_vote():
    pid = "5678+8765"
    good = arithmetic.scratchpad(5678, 8765)
    dropped = good.split("0+0+1")[0] + "=3444"
    rows = [{"problem_id": pid, "completion": c, "level": "4"} for c in [dropped, dropped, dropped, good]]
    it = fake_it()
    voted = E.blind_answers(it, [dict(r) for r in rows], arithmetic.consistent)
    assert [r["vote_answer"] for r in voted] == [None, None, None, "14443"]
    assert curriculum.agreement(voted) == 0.25  # abstentions count against agreement: the schedule holds
    for r in voted:
        s = TASK.verify(P[pid], r["completion"])
        r.update(sample_id=f"1/sample/{pid}/{id(r)}", phase="sample", answer=s.answer, correct=s.correct,
                 verify_reason=s.reason, steps_ok=s.info.get("steps_ok"))
    out, train, m = E.build(E.Config(max_per_problem=None, consistency=True)).select(it, voted)
    assert [r["kept"] for r in out] == [False, False, False, True] and out[3]["pseudo_label"] == "14443"
    assert "contradicts itself" in out[0]["select_reason"] and m["select/inconsistent_frac"] == 0.75
    assert m["label/acc/4"] == 1.0
    # without the filter the three short traces win the vote, and the length filter lets them in (4 digits)
    plain = E.blind_answers(it, [dict(r) for r in rows])
    for r, v in zip(plain, voted):
        r.update({k: v[k] for k in ("sample_id", "phase", "answer", "correct", "verify_reason", "steps_ok")})
    out = E.build(E.Config(max_per_problem=None)).select(it, plain)[0]
    assert [r["kept"] for r in out] == [True, True, True, False] and out[0]["pseudo_label"] == "4443"


def test_consistency_needs_the_vote_arm_and_a_task_check():
    with pytest.raises(ValueError, match="label: vote"):
        E.consistency_check(TASK.graded([]), E.Config(consistency=True, label="gold"))
    with pytest.raises(ValueError, match="no self-consistency check"):
        E.consistency_check(curriculum.ByGroup([]), E.Config(consistency=True))
    assert E.consistency_check(TASK.graded([]), E.Config()) is None


def test_gaps_recipe_is_the_curriculum_recipe_on_randomized_positions():
    """recipes/easy_to_hard_gaps_arithmetic.yaml differs from easy_to_hard_arithmetic.yaml
    only where its header says: the gaps, the 1-48 digit range and the schedule."""
    from pathlib import Path

    from selftaught import config

    root = Path(__file__).resolve().parents[2] / "recipes"

    def flat(d, pre=""):
        return {k2: v2 for k, v in d.items()
                for k2, v2 in (flat(v, f"{pre}{k}.").items() if isinstance(v, dict) else [(f"{pre}{k}", v)])}

    base, gaps = (flat(config.load(root / f, ["out_dir=/nonexistent"]).model_dump(mode="json"))
                  for f in ("easy_to_hard_arithmetic.yaml", "easy_to_hard_gaps_arithmetic.yaml"))
    differ = {k for k in base.keys() | gaps.keys() if base.get(k) != gaps.get(k)}
    assert differ == {"name", "iterations", "task.position_gaps", "task.pool_digits", "task.eval_digits", "task.pool_size",
                      "method.advance", "method.max_new_tokens", "eval.max_new_tokens"}
    assert gaps["task.position_gaps"] == 2 and gaps["method.advance"] == "agreement"
