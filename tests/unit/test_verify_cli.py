import json
from pathlib import Path

import pytest

from selftaught import cli, jsonl
from selftaught.tasks.arithmetic import scratchpad

BAD = Path(__file__).parents[1] / "data" / "bad"


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _inline(a, b, completion):
    return {"problem": {"question": f"{a}+{b}", "answer": str(a + b), "meta": {"a": a, "b": b}}, "completion": completion}


def test_arithmetic_verdicts_one_per_line(tmp_path, capsys):
    from selftaught.tasks.arithmetic import Arithmetic, Config

    known = Arithmetic(Config()).eval_set()[0]
    a, b = known.meta["a"], known.meta["b"]
    src = _write(tmp_path / "c.jsonl", [
        {"problem_id": known.id, "completion": scratchpad(a, b)},
        _inline(345, 78, scratchpad(345, 78)),
        _inline(345, 78, "5+8+0=3,1\n=325"),
        _inline(345, 78, "no answer here"),
    ])
    out = tmp_path / "v.jsonl"
    assert cli.main(["verify", "arithmetic", "--input", str(src), "--output", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4]
    assert [r["correct"] for r in rows] == [True, True, False, False]
    assert rows[0]["problem_id"] == known.id and rows[0]["score"] == 1.0
    assert rows[2]["reason"] == "answer 523, expected 423" and rows[3]["reason"] == "no answer line"
    assert "2 correct" in capsys.readouterr().err


def test_task_overrides_apply_and_bad_overrides_are_errors(tmp_path, capsys):
    src = _write(tmp_path / "c.jsonl", [{"problem_id": "1+2", "completion": "=3"}])
    # with pool 1-digit only and a tiny pool, 1+2 is either in the pool/seed or the eval split
    assert cli.main(["verify", "arithmetic", "pool_digits=[1,1]", "seed_digits=[1,1]", "eval_digits=[1,1]",
                     "--input", str(src)]) == 0
    assert json.loads(capsys.readouterr().out)["correct"] is True
    assert cli.main(["verify", "arithmetic", "pool_sise=3", "--input", str(src)]) == 2
    assert "pool_sise" in capsys.readouterr().err
    assert cli.main(["verify", "no_such_task", "--input", str(src)]) == 2
    assert "unknown task type" in capsys.readouterr().err


def test_code_task_verdicts(tmp_path):
    src = _write(tmp_path / "c.jsonl", [
        {"problem_id": "HumanEval/2", "completion": "    return number % 1.0\n"},
        {"problem_id": "HumanEval/2", "completion": "```python\ndef truncate_number(number):\n    return int(number)\n```"},
    ])
    out = tmp_path / "v.jsonl"
    assert cli.main(["verify", "code", "limit=5", "eval_fraction=0.5", "--input", str(src), "--output", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["correct"] for r in rows] == [True, False]


CASES = {  # file -> (line, field or None, words the message must contain)
    "completions_malformed_json.jsonl": (2, None, "not valid JSON"),
    "completions_missing_field.jsonl": (2, "completion", "missing"),
    "completions_empty.jsonl": (None, None, "empty"),
    "completions_non_utf8.jsonl": (2, None, "UTF-8"),
    "completions_wrong_type.jsonl": (1, "completion", "expected a string, got an integer"),
    "completions_not_an_object.jsonl": (1, None, "expected a JSON object"),
    "completions_unknown_problem.jsonl": (1, "problem_id", "is not a problem of task code"),
    "completions_id_wrong_type.jsonl": (1, "problem_id", "expected a string or an integer, got a list"),
    "completions_inline_wrong_type.jsonl": (1, "problem.meta", "expected an object, got a string"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_completions_name_file_line_field_and_write_nothing(name, tmp_path, capsys):
    line, field, words = CASES[name]
    out = tmp_path / "verdicts.jsonl"
    task = "arithmetic" if "inline" in name else "code"
    assert cli.main(["verify", task, "--input", str(BAD / name), "--output", str(out)]) == 2
    msg = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert str(BAD / name) in msg.replace(" ", "") or name in msg
    if line:
        assert f"line {line}" in msg
    if field:
        assert f"`{field}`" in msg
    assert words in msg
    assert not out.exists() and not list(tmp_path.iterdir())


def test_huge_line_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "huge.jsonl"
    with open(path, "w") as f:
        f.write('{"problem_id": "1+2", "completion": "=3"}\n')
        f.write('{"problem_id": "1+2", "completion": "' + "9" * (jsonl.MAX_LINE_BYTES + 10) + '"}\n')
    with pytest.raises(jsonl.DataError, match=r"huge.jsonl, line 2: the line is longer than 8,388,608 bytes"):
        list(jsonl.lines(path, "{}"))


def test_missing_input_file(tmp_path, capsys):
    assert cli.main(["verify", "arithmetic", "--input", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl: no such file" in " ".join(capsys.readouterr().err.split())
