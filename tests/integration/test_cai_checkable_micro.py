"""A 2-iteration CAI micro-run (SL then RL) on the built-in tiny model with the
checkable constitution: the satisfaction and label-agreement metrics the loop
records must be the ones recomputed from the saved samples, principle by principle;
with ``feedback: base`` the starting model labels the SL model's pairs."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from selftaught import loop
from selftaught.methods import _constitution as con

RECIPES = Path(__file__).resolve().parents[2] / "src" / "selftaught" / "recipes"


def test_cai_checkable_metrics_match_the_saved_samples(micro):
    cfg = micro("name=cai-check", "method.principles=constitution_checkable", "method.problems_per_iteration=12",
                "method.sl_trainer.steps=4", "method.sl_trainer.batch_size=8", "method.critique_max_new_tokens=16",
                "trainer.steps=2", "method.feedback=base", "warm_start_steps=60", recipe=RECIPES / "cai_arithmetic.yaml")
    root = loop.run(cfg).root
    ps = con.load_principles("constitution_checkable")
    rows = {k: pq.read_table(root / f"iter_{k:03d}" / "samples.parquet").to_pylist() for k in (1, 2)}
    m = {k: json.loads((root / f"iter_{k:03d}" / "metrics.json").read_text()) for k in (1, 2)}

    drafts = [r["completion"] for r in rows[1] if r["phase"] == "draft"]
    revisions = [r for r in rows[1] if r["phase"] == "revise0"]
    assert len(drafts) == len(revisions) == 12
    assert all(r["principle"] == ps[r["principle_id"]]["critique"] for r in revisions)
    for p in ps:
        name = p["name"]
        assert m[1][f"cai/satisfied/draft/{name}"] == sum(map(p["check"], drafts)) / 12
        assert m[1][f"cai/satisfied/revision/{name}"] == sum(p["check"](r["completion"]) for r in revisions) / 12
        assert m[2][f"cai/satisfied/sample/{name}"] == sum(p["check"](r["completion"]) for r in rows[2]) / 24

    start = json.loads((root / "iter_000" / "metrics.json").read_text())["model"]
    sl_model = str(root / "iter_001" / "checkpoint")
    assert m[1]["model"] == sl_model != start
    assert all(r["checkpoint"] == sl_model for r in rows[2])  # the policy (the SL model) samples the pairs
    assert all(r["label_checkpoint"] == start for r in rows[2])  # the starting model labels them
    pairs = list(zip(rows[2][0::2], rows[2][1::2]))
    assert all(a["principle"] == ps[a["principle_id"]]["choose"] == b["principle"] for a, b in pairs)
    want, n = con.label_agreement([(a["completion"], b["completion"], ps[a["principle_id"]], a["label"])
                                   for a, b in pairs])
    assert m[2]["cai/label_program_n"] == n and m[2].get("cai/label_program_agreement") == want
    assert m[2]["cai/label_program_first_order_n"] >= n  # the first-order answers include the kept labels
