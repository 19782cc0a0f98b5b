"""Inference-time strategies on a scripted backend: the prompts each round sees,
the memory Reflexion carries, the votes and scores that pick a final answer."""

from types import SimpleNamespace

import pytest

from selftaught import strategies
from selftaught.iteration import Iteration
from selftaught.tasks.arithmetic import Arithmetic, Config, reverse
from scripted import Scripted  # tests/unit/scripted.py


def make_it(reply, problems):
    task = Arithmetic(Config(seed_size=3, pool_size=3, eval_per_group=2, eval_digits=(1, 2)))
    backend = Scripted(reply)
    cfg = SimpleNamespace(seed=0)
    return Iteration(0, cfg, task, backend, None, "m", "m", "h", "unused", {p.id: p for p in problems}), backend


def answer(p, value=None) -> str:
    """An arithmetic completion whose final answer is ``value`` (default: the right one)."""
    return "=" + reverse(int(p.answer) if value is None else value)


@pytest.fixture
def problems():
    return Arithmetic(Config(eval_per_group=3, eval_digits=(2, 2))).eval_set()


def test_reflexion_memory_carries_reflections_into_later_attempts(problems):
    p = problems[0]
    counter = {"n": 0}

    def reply(prompt, i):
        if "diagnose what went wrong" in prompt:
            counter["n"] += 1
            return f"REFLECTION-{counter['n']}"
        return answer(p) if "REFLECTION-2" in prompt else answer(p, 1)  # right only once it has 2 reflections

    it, backend = make_it(reply, [p])
    rows, final = strategies.reflexion(it, [p], attempts=4, max_new_tokens=8)
    attempts = [q for q in backend.prompts if "diagnose" not in q]
    assert len(attempts) == 3 and [r["round"] for r in rows] == [0, 1, 2]
    assert "REFLECTION" not in attempts[0]
    assert "REFLECTION-1" in attempts[1] and "REFLECTION-2" not in attempts[1]
    assert "REFLECTION-1" in attempts[2] and "REFLECTION-2" in attempts[2]  # episodic memory keeps both
    assert final[0]["correct"] and final[0]["final"] and final[0]["round"] == 2
    assert final[0]["feedback"] == "REFLECTION-1\nREFLECTION-2"  # provenance: what produced the kept answer
    reflect_prompts = [q for q in backend.prompts if "diagnose" in q]
    assert all("the final answer 1 is wrong" in q for q in reflect_prompts)
    assert not any(reverse(int(p.answer)) in q.split("This attempt failed")[1] for q in reflect_prompts), "gold leaked"


def test_reflexion_memory_size_limits_what_is_recalled():
    mem = strategies.EpisodicMemory(size=2)
    for i in range(3):
        mem.add("x", f"note {i}")
    assert mem.recall("x") == ["note 1", "note 2"]
    assert mem.prompt("y", "BASE", "{reflections}|{prompt}") == "BASE"  # nothing to recall: unchanged prompt


def test_self_refine_stops_on_stop_and_records_feedback(problems):
    p, q = problems[0], problems[1]

    def reply(prompt, i):
        if "Review the answer" in prompt:
            return "STOP" if "=" + reverse(int(p.answer)) in prompt or "=" + reverse(int(q.answer)) in prompt else "step 2 is wrong"
        if "Feedback on that answer" in prompt:
            return answer(p) if prompt.endswith(it.task.prompt(p)) else answer(q)
        return answer(p) if prompt == it.task.prompt(p) else answer(q, 7)

    it, backend = make_it(reply, [p, q])
    rows, final = strategies.self_refine(it, [p, q], rounds=3, max_new_tokens=8)
    by = {r["problem_id"]: r for r in final}
    assert by[p.id]["round"] == 0 and by[p.id]["review"] == "STOP"  # right first time: stopped
    assert by[q.id]["round"] == 1 and by[q.id]["correct"] and by[q.id]["feedback"] == "step 2 is wrong"
    assert sum("Review the answer" in x for x in backend.prompts) == 3  # r0 of both, r1 of q only


def test_majority_vote_picks_most_common_answer(problems):
    p = problems[0]
    script = [answer(p, 5), answer(p), answer(p), "no answer line", answer(p, 5), answer(p)]
    it, _ = make_it(lambda prompt, i: script[i], [p])
    rows, final = strategies.majority(it, [p], 6, temperature=1.0, max_new_tokens=8)
    assert len(rows) == 6 and final[0]["correct"] and final[0]["strategy_score"] == pytest.approx(3 / 6)
    assert sum(r["final"] for r in rows) == 1


def test_majority_vote_ties_go_to_the_first_answer_seen(problems):
    p = problems[0]
    script = [answer(p, 5), answer(p), answer(p, 5), answer(p)]
    it, _ = make_it(lambda prompt, i: script[i], [p])
    _, final = strategies.majority(it, [p], 4, temperature=1.0, max_new_tokens=8)
    assert final[0]["answer"] == "5" and not final[0]["correct"]


def test_best_of_n_with_verifier_and_callable_scorers(problems):
    p = problems[0]
    script = [answer(p, 5), answer(p), answer(p, 9)]
    it, _ = make_it(lambda prompt, i: script[i], [p])
    _, final = strategies.best_of_n(it, [p], 3, "verifier", temperature=1.0, max_new_tokens=8)
    assert final[0]["correct"]
    _, final = strategies.best_of_n(it, [p], 3, lambda prob, r: -len(r["completion"]), temperature=1.0,
                                    max_new_tokens=8)
    assert final[0]["answer"] == "5"  # "=5" and "=9" tie for the shortest: the first wins


def test_best_of_n_self_judge_uses_parsed_scores_and_ranks_unscored_last(problems):
    p = problems[0]

    def reply(prompt, i):
        if "additive 5-point" in prompt:
            return "Score: 4" if "=" + reverse(int(p.answer)) in prompt else "no idea"
        return [answer(p, 5), answer(p)][i]

    it, _ = make_it(reply, [p])
    rows, final = strategies.best_of_n(it, [p], 2, "self_judge", temperature=1.0, max_new_tokens=8)
    assert [r["judge_score"] for r in rows] == [None, 4.0] and final[0]["correct"]


def test_parse_strategy_names():
    assert strategies.parse("maj@8", 4) == ("maj", 8)
    assert strategies.parse("best_of_n", 4) == ("best_of_n", 4)
    assert strategies.parse("best_of_16", 4) == ("best_of_n", 16)
    with pytest.raises(ValueError, match="eval.strategy"):
        strategies.parse("beam", 4)
