"""2-iteration micro-runs of the preference, critique and data-generation methods
on the built-in tiny model (arithmetic, with position coupling through DPO), and
of an inference-time eval strategy. The tiny model cannot read judge or critique
prompts, so what is asserted is the bookkeeping: where negatives come from, which
pairs are built, what is trained on, and that nothing crosses into the eval split."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from selftaught import loop

RECIPES = Path(__file__).resolve().parents[2] / "src" / "selftaught" / "recipes"


def rows(root, k, name):
    p = root / f"iter_{k:03d}" / f"{name}.parquet"
    return pq.read_table(p).to_pylist() if p.is_file() else []


def metrics(root, k):
    return json.loads((root / f"iter_{k:03d}" / "metrics.json").read_text())


def test_spin_negatives_come_from_the_previous_iterations_model(micro):
    cfg = micro("name=spin", "method.problems_per_iteration=24", recipe=RECIPES / "spin_arithmetic.yaml")
    root = loop.run(cfg).root
    base = metrics(root, 0)["model"]
    for k, sampler in ((1, base), (2, str(root / "iter_001" / "checkpoint"))):
        samples, train = rows(root, k, "samples"), rows(root, k, "train")
        assert {s["checkpoint"] for s in samples} == {sampler}  # negatives: the previous iteration's model
        by_id = {s["sample_id"]: s for s in samples}
        assert train and all(t["rejected"] == by_id[t["sample_id"]]["completion"] for t in train)
        assert all(t["chosen"] != t["rejected"] and t["rejected_checkpoint"] == sampler for t in train)
        m = metrics(root, k)
        assert m["train/ref_model"] == sampler and m["train/init"] == sampler  # reference = previous model
        assert "spin/reward_margin" in m and m["train/reward_margin_first"] == 0.0  # policy starts at the reference
        assert (root / f"iter_{k:03d}" / "checkpoint" / "config.json").is_file()


def test_self_rewarding_pairs_only_scored_untied_candidates(micro):
    cfg = micro("name=sr", "method.problems_per_iteration=8", "method.candidates=3", "method.judge_samples=1",
                "method.judge_max_new_tokens=12", recipe=RECIPES / "self_rewarding_arithmetic.yaml")
    root = loop.run(cfg).root
    for k in (1, 2):
        samples, train = rows(root, k, "samples"), rows(root, k, "train")
        assert len(samples) == 8 * 3 and all("additive 5-point" in s["judge_prompt"] for s in samples)
        by_id = {s["sample_id"]: s for s in samples}
        for t in train:
            good, bad = by_id[t["sample_id"]], by_id[t["rejected_id"]]
            assert good["judge_score"] is not None and bad["judge_score"] is not None
            assert good["judge_score"] > bad["judge_score"] and good["problem_id"] == bad["problem_id"]
        assert sum(s["kept"] for s in samples) == 2 * len(train)
        m = metrics(root, k)
        assert m["select/pairs"] == len(train) and "judge/parsed_frac" in m and "gen/len_chars_mean" in m
        assert ("train/skipped" in m) == (not train)


def test_cai_sl_then_rl(micro):
    cfg = micro("name=cai", "method.problems_per_iteration=12", "method.sl_trainer.steps=4",
                "method.sl_trainer.batch_size=8", "method.critique_max_new_tokens=16", "warm_start_steps=60", recipe=RECIPES / "cai_arithmetic.yaml")
    root = loop.run(cfg).root
    sl, sl_train = rows(root, 1, "samples"), rows(root, 1, "train")
    assert {s["phase"] for s in sl} == {"draft", "revise0"}
    revisions = {s["sample_id"]: s for s in sl if s["phase"] == "revise0"}
    assert all(r["principle"] and r["critique"] is not None and "CritiqueRequest" in r["prompt"] for r in revisions.values())
    own = [t for t in sl_train if t["source"] == "cai_sl"]
    assert len(own) == 12 and all(t["sample_id"] in revisions for t in own)
    assert all("Critique" not in t["prompt"] for t in sl_train)  # trained on the plain prompt
    assert metrics(root, 1)["cai/stage_sl"] == 1 and (root / "iter_001" / "checkpoint" / "config.json").is_file()
    rl, rl_train = rows(root, 2, "samples"), rows(root, 2, "train")
    assert len(rl) == 24 and all(s["label"] in ("first", "second", "inconsistent", "unparsed") for s in rl)
    assert all(s["checkpoint"] == str(root / "iter_001" / "checkpoint") for s in rl)  # RL samples the SL model
    labeled = {s["pair_id"] for s in rl if s["label"] in ("first", "second")}
    assert len(rl_train) <= len(labeled) and metrics(root, 2)["cai/stage_rl"] == 1


def test_self_instruct_new_problems_are_checked_and_never_held_out(micro):
    cfg = micro("name=si", "method.problems_per_iteration=32", "method.solutions=2",
                "method.propose_max_new_tokens=16", recipe=RECIPES / "self_instruct_arithmetic.yaml")
    store = loop.run(cfg)
    root = store.root
    from selftaught import registry

    task = registry.build("task", cfg.task)
    held = {p.id for p in task.eval_set()}
    for k in (1, 2):
        samples = rows(root, k, "samples")
        props = [s for s in samples if s["phase"] == "propose"]
        assert len(props) == 32 and all(not s["is_answer"] and s["verify_reason"] == "not an answer" for s in props)
        assert all(s["select_reason"] for s in props)
        accepted = [s for s in props if s["select_reason"] == "accepted"]
        assert all(task.make_problem(s["proposal"]) is not None for s in accepted)
        sols = [s for s in samples if s["phase"] == "sample"]
        assert {s["problem_id"] for s in sols} == {s["new_problem_id"] for s in accepted}
        assert not {s["problem_id"] for s in sols} & held
        m = metrics(root, k)
        assert m["select/proposals"] == 32 and m["select/proposals_accepted"] == len(accepted)


def test_eval_strategy_maj_at_k_in_a_run(micro):
    cfg = micro("name=maj", "iterations=0", "eval.strategy=maj@3", "eval.temperature=0.7")
    root = loop.run(cfg).root
    ev = rows(root, 0, "eval")
    finals = [r for r in ev if r["final"]]
    m = metrics(root, 0)
    assert len(ev) == 3 * len(finals) and m["eval/acc_n"] == len(finals) and m["eval/strategy"] == "maj@3"
    assert m["eval/acc"] == sum(r["correct"] for r in finals) / len(finals)
    assert m["eval/generations_per_problem"] == 3


def test_self_rewarding_eft_seed_stage_then_self_rewarding(micro):
    """Iteration 1 is the EFT + IFT seed (SFT on judge examples whose score follows the
    verifier, and on reference solutions); iteration 2 is Self-Rewarding from the
    seeded model, on prompts that are neither EFT problems nor held out."""
    from selftaught import registry
    from selftaught.verifiers.judge import parse_score

    cfg = micro("name=sr-eft", "method.problems_per_iteration=6", "method.candidates=3", "method.judge_samples=1",
                "method.judge_max_new_tokens=12", "method.eft.problems=6", "method.eft.candidates=3",
                "method.eft.trainer.steps=3", "method.eft.trainer.batch_size=8", "mix.dedup=none",
                "mix.natural_fraction=0", recipe=RECIPES / "self_rewarding_arithmetic.yaml")
    root = loop.run(cfg).root
    task = registry.build("task", cfg.task)
    held = {p.id for p in task.eval_set()}
    seed_ids = {p.id for p in task.seed_set()}
    eft_samples, eft_train = rows(root, 1, "samples"), rows(root, 1, "train")
    assert len(eft_samples) == 6 * 3 and {s["problem_id"] for s in eft_samples} <= seed_ids  # labeled seed problems
    judged = [t for t in eft_train if t["source"] == "eft"]
    ift = [t for t in eft_train if t["source"] == "ift"]
    by_id = {s["sample_id"]: s for s in eft_samples}
    assert judged and len(ift) == 6 and all("additive 5-point" in t["prompt"] for t in judged)
    for t in judged:  # the target's score is the verifier's verdict on the judged candidate
        assert parse_score(t["completion"]) == (5.0 if by_id[t["sample_id"]]["correct"] else 1.0)
        assert by_id[t["sample_id"]]["completion"] in t["prompt"]
    p_of = {p.id: p for p in task.seed_set()}
    assert all(t["completion"] == p_of[t["problem_id"]].rationale for t in ift)  # the reference solutions
    m1 = metrics(root, 1)
    assert m1["eft/stage"] == 1 and m1["eft/examples"] == len(judged) and "train/loss" in m1
    assert m1["train/init"] == metrics(root, 0)["model"]
    sr = rows(root, 2, "samples")
    assert len(sr) == 6 * 3 and all(s["checkpoint"] == str(root / "iter_001" / "checkpoint") for s in sr)
    assert not {s["problem_id"] for s in sr} & (held | {s["problem_id"] for s in eft_samples})
    assert all("additive 5-point" in s["judge_prompt"] for s in sr) and "judge/parsed_frac" in metrics(root, 2)
