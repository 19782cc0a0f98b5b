"""V-STaR's pure pieces (methods/vstar.py) on hand-made rows: the verifier's DPO
pairs and its precision/recall against gold."""

from selftaught.methods import vstar


def row(pid, i, correct, text=None, it=1, score=0.0, kept=False):
    return {"problem_id": pid, "sample_id": f"{pid}/{i}", "iteration": it, "prompt": f"{pid}\n",
            "completion": text or f"{pid}-{i}", "correct": correct, "vstar_score": score, "kept": kept}


def test_pairs_are_correct_vs_incorrect_of_the_same_problem_capped():
    rows = [row("a", 0, True), row("a", 1, False), row("a", 2, False), row("a", 3, True),
            row("b", 0, True), row("b", 1, True),  # no wrong one: no pair
            row("c", 0, True, "same"), row("c", 1, False, "same")]  # identical texts: no pair
    out = vstar.pairs(rows, cap=3, seed=0)
    assert len(out) == 3 and {p["problem_id"] for p in out} == {"a"}
    by_id = {r["sample_id"]: r for r in rows}
    assert all(by_id[p["sample_id"]]["correct"] and not by_id[p["rejected_id"]]["correct"] for p in out)
    assert out == vstar.pairs(rows, cap=3, seed=0)  # seeded
    assert len(vstar.pairs(rows, cap=9, seed=0)) == 4


def test_quality_is_threshold_against_gold():
    pool = [row("a", 0, True, score=0.5, kept=True), row("a", 1, False, score=0.2),
            row("b", 0, False, score=-0.1), row("b", 1, True, score=-0.3)]
    q = vstar.quality(pool, threshold=0.0)
    assert q["vstar/precision"] == 0.5 and q["vstar/recall"] == 0.5  # a/0 right, a/1 wrong; b/1 missed
    assert q["vstar/kept_pool"] == 1 and q["vstar/kept_pool_correct_frac"] == 1.0
