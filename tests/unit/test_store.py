import json
import os

import pytest

from selftaught.store import RunDirError, RunStore, read_parquet, write_parquet


def test_parquet_round_trip_and_atomic_names(tmp_path):
    rows = [{"a": 1, "b": "x", "c": None}, {"a": 2, "b": "y", "c": 0.5}]
    write_parquet(tmp_path / "r.parquet", rows)
    assert read_parquet(tmp_path / "r.parquet") == rows
    assert [p.name for p in tmp_path.iterdir()] == ["r.parquet"]  # no temp file left behind


def test_corrupt_file_is_an_error_not_a_skip(tmp_path):
    (tmp_path / "samples.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(RunDirError, match="samples.parquet: cannot read"):
        read_parquet(tmp_path / "samples.parquet")


def test_stage_markers_and_metrics_rebuilt_not_appended(tmp_path):
    store = RunStore(tmp_path / "run")
    store.create_or_check("name: x\n")
    assert store.done(1, "generate") is None
    store.mark_done(1, "generate", {"gen/samples": 3})
    assert store.done(1, "generate") == {"gen/samples": 3}
    store.write_metrics(0, {"eval/acc": 0.1})
    store.write_metrics(1, {"eval/acc": 0.2})
    store.write_metrics(1, {"eval/acc": 0.2})  # a resumed run writes the same iteration again
    lines = [json.loads(x) for x in (store.root / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in lines] == [0, 1]


def test_existing_run_with_other_config_is_refused(tmp_path):
    store = RunStore(tmp_path / "run")
    assert store.create_or_check("a: 1\n") is False
    assert store.create_or_check("a: 1\n") is True  # same config: resume
    with pytest.raises(RunDirError, match="different config"):
        store.create_or_check("a: 2\n")


def test_foreign_directory_is_refused(tmp_path):
    (tmp_path / "notarun").mkdir()
    (tmp_path / "notarun" / "precious.txt").write_text("data")
    with pytest.raises(RunDirError, match="not a selftaught run"):
        RunStore(tmp_path / "notarun").create_or_check("a: 1\n")
    assert (tmp_path / "notarun" / "precious.txt").read_text() == "data"


def test_lock_refuses_a_second_holder(tmp_path):
    a, b = RunStore(tmp_path / "run"), RunStore(tmp_path / "run")
    with a.lock():
        # flock is per open file description: a second open in this process conflicts too
        with pytest.raises(RunDirError, match=f"in use by pid {os.getpid()}"):
            with b.lock():
                pass
    with b.lock():  # released on exit
        pass


def test_columns_only_later_rows_have_are_kept(tmp_path):
    rows = [{"a": 1}, {"a": 2, "round": 3, "feedback": "too long"}]
    write_parquet(tmp_path / "r.parquet", rows)
    assert read_parquet(tmp_path / "r.parquet") == [{"a": 1, "round": None, "feedback": None},
                                                     {"a": 2, "round": 3, "feedback": "too long"}]
