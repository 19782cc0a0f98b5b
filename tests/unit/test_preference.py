"""Preference and critique methods on hand-made records: judge-score parsing,
best-vs-worst pairs, SPIN pairs, CAI labels and principles, Self-Instruct's
novelty and quality filters."""

import json
from types import SimpleNamespace

import pytest

from selftaught.verifiers.judge import parse_score
from selftaught.methods import cai, self_instruct, self_rewarding, spin
from selftaught.records import Problem

# --- judge scores -------------------------------------------------------------------


@pytest.mark.parametrize("text, want", [
    ("The response is relevant (+1) and answers it (+1).\nScore: 4", 4.0),
    ("**Score:** 3/5", 3.0),
    ("I would give this a score of 2 out of 5.", 2.0),
    ("Score: 5.0", 5.0),
    ("score: 1. Wait, re-reading it... Score: 3", 3.0),  # the conclusion wins
    ("Total points: 2", 2.0),
    ("... which earns it 4/5.", 4.0),
    ("Score - 0", 0.0),
    ('Conclude with the score using the format: "Score: <total points>"', None),  # template echoed
    ("Score: 7", None),  # out of the 0-5 range
    ("Score: 10/10", None),
    ("This response is great, I love it!", None),
    ("", None),
    (None, None),
])
def test_parse_score_on_messy_judge_outputs(text, want):
    assert parse_score(text) == want


# --- self-rewarding pairs ------------------------------------------------------------------

def cand(pid, i, score, correct=None, text=None):
    return {"sample_id": f"{pid}/{i}", "problem_id": pid, "judge_score": score, "correct": correct,
            "prompt": f"Q{pid}", "completion": text or f"answer {pid}{i}"}


def test_best_worst_pairs_skip_ties_and_unscored():
    rows = [
        cand("a", 0, 2.0), cand("a", 1, 4.5), cand("a", 2, None), cand("a", 3, 4.5),  # pair: a/1 over a/0
        cand("b", 0, 3.0), cand("b", 1, 3.0), cand("b", 2, None), cand("b", 3, 3.0),  # tie -> no pair
        cand("c", 0, None), cand("c", 1, 5.0), cand("c", 2, None), cand("c", 3, None),  # one scored -> no pair
        cand("d", 0, None), cand("d", 1, None),  # nothing parsed -> no pair
    ]
    pairs, why = self_rewarding.best_worst_pairs(rows)
    assert [(b["sample_id"], w["sample_id"]) for b, w in pairs] == [("a/1", "a/0")]
    assert why["a/3"] == "neither best nor worst" and why["a/2"] == "no parsable judge score"
    assert why["b/0"].startswith("tie") and why["b/2"] == "no parsable judge score"
    assert why["c/1"].startswith("fewer than two") and why["d/0"] == "no parsable judge score"
    assert set(why) == {r["sample_id"] for r in rows}


def test_self_rewarding_select_builds_dpo_rows_and_gold_agreement():
    rows = [cand("a", 0, 1.0, False), cand("a", 1, 4.0, True), cand("b", 0, 5.0, False), cand("b", 1, 2.0, True)]
    method = self_rewarding.SelfRewarding(self_rewarding.Config())
    rows, train, m = method.select(None, rows)
    assert [(t["chosen"], t["rejected"]) for t in train] == [("answer a1", "answer a0"), ("answer b0", "answer b1")]
    assert all(r["kept"] for r in rows)
    assert m["judge/gold_pair_agreement"] == 0.5 and m["judge/gold_pairs"] == 2  # right on a, wrong on b
    assert m["judge/score_hist/4"] == 1 and m["judge/score_hist/3"] == 0 and m["judge/parsed_frac"] == 1.0
    assert m["judge/chosen_correct_frac"] == 0.5


def test_gold_pair_agreement_counts_ties_half():
    rows = [cand("a", 0, 3.0, True), cand("a", 1, 3.0, False), cand("a", 2, None, False)]
    assert self_rewarding.gold_pair_agreement(rows) == (0.5, 1)


# --- SPIN ---------------------------------------------------------------------------------

def test_spin_pairs_target_over_previous_models_sample():
    p = Problem("1+2", "1+2", "3", rationale="1+2+0=3,0\n=3")
    task = SimpleNamespace(prompt=lambda prob, hint=False: prob.question + "\n")
    it = SimpleNamespace(task=task, problem_of=lambda r: Problem(**json.loads(r["problem_json"])))
    pj = json.dumps({"id": p.id, "question": p.question, "answer": p.answer, "group": "", "rationale": p.rationale, "meta": {}})
    rows = [{"sample_id": "s0", "problem_id": p.id, "completion": "=9", "checkpoint": "runs/x/iter_001/checkpoint",
             "problem_json": pj, "correct": False},
            {"sample_id": "s1", "problem_id": p.id, "completion": "1+2+0=3,0\n=3\n", "checkpoint": "runs/x/iter_001/checkpoint",
             "problem_json": pj, "correct": True}]
    rows, train, m = spin.Spin(spin.Config()).select(it, rows)
    assert len(train) == 1 and m["select/pairs"] == 1 and m["select/identical_pairs"] == 1
    t = train[0]
    assert t["chosen"] == p.rationale and t["rejected"] == "=9" and t["prompt"] == "1+2\n"
    assert t["rejected_checkpoint"] == "runs/x/iter_001/checkpoint"
    assert rows[1]["kept"] is False and "zero gradient" in rows[1]["select_reason"]



def test_spin_sft_baseline_trains_every_target_and_needs_the_sft_trainer():
    p = Problem("1+2", "1+2", "3", rationale="1+2+0=3,0\n=3")
    task = SimpleNamespace(prompt=lambda prob, hint=False: prob.question + "\n")
    it = SimpleNamespace(task=task, problem_of=lambda r: p)
    rows = [{"sample_id": "s0", "problem_id": p.id, "completion": "=9", "correct": False},
            {"sample_id": "s1", "problem_id": p.id, "completion": "1+2+0=3,0\n=3", "correct": True}]
    cfg = spin.Config(objective="sft")
    rows, train, m = spin.Spin(cfg).select(it, rows)
    assert [(t["prompt"], t["completion"]) for t in train] == [("1+2\n", p.rationale)] * 2  # the target, never the sample
    assert all("rejected" not in t for t in train) and all(r["kept"] for r in rows)  # no negatives, none dropped
    assert m["select/sft_rows"] == 2 and m["select/negatives_correct_frac"] == 0.5
    assert cfg.needs(3).trainer == ("sft",) and spin.Config().needs(3).trainer == ("dpo",)

# --- CAI ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ("A) is better", "A"), (" B", "B"), ("B)", "B"), ("The answer is (A).", "A"),
    ("option B is more helpful", "B"), ("(A) and (B) are both fine", None), ("neither", None), ("", None),
])
def test_parse_choice(text, want):
    assert cai.parse_choice(text) == want


def test_choice_label_requires_agreement_across_orders():
    assert cai.choice_label("A", "B") == "first"  # first preferred in both orders
    assert cai.choice_label("B", "A") == "second"
    assert cai.choice_label("A", "A") == "inconsistent"  # position bias, not preference
    assert cai.choice_label(None, "A") == "unparsed"
    assert cai.choice_label("B", "skip") == "second"


def test_rl_pairs_from_labels():
    def row(i, text, label):
        return {"sample_id": f"s{i}", "problem_id": f"p{i // 2}", "prompt": "Q", "completion": text, "label": label}

    rows = [row(0, "x", "second"), row(1, "y", "second"), row(2, "z", "inconsistent"), row(3, "w", "inconsistent"),
            row(4, "same", "first"), row(5, "same", "first")]
    rows, train = cai.rl_pairs(rows)
    assert [(t["chosen"], t["rejected"]) for t in train] == [("y", "x")]
    assert rows[1]["select_reason"] == "preferred" and rows[2]["select_reason"] == "no label (inconsistent)"
    assert rows[4]["select_reason"] == "the two responses are identical"


def test_default_constitution_loads_and_bad_files_name_the_line(tmp_path):
    principles = cai.load_principles("constitution")
    assert len(principles) >= 3 and all(set(p) == set(cai.FIELDS) for p in principles)
    bad = tmp_path / "c.txt"
    bad.write_text("critique: a\nrevision: b\nchoose: c\n\ncritique: d\nchoos: e\n")
    with pytest.raises(ValueError, match=r"c.txt, line 6"):
        cai.load_principles(str(bad))
    bad.write_text("critique: a\nrevision: b\n")
    with pytest.raises(ValueError, match=r"line 1: principle lacks field\(s\) choose"):
        cai.load_principles(str(bad))


# --- Self-Instruct ------------------------------------------------------------------------------

def test_rouge_l_matches_hand_computed_values():
    t = self_instruct.rouge_tokens
    assert self_instruct.rouge_l(t("the cat sat on the mat"), t("the cat sat on the mat")) == 1.0
    # LCS("a b c d", "a c d e") = 3 -> F = 2*3/(4+4)
    assert self_instruct.rouge_l(t("a b c d"), t("a c d e")) == pytest.approx(0.75)
    assert self_instruct.rouge_l(t("a b"), t("c d")) == 0.0
    assert self_instruct.lcs(list("ABCBDAB"), list("BDCABA")) == 4


def test_novelty_filter_rejects_near_copies_and_keeps_new_problems():
    pool = self_instruct.Novelty(["What is 12 plus 35?", "Sort the list 3, 1, 2 in ascending order."])
    score, near = pool.closest("What is 12 plus 36?")
    assert score >= 0.7 and near == "What is 12 plus 35?"
    score, _ = pool.closest("How many legs do three spiders have?")
    assert score < 0.7
    pool.add("How many legs do three spiders have?")
    assert pool.closest("How many legs do three spiders have")[0] == 1.0  # added proposals count too


def test_quality_filters_and_question_extraction():
    cfg = self_instruct.Config()
    assert self_instruct.quality_problem("12+34", cfg) == ""
    assert self_instruct.quality_problem("1", cfg) == "too short"
    assert self_instruct.quality_problem("?what", cfg) == "starts with punctuation"
    assert self_instruct.quality_problem("1111111111111+1", cfg).startswith("degenerate")
    assert self_instruct.quality_problem("x" * 500, cfg) == "too long"
    assert self_instruct.extract_question("\n  Problem: 12+34\nProblem: 5+6") == "12+34"
    assert self_instruct.extract_question("3. What is 2+2?") == "What is 2+2?"


def test_majority_label_needs_agreement():
    from selftaught.tasks.arithmetic import Arithmetic, Config

    task = Arithmetic(Config())
    p = task.make_problem("12+34")
    assert p.answer == "46"
    p0 = Problem(**{**p.__dict__, "answer": ""})
    got = self_instruct.majority_label(task, p0, ["=64", "=64", "=15", "nothing"], 0.5)
    assert got.answer == "46" and got.meta["agreement"] == 0.5
    assert self_instruct.majority_label(task, p0, ["=64", "=15", "=25", "x"], 0.5) is None
    assert task.make_problem("not a sum") is None


def test_dpo_sft_weight_keeps_the_chosen_likelihood_up(tmp_path):
    """Pairs that differ in one digit (SPIN's on arithmetic): pure DPO may push the
    chosen response down along with the rejected one (likelihood displacement);
    with the chosen responses' NLL added (sft_weight) their log-probability ends higher."""
    from tiny_llama import save_tiny_llama

    from selftaught.trainers import dpo

    save_tiny_llama(tmp_path / "init")
    rows = [{"prompt": f"{a}+{b}=", "chosen": f"{a + b}.", "rejected": f"{a + b + 1}."}
            for a in range(10, 18) for b in range(20, 24)]
    ends = {}
    for w in (0.0, 1.0):
        cfg = dpo.Config(lr=3e-3, batch_size=8, steps=6, sft_weight=w, chat_template=False)
        m = dpo.build(cfg).train(str(tmp_path / "init"), rows, str(tmp_path / f"out{w}"), seed=0, desc="")
        ends[w] = m["train/logps_chosen"]
    assert ends[1.0] > ends[0.0] + 0.5, ends
