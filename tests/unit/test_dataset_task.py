"""The ``dataset`` task on local HF data (offline), and the ``jsonl`` defaults that
must not fool anyone: verifier inference, no lenient extraction unless asked,
ids read from the file, tolerances."""

import json

import pytest

from selftaught import jsonl as reader
from selftaught.contamination import check_disjoint
from selftaught.tasks import dataset, gsm8k, jsonl


def _write(path, recs):
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _numeric_file(tmp_path):
    return _write(tmp_path / "word.jsonl", [{"id": f"wp{i}", "question": f"Tom has {i} apples and buys {i}. How many?",
                                             "answer": str(2 * i)} for i in range(40)])


# --- jsonl defaults ----------------------------------------------------------------------------

def test_numeric_gold_gets_the_numeric_verdict_by_default(tmp_path):
    task = jsonl.build(jsonl.Config(train_path=str(_numeric_file(tmp_path))))
    p = task.eval_set()[0]
    said = [f"So {p.answer}.\nAnswer: ${p.answer}.00", f"Answer: {p.answer} apples", f"Answer: {p.answer}"]
    assert all(task.verify(p, c).correct for c in said)  # `exact` would reject the first two
    exact = jsonl.build(jsonl.Config(train_path=str(_numeric_file(tmp_path)), verifier="exact"))
    assert [exact.verify(p, c).correct for c in said] == [False, False, True]
    assert task.verifier_version == "numeric" and exact.verifier_version == "exact"


def test_mixed_gold_answers_are_refused_with_examples(tmp_path):
    f = _write(tmp_path / "mix.jsonl", [{"question": "Capital of France?", "answer": "Paris"},
                                        {"question": "2+2?", "answer": "4"}, {"question": "3+3?", "answer": "6"}])
    with pytest.raises(reader.DataError, match=r"2 gold answers are numbers .*mix\.jsonl, line 2: '4'.* 1 are not "
                                               r"\(e\.g\. .*line 1: 'Paris'\).*task\.verifier=numeric"):
        jsonl.build(jsonl.Config(train_path=str(f)))
    words = _write(tmp_path / "words.jsonl", [{"question": f"q{i}", "answer": f"w{i}"} for i in range(5)])
    assert jsonl.build(jsonl.Config(train_path=str(words))).verifier_version == "exact"


def test_lenient_last_number_decides_nothing_unless_asked(tmp_path):
    f = _numeric_file(tmp_path)
    strict = jsonl.build(jsonl.Config(train_path=str(f)))
    lenient = jsonl.build(jsonl.Config(train_path=str(f), lenient=True))
    p = next(q for q in [*strict.train_pool(), *strict.eval_set()] if q.answer == "2")
    url = "Let me look it up: https://example.com/FD2"
    assert not strict.verify(p, url).correct and lenient.verify(p, url).correct
    assert lenient.verifier_version == "numeric+lenient"


def test_ids_come_from_the_file_and_must_be_unique(tmp_path):
    task = jsonl.build(jsonl.Config(train_path=str(_numeric_file(tmp_path))))
    ids = {p.id for p in [*task.train_pool(), *task.eval_set()]}
    assert "word:wp7" in ids and len(ids) == 40
    _write(tmp_path / "dup.jsonl", [{"id": "a", "question": "x?", "answer": "1"}, {"id": "a", "question": "y?", "answer": "2"}])
    with pytest.raises(reader.DataError, match=r"dup\.jsonl, line 2, field `id`: duplicate id 'a' \(first seen on line 1\)"):
        jsonl.load(str(tmp_path / "dup.jsonl"), jsonl.Config(train_path="x"))


def test_relative_and_absolute_tolerance(tmp_path):
    from selftaught.records import Problem

    p = Problem("x", "q", "200")
    assert not gsm8k.verify_numeric(p, "Answer: 201").correct  # the default is exact equality
    assert gsm8k.verify_numeric(p, "Answer: 201", rel_tol=0.01).correct
    assert not gsm8k.verify_numeric(p, "Answer: 203", rel_tol=0.01).correct
    assert gsm8k.verify_numeric(p, "Answer: 203", abs_tol=3).correct
    task = jsonl.build(jsonl.Config(train_path=str(_numeric_file(tmp_path)), rel_tol=0.1))
    q = next(q for q in task.eval_set() if int(q.answer) >= 20)
    assert task.verify(q, f"Answer: {int(q.answer) + 1}").correct and task.verifier_version.startswith("numeric(rel_tol=0.1")


def test_no_worked_solutions_is_warned(tmp_path, capsys):
    jsonl.build(jsonl.Config(train_path=str(_numeric_file(tmp_path))))
    assert "no worked solutions" in capsys.readouterr().err


# --- dataset -----------------------------------------------------------------------------------

def _gsm_rows(n, start=0):
    return [{"question": f"Sam has {i} pens and gets {i + 1} more. How many pens?",
             "answer": f"{i} + {i + 1} = <<{i}+{i + 1}={2 * i + 1}>>{2 * i + 1}\n#### {2 * i + 1}"} for i in range(start, start + n)]


@pytest.fixture
def saved_dataset(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    d = datasets.DatasetDict({"train": datasets.Dataset.from_list(_gsm_rows(30)),
                              "test": datasets.Dataset.from_list(_gsm_rows(10, start=100))})
    d.save_to_disk(str(tmp_path / "mygsm"))
    return tmp_path / "mygsm"


def test_dataset_from_save_to_disk_with_gsm8k_answers(saved_dataset):
    cfg = dataset.Config(path=str(saved_dataset), eval_split="test", answer_format="gsm8k")
    task = dataset.build(cfg)
    pool, held = task.train_pool(), task.eval_set()
    assert (len(pool), len(held)) == (30, 10) and task.verifier_version == "numeric"
    p = next(x for x in pool if x.id == "mygsm/train:1")
    assert p.answer == "1" and p.rationale == "0 + 1 = 1\nAnswer: 1"  # '#### 1' split off, <<...>> dropped
    assert task.seed_set() and task.verify(p, "Answer: 1").correct and not task.verify(p, "Answer: 2").correct
    check_disjoint(pool, held)  # distinct splits pass the contamination guard


def test_dataset_from_parquet_files_hash_split_and_guard(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"q": f"What is {i} times 3?", "a": str(3 * i), "lvl": i % 2} for i in range(50)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    pq.write_table(pa.Table.from_pylist(rows[:5]), tmp_path / "test.parquet")
    files = {"train": str(tmp_path / "train.parquet"), "test": str(tmp_path / "test.parquet")}
    cfg = dataset.Config(path="parquet", data_files=files, question_field="q", answer_field="a", group_field="lvl")
    task = dataset.build(cfg)
    assert len(task.train_pool()) + len(task.eval_set()) == 50 and {p.group for p in task.eval_set()} <= {"0", "1"}
    leaky = dataset.build(cfg.model_copy(update={"eval_split": "test"}))
    with pytest.raises(ValueError, match="held-out problems are in the train pool"):
        check_disjoint(leaky.train_pool(), leaky.eval_set())


def test_dataset_errors_name_the_source(saved_dataset, tmp_path):
    with pytest.raises(reader.DataError, match=r"no split 'validation'; it has: train, test"):
        dataset.build(dataset.Config(path=str(saved_dataset), eval_split="validation", answer_format="gsm8k"))
    with pytest.raises(reader.DataError, match=r"mygsm\[train\], line 1: missing field `problem`"):
        dataset.build(dataset.Config(path=str(saved_dataset), question_field="problem"))
    with pytest.raises(reader.DataError, match="cannot load"):
        dataset.build(dataset.Config(path=str(tmp_path / "nothing_here")))


# --- the commands a jsonl user meets -------------------------------------------------------------

def test_inspect_finds_file_ids_and_shows_gold(tmp_path):
    import yaml
    from rich.console import Console

    from selftaught.report import compare, inspect
    from selftaught.store import RunStore

    f = _numeric_file(tmp_path)
    for name, frac in (("a", 0.2), ("b", 0.3)):
        root = tmp_path / name
        root.mkdir()
        (root / "config.yaml").write_text(yaml.safe_dump({"name": name, "task": {"type": "jsonl", "train_path": str(f),
                                                                                 "held_out_fraction": frac}}))
        RunStore(root).write_rows(0, "eval", [{"problem_id": "word:wp7", "phase": "eval", "prompt": "Tom has 7?",
                                               "completion": "Answer: 14", "answer": "14", "correct": True}])
    con = Console(record=True, width=200)
    args = type("A", (), dict(run_dir=tmp_path / "a", problem="wp7", iteration=None, kept=False, rejected=False,
                              limit=None, full=False))()
    assert inspect.main(args, con) == 0
    text = con.export_text()
    assert "problem word:wp7 across iterations" in text and "│ gold" in text.replace("┃", "│") and "│ 14   " in text
    runs = compare.load_runs([tmp_path / "a", tmp_path / "b"])
    assert compare.differing_settings(runs) == [("task.held_out_fraction", ["0.2", "0.3"])]


def test_verify_inline_problems_need_no_data_file(tmp_path, capsys):
    from selftaught import cli

    src = _write(tmp_path / "c.jsonl", [{"problem": {"question": "2+2?", "answer": "4"}, "completion": "Answer: 4.0"},
                                         {"problem": {"question": "3+3?", "answer": "6"}, "completion": "Answer: 7"}])
    assert cli.main(["verify", "jsonl", "--input", str(src)]) == 0
    assert [json.loads(x)["correct"] for x in capsys.readouterr().out.splitlines()] == [True, False]  # numeric, inferred
    _write(src, [{"problem_id": "x", "completion": "Answer: 4"}])
    assert cli.main(["verify", "jsonl", "--input", str(src)]) == 2
    assert "train_path" in capsys.readouterr().err
