"""A real 2-round micro-run of the label-free easy-to-hard method on the tiny model:
the walk samples only unlabeled levels, from the lowest up, and stops at the first
level not mastered (below the agreement threshold, or never taught in an earlier
round: so round 1 learns level 4 only); the curriculum is recomputed from the rows on
disk, so a resumed run (select and later stages re-run) records the same one."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from selftaught import loop

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "easy_to_hard_arithmetic.yaml"
SMALL = ["task.seed_digits=[1,3]", "task.pool_digits=[1,6]", "task.eval_digits=[1,6]", "method.problems_per_iteration=12",
         "method.probe_problems=4", "method.samples_per_problem=4", "method.max_new_tokens=72", "eval.max_new_tokens=72"]


def metrics_of(root: Path) -> list[dict]:
    return [json.loads(x) for x in (root / "metrics.jsonl").read_text().splitlines()]


def test_walk_labels_and_resume(micro):
    # advance_at=0.5: the seed model often agrees with itself on 4 digits, so the walk goes up
    cfg = micro("name=e2h", "method.advance_at=0.5", *SMALL, recipe=RECIPE)
    root = loop.run(cfg).root
    metrics = metrics_of(root)
    assert [m["iteration"] for m in metrics] == [0, 1, 2]
    levels = [str(d) for d in range(1, 7)]
    learned: set[str] = set()  # levels with kept rows in earlier rounds
    for k in (1, 2):
        rows = pq.read_table(root / f"iter_{k:03d}" / "samples.parquet").to_pylist()
        walked = sorted({r["level"] for r in rows}, key=int)
        assert walked == levels[3:3 + len(walked)]  # from 4 up, no gap, never a labeled level
        assert all(r["group"] == r["level"] for r in rows)
        m = metrics[k]
        agree = [m[f"curriculum/agreement/{lv}"] for lv in walked]
        assert all(a >= 0.5 and lv in learned for a, lv in zip(agree[:-1], walked))  # walked past: mastered
        last_passed = agree[-1] >= 0.5 and walked[-1] in learned
        assert m["curriculum/current"] == ("none" if last_passed else walked[-1])
        if k == 1:
            assert walked == ["4"]  # nothing taught yet: the first unlabeled level is the current one
        learned |= {r["level"] for r in rows if r["kept"]}
        for lv in walked:  # the current level gets its full share, the others the probe
            n = len({r["problem_id"] for r in rows if r["level"] == lv})
            assert n == (12 if lv == m["curriculum/current"] else 4)
        labelled = {r["problem_id"] for r in rows if r["pseudo_label"] is not None}  # some votes may all fail to parse
        assert 0.0 <= m["label/acc"] <= 1.0 and m["label/problems"] == len(labelled) > 0
        kept = [r for r in rows if r["kept"]]
        assert all(r["vote_answer"] == r["pseudo_label"] and r["majority_ratio"] >= 0.6 for r in kept)
        assert all(len(r["pseudo_label"]) in (int(r["level"]), int(r["level"]) + 1) for r in kept)
    # resume: select onwards re-run from the rows on disk gives the same curriculum and labels
    before = {k: v for k, v in metrics[2].items() if k.startswith(("curriculum/", "label/"))}
    it2 = root / "iter_002"
    for stage in ("select", "train", "evaluate", "monitor"):
        (it2 / f"{stage}.done").unlink()
    (root / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics[:2]))
    loop.run(cfg)
    after = {k: v for k, v in metrics_of(root)[2].items() if k.startswith(("curriculum/", "label/"))}
    assert after == before and before
