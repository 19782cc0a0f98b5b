"""Gate actions in real micro-runs: collapse metrics recorded, stop, rollback, patience, and `show`."""

import json

import pyarrow.parquet as pq

from selftaught import cli, loop
from selftaught.monitor import diversity as d

# The repetition rule on held-out outputs (measured from iteration 0, the baseline), with
# no threshold and no rise needed: it fires from iteration 1 on, every iteration.
REP = ["gate.repetition_metrics=[collapse/eval/repetition]", "gate.repetition_max=0.0", "gate.repetition_rise=-1"]


def lines(root):
    return [json.loads(x) for x in (root / "metrics.jsonl").read_text().splitlines()]


def test_warn_records_collapse_metrics_and_goes_on(micro, capsys):
    # repetition_max=0 fires every iteration; the micro model keeps few rows, so mix half natural data
    store = loop.run(micro("name=warn", *REP, "mix.natural_fraction=0.5"))
    ms = lines(store.root)
    assert [m["iteration"] for m in ms] == [0, 1, 2] and all(m["gate/stop"] == "" for m in ms)
    assert "collapse/gen/distinct_2" not in ms[0] and "collapse/eval/distinct_2" in ms[0]
    for k, m in enumerate(ms[1:], start=1):
        # the gen metrics are those of this iteration's own samples (no hinted ones), recomputed here
        samples = pq.read_table(store.root / f"iter_{k:03d}" / "samples.parquet").to_pylist()
        texts = [r["completion"] or "" for r in samples if not r["hint"]]
        assert m["collapse/unit"] == "chars" and m["collapse/gen/texts"] == len(texts) > 0
        for key, fn in (("distinct_1", lambda t: d.distinct_n(t, 1, "chars")), ("distinct_3", lambda t: d.distinct_n(t, 3, "chars")),
                        ("ttr", lambda t: d.type_token_ratio(t, "chars")), ("mean_length", lambda t: d.mean_length(t, "chars"))):
            assert m[f"collapse/gen/{key}"] == round(fn(texts), 6), key
        assert 0 < m["collapse/gen/distinct_1"] <= 1 and 0 <= m["collapse/gen/self_bleu"] <= 1
        assert 0 <= m["collapse/gen/repetition"] <= 1 and m["collapse/gen/mean_length"] > 0
        assert m["collapse/natural_ppl"] > 1.0
        w = m["collapse/warnings"]
        assert [(x["rule"], x["metric"], x["severity"]) for x in w if x["rule"] == "repetition"] == \
            [("repetition", "collapse/eval/repetition", "high")]
        rep = [x for x in w if x["rule"] == "repetition"][0]
        assert rep["values"] == [ms[0]["collapse/eval/repetition"], m["collapse/eval/repetition"]]  # from the start
    # the mix: natural rows recorded with provenance, half of the training set
    train = pq.read_table(store.root / "iter_001" / "train.parquet").to_pylist()
    natural = [t for t in train if t["source"] == "natural"]
    assert natural and len(natural) == len(train) - len(natural) == ms[1]["mix/natural_rows"]
    assert all(t["sample_id"] is None and t["problem_id"] for t in natural)
    assert json.loads((store.root / "result.json").read_text())["iteration"] == 2  # warn: the last iteration
    assert cli.main(["show", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "best held-out iteration" in out and "collapse/eval/repetition above 0.0" in out


def test_stop_policy_ends_the_run_at_the_first_warning(micro):
    store = loop.run(micro("name=stop", "iterations=3", *REP, "gate.policy=stop"))
    ms = lines(store.root)
    assert [m["iteration"] for m in ms] == [0, 1]
    assert ms[1]["gate/stop"].startswith("stop: [high] collapse/eval/repetition above 0.0")
    assert not (store.root / "iter_002").exists()
    result = json.loads((store.root / "result.json").read_text())
    assert result["iteration"] == 1 and result["stopped"] == ms[1]["gate/stop"]


def test_rollback_points_the_result_at_the_best_held_out_iteration(micro, capsys):
    store = loop.run(micro("name=rollback", "iterations=3", *REP, "gate.policy=rollback"))
    ms = lines(store.root)
    assert [m["iteration"] for m in ms] == [0, 1] and ms[1]["gate/stop"].startswith("rollback:")
    best = max(ms, key=lambda m: (m["eval/acc"], -m["iteration"]))
    result = json.loads((store.root / "result.json").read_text())
    assert result["iteration"] == best["iteration"] == ms[1]["gate/best_iteration"]
    assert result["model"] == best["model"] and result["why"].startswith("best held-out")
    cli.main(["show", str(store.root)])
    out = capsys.readouterr().out
    assert f"result: iteration {best['iteration']}" in out and "stopped after iteration 1: rollback:" in out


def test_patience_stops_without_improvement(micro):
    store = loop.run(micro("name=patience", "iterations=3", "gate.patience=1", "gate.min_delta=1.0"))
    ms = lines(store.root)
    assert [m["iteration"] for m in ms] == [0, 1] and ms[1]["gate/stop"].endswith("(patience)")
