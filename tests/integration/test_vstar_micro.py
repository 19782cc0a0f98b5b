"""A real 2-iteration micro-run of V-STaR (methods/vstar.py) on the tiny model:
the verifier is trained by DPO on pairs from the seed problems only, accumulated
across iterations; pool selection reads the verifier's score, never gold."""

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from selftaught import loop, registry
from selftaught.methods import vstar

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SMALL = ["name=vstar", "method.seed_problems_per_iteration=24", "method.problems_per_iteration=24",
         "method.verifier_trainer.steps=4", "method.verifier_trainer.batch_size=8", "mix.natural_fraction=0"]


def test_vstar_verifier_filters_the_pool(micro):
    cfg = micro(*SMALL, recipe=RECIPES / "vstar_arithmetic.yaml")
    root = loop.run(cfg).root
    metrics = [json.loads(x) for x in (root / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in metrics] == [0, 1, 2]
    task = registry.build("task", cfg.task)
    seed_ids = {p.id for p in task.seed_set()}
    for k in (1, 2):
        samples = pq.read_table(root / f"iter_{k:03d}" / "samples.parquet").to_pylist()
        seeds = [s for s in samples if s["phase"] == "seed"]
        pool = [s for s in samples if s["phase"] == "sample"]
        assert seeds and pool and (root / f"iter_{k:03d}" / "verifier" / "config.json").is_file()
        assert {s["problem_id"] for s in seeds} <= seed_ids
        # pool: at most one kept per problem, the top verifier score, at or above the threshold
        kept = [s for s in pool if s["kept"]]
        assert max(Counter(s["problem_id"] for s in kept).values(), default=0) <= 1
        for s in kept:
            assert s["vstar_score"] >= cfg.method.threshold
            assert s["vstar_score"] == max(p["vstar_score"] for p in pool if p["problem_id"] == s["problem_id"])
        assert all(s["correct"] for s in seeds if s["kept"])  # seed samples: gold decides (the mix may dedup)
        m = metrics[k]
        assert 0 <= m["vstar/precision"] <= 1 and 0 <= m["vstar/recall"] <= 1 and m["vstar/kept_pool"] == len(kept)
        ge = [s for s in pool if s["vstar_score"] >= cfg.method.threshold]
        assert m["vstar/precision"] == sum(s["correct"] for s in ge) / max(1, len(ge))
    assert metrics[2]["vstar/pairs"] > metrics[2]["vstar/pairs_new"]  # iteration 1's pairs are kept
    # the stored score is the saved verifier's DPO implicit reward against the base model
    pool = [s for s in pq.read_table(root / "iter_001" / "samples.parquet").to_pylist() if s["phase"] == "sample"][:6]
    again = vstar.verifier_scores(str(root / "iter_001" / "verifier"), metrics[1]["train/init"], task, pool, 0.1)
    assert any(abs(x) > 1e-3 for x in again)  # the verifier moved away from its reference
    assert all(abs(x - s["vstar_score"]) < 1e-4 for x, s in zip(again, pool))


def test_vstar_no_filter_keeps_every_pool_sample(micro):
    cfg = micro(*SMALL, "iterations=1", "method.filter=none", "mix.dedup=none", recipe=RECIPES / "vstar_arithmetic.yaml")
    root = loop.run(cfg).root
    samples = pq.read_table(root / "iter_001" / "samples.parquet").to_pylist()
    assert all(s["kept"] for s in samples if s["phase"] == "sample")
