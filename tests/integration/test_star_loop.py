"""A real 2-iteration STaR micro-loop on the tiny model, and its records."""

import json

import pyarrow.parquet as pq

from selftaught import loop


def test_micro_star_run_records(micro):
    cfg = micro("name=star")
    store = loop.run(cfg)
    root = store.root
    lines = [json.loads(x) for x in (root / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in lines] == [0, 1, 2]  # iteration 0 = the starting model
    assert all("eval/acc" in m and "eval/acc/4" in m for m in lines)
    assert "gen/samples" not in lines[0] and lines[1]["gen/samples"] > 0

    for k in (1, 2):
        d = root / f"iter_{k:03d}"
        for stage in loop.STAGES:
            assert (d / f"{stage}.done").is_file()
        samples = pq.read_table(d / "samples.parquet").to_pylist()
        rows = pq.read_table(d / "train.parquet").to_pylist()
        train = [t for t in rows if t["source"] != "natural"]
        natural = [t for t in rows if t["source"] == "natural"]  # mix.natural_fraction=0.3 by default
        assert len(natural) == round(0.3 * len(train) / 0.7)
        assert all(t["sample_id"] is None and t["problem_id"] for t in natural)
        by_id = {s["sample_id"]: s for s in samples}
        assert len(by_id) == len(samples)  # nothing doubled
        # provenance on every sample
        for s in samples:
            assert s["iteration"] == k and s["checkpoint_hash"] and s["seed"] is not None
            assert s["verifier"].startswith("arithmetic") and s["kept"] in (True, False) and s["select_reason"]
        assert {s["phase"] for s in samples} <= {"sample", "rationalize"}
        # one sample per drawn problem, one rationalization per failed one
        first = [s for s in samples if s["phase"] == "sample"]
        failed = {s["problem_id"] for s in first if not s["correct"]}
        assert {s["problem_id"] for s in samples if s["phase"] == "rationalize"} == failed
        assert all("|" in s["prompt"] and s["hint"] for s in samples if s["phase"] == "rationalize")
        # training rows: the kept samples, never with the hint
        assert sorted(t["sample_id"] for t in train) == sorted(s["sample_id"] for s in samples if s["kept"])
        for t in train:
            assert "|" not in t["prompt"], "hint leaked into a training example"
            assert t["completion"] == by_id[t["sample_id"]]["completion"]
            assert by_id[t["sample_id"]]["correct"]
        kept_per_problem = [t["problem_id"] for t in train]
        assert len(kept_per_problem) == len(set(kept_per_problem))  # STaR keeps one per problem
        assert train, f"iteration {k} kept nothing: the micro model cannot exercise STaR"
        assert (d / "checkpoint" / "config.json").is_file()
    # STaR trains from the base model every iteration, steps x1.2 per iteration (paper)
    for k, steps in ((1, cfg.trainer.steps), (2, round(cfg.trainer.steps * 1.2))):
        m = json.loads((root / f"iter_{k:03d}" / "metrics.json").read_text())
        assert m["train/init"] == lines[0]["model"] and "iter_" not in m["train/init"]
        assert m["train/steps"] == steps and m["model"] == str(root / f"iter_{k:03d}" / "checkpoint")
        # many passes over a tiny kept set are flagged, and only then
        assert ("train/warning" in m) == (m["train/epochs"] > 5 and m["train/rows"] < 100)


def test_rerun_of_finished_run_changes_nothing(micro):
    cfg = micro("name=again", "iterations=1")
    store = loop.run(cfg)
    before = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file() and p.name != "run.lock"}
    loop.run(cfg)
    after = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file() and p.name != "run.lock"}
    assert before == after
