"""Real micro-runs of process supervision on the tiny model: STaR + PRM writes its
rollouts and step labels as records, trains a PRM each iteration, keeps what it
approves (and a bounded share of flagged traces), resumes a select stage to the same decisions, reranks best-of-N with
its PRM at evaluation; a weak proxy scorer is watched (proxy, gold, KL)."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from selftaught import loop
from selftaught.verifiers import prm

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def rows(root, k, name):
    return pq.read_table(root / f"iter_{k:03d}" / f"{name}.parquet").to_pylist()


def metrics_of(root):
    return [json.loads(x) for x in (root / "metrics.jsonl").read_text().splitlines()]


def test_star_prm_records_labels_trains_and_filters(micro):
    cfg = micro("name=star_prm", "method.label_traces=24", "method.prm_steps=30", "mix.natural_fraction=0",
                recipe=RECIPES / "star_prm_arithmetic.yaml")
    root = loop.run(cfg).root
    m = metrics_of(root)
    assert "overopt/proxy" not in m[0]  # no PRM before iteration 1 selects
    for k in (1, 2):
        samples = rows(root, k, "samples")
        rolls = [r for r in samples if r["phase"] == prm.ROLLOUT]
        traces = [r for r in samples if r["phase"] != prm.ROLLOUT]
        assert rolls and not any(r["kept"] for r in rolls)
        assert all(r["completion"].startswith(r["rollout_prefix"]) and r["hint"] is None for r in rolls)
        labels = rows(root, k, "steps")
        assert len({l["trace_id"] for l in labels}) <= 24 and all(l["hard"] >= l["soft"] for l in labels)
        assert {l["trace_id"] for l in labels} <= {t["sample_id"] for t in traces}
        assert (root / f"iter_{k:03d}" / "prm" / "config.json").is_file()
        kept = [t for t in traces if t["kept"]]
        flagged = [t for t in kept if t["prm_score"] < 0.5]  # admitted to the thinnest groups (flagged_share)
        assert all(t["correct"] for t in kept) and len(flagged) <= 0.08 * len(kept)
        assert all("admitted" in t["select_reason"] for t in flagged) and m[k]["select/flagged_admitted"] == len(flagged)
        assert {t["sample_id"] for t in rows(root, k, "train")} == {t["sample_id"] for t in kept}
        assert m[k]["prm/step_n"] > 0 and 0 <= m[k]["prm/label_hard_acc"] <= 1
        assert m[k]["collapse/gen/texts"] == sum(not t["hint"] for t in traces)  # rollouts are not the model's own
        assert m[k]["overopt/n"] == m[k]["eval/acc_n"] and m[k]["overopt/gold"] == pytest.approx(m[k]["eval/acc"], abs=1e-6)
    assert m[1]["overopt/kl"] > 0  # trained away from the start

    # Resume: a select stage redone from its inputs makes the same decisions and labels.
    before = [(r["sample_id"], r["kept"], r["prm_score"]) for r in rows(root, 2, "samples")]
    labels = rows(root, 2, "steps")
    for name in ("select", "train", "evaluate", "monitor"):
        (root / "iter_002" / f"{name}.done").unlink()
    loop.run(cfg)
    after = [(r["sample_id"], r["kept"], r["prm_score"]) for r in rows(root, 2, "samples")]
    assert [a[:2] for a in after] == [b[:2] for b in before] and rows(root, 2, "steps") == labels

    # Best-of-N at evaluation, reranked by the PRM iteration 1 trained.
    it1 = root / "iter_001"
    ev = micro("name=bon", "iterations=0", f"model={it1 / 'checkpoint'}", "eval.strategy=best_of_2",
               "eval.scorer=prm", f"eval.prm={it1 / 'prm'}", "eval.temperature=0.7")
    out = rows(loop.run(ev).root, 0, "eval")
    finals = [r for r in out if r["final"]]
    assert len(out) == 2 * len(finals) and all(r["strategy_score"] == pytest.approx(min(r["prm_steps"]), abs=1e-5)
                                               for r in finals if r["prm_steps"])
    for r in finals:
        group = [x for x in out if x["problem_id"] == r["problem_id"]]
        assert r["strategy_score"] == max(x["strategy_score"] for x in group)


def longer(problem, completion):  # a deliberately weak proxy, named by path below
    return min(1.0, len(completion) / 64)


def test_a_proxy_scorer_is_watched_from_iteration_0(micro):
    cfg = micro("name=weak", "method.type=best_of_n", "~method.rationalize", "~method.require_valid_steps",
                f"method.scorer={Path(__file__).resolve()}:longer", "method.min_reward=0", "gate.falling_for=1")
    m = metrics_of(loop.run(cfg).root)
    assert m[0]["overopt/kl"] == 0 and all("overopt/proxy" in x for x in m)
    for x in m[1:]:
        fired = [w for w in x["collapse/warnings"] if w["rule"] == "overoptimization"]
        prev = m[x["iteration"] - 1]
        assert bool(fired) == (x["overopt/proxy"] > prev["overopt/proxy"] and x["overopt/gold"] < prev["overopt/gold"])
