"""Selection rules of the sample-and-filter family on hand-made, verified records."""

from types import SimpleNamespace

import pytest

from selftaught.config import RunConfig
from selftaught.records import Score
from selftaught.methods import _filter as F
from selftaught.methods import best_of_n, rest, rest_em, rft, self_play, ttrl
from selftaught.tasks import arithmetic

TASK = arithmetic.build(arithmetic.Config())
P1 = arithmetic._problem(12, 34, labeled=False)  # 21+43 reversed; answer 46
P2 = arithmetic._problem(5, 8, labeled=False)  # answer 13
GOOD1 = arithmetic.scratchpad(12, 34)  # "2+4+0=6,0\n1+3+0=4,0\n=64"
WRONG_WORKING1 = "2+4+0=6,0\n1+3+0=4,0\n0+0+0=0,0\n=64"  # right answer, another path


def FakeIt(k=1, trainer_steps=10, trainer=None, out_dir="unused", backend=None):
    """A real Iteration over hand-made records: the methods see exactly what the loop gives them."""
    from selftaught.iteration import Iteration

    cfg = SimpleNamespace(seed=0, trainer=SimpleNamespace(steps=trainer_steps), mix=None)
    return Iteration(k, cfg, TASK, backend, trainer, "BASE", "LAST", "h", str(out_dir), {P1.id: P1, P2.id: P2})


def rows_for(problem, completions, phase="sample"):
    out = []
    for i, c in enumerate(completions):
        s = TASK.verify(problem, c)
        out.append({"sample_id": f"1/{phase}/{problem.id}/{i}", "problem_id": problem.id, "phase": phase,
                    "prompt": TASK.prompt(problem), "completion": c, "answer": s.answer, "reward": s.reward,
                    "correct": s.correct, "verify_reason": s.reason, "steps_ok": s.info.get("steps_ok")})
    return out


def test_rft_keeps_distinct_correct_paths_and_drops_duplicates():
    method = rft.build(rft.Config())
    # the third is the first again up to whitespace in the answer line; the fourth is wrong
    rows = rows_for(P1, [GOOD1, WRONG_WORKING1, GOOD1.replace("=64", "=64 "), "2+4+0=6,0\n=6"])
    rows, train, m = method.select(FakeIt(), rows)
    assert [r["kept"] for r in rows] == [True, True, False, False]
    assert rows[2]["select_reason"] == f"duplicate reasoning path of {rows[0]['sample_id']}"
    assert [t["completion"] for t in train] == [GOOD1, WRONG_WORKING1]
    assert m["select/duplicates_dropped"] == 1 and m["select/paths_per_solved_problem"] == 2


def test_rft_path_normalization():
    assert TASK.reasoning_path(GOOD1) == "2+4+0=6,0\n1+3+0=4,0"  # the equations, no answer line
    from selftaught.tasks import Task

    assert Task.reasoning_path(None, " a  b\n c ") == "a b c"  # default for tasks without their own
    capped = F.distinct_correct(rows_for(P1, [GOOD1, WRONG_WORKING1]), TASK.reasoning_path, max_per_problem=1)
    assert [r["kept"] for r in capped] == [True, False]


def test_rest_em_caps_per_problem_and_thresholds():
    method = rest_em.build(rest_em.Config(max_per_problem=2))
    rows = rows_for(P1, [GOOD1] * 5 + ["=99"]) + rows_for(P2, [arithmetic.scratchpad(5, 8)])
    rows, train, m = method.select(FakeIt(), rows)
    assert sum(r["kept"] for r in rows if r["problem_id"] == P1.id) == 2
    assert sum(r["select_reason"].startswith("over the cap") for r in rows) == 3
    assert not rows[5]["kept"] and "reward 0.000 < 1.0" in rows[5]["select_reason"]
    assert [t["problem_id"] for t in train].count(P2.id) == 1
    again, _, _ = method.select(FakeIt(), [dict(r) for r in rows])  # seeded: same choice on a re-run
    assert [r["kept"] for r in again] == [r["kept"] for r in rows]
    assert m["select/over_cap_dropped"] == 3


class RecordingTrainer:
    def __init__(self):
        self.calls, self.seeds = [], []

    def train(self, init, rows, out_dir, *, steps, seed, position_tracker=None, desc=""):
        from pathlib import Path

        self.calls.append((init, len(rows), out_dir))
        self.seeds.append(seed)
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "config.json").write_text("{}")
        return {"train/loss": 1.0 / len(self.calls), "train/seconds": 1.0}


def test_rest_improve_steps_raise_tau_and_chain_models(tmp_path):
    method = rest.build(rest.Config(thresholds=[0.5, 0.7, 0.9], improve_steps=3))
    train = [{"prompt": "p", "completion": str(x), "reward": x, "problem_id": "a"} for x in (0.55, 0.75, 0.95, 0.2)]
    plan = method.improve_plan(train)
    assert [t for t, _ in plan] == [0.5, 0.7, 0.9] and [len(s) for _, s in plan] == [3, 2, 1]
    trainer, out = RecordingTrainer(), tmp_path / "iter_001" / "checkpoint"
    out.parent.mkdir()
    m = method.train(FakeIt(trainer=trainer, out_dir=out), train)
    assert [n for _, n, _ in trainer.calls] == [3, 2, 1] and len(set(trainer.seeds)) == 3  # a seed per Improve step
    assert trainer.calls[0][0] == "LAST"  # Improve 1 starts from the current policy ...
    assert trainer.calls[1][0] == trainer.calls[0][2] and trainer.calls[2][0] == trainer.calls[1][2]  # ... then chains
    assert (m["rest/tau_1"], m["rest/tau_2"], m["rest/tau_3"]) == (0.5, 0.7, 0.9)
    assert (m["rest/rows_1"], m["rest/rows_2"], m["rest/rows_3"]) == (3, 2, 1) and m["train/steps"] == 9
    assert (out / "config.json").is_file() and not list(out.parent.glob("improve_*"))


def test_rest_select_keeps_lowest_threshold_with_verifier_reward():
    method = rest.build(rest.Config(thresholds=[0.5, 0.9]))
    rows, train, m = method.select(FakeIt(), rows_for(P1, [GOOD1, "=11"]))
    assert [r["kept"] for r in rows] == [True, False] and train[0]["reward"] == 1.0
    assert m["select/above_tau_1"] == m["select/above_tau_2"] == 1 and m["select/reward_mean"] == 0.5
    with pytest.raises(ValueError, match="strictly rising"):
        rest.Config(thresholds=[0.7, 0.5])


def test_ttrl_pseudo_label_and_label_accuracy():
    from selftaught.verifiers.vote import majority_vote

    assert majority_vote(["5", "5", "7", None]) == ("5", 0.5)
    assert majority_vote(["7", "5"]) == ("7", 0.5)  # tie: first seen
    assert majority_vote([None, None]) == (None, 0.0)
    method = ttrl.build(ttrl.Config())
    wrong2 = "5+8+0=2,1\n0+0+1=1,0\n=21"  # 12, a wrong answer the model "agrees" on
    rows = rows_for(P1, [GOOD1, GOOD1, "=99", "x"]) + rows_for(P2, [wrong2, wrong2, wrong2, arithmetic.scratchpad(5, 8)])
    rows, train, m = method.select(FakeIt(), rows)
    assert [r["kept"] for r in rows] == [True, True, False, False, True, True, True, False]
    assert {r["pseudo_label"] for r in rows if r["problem_id"] == P2.id} == {"12"}
    assert m["ttrl/label_acc"] == 0.5 and m["ttrl/majority_ratio"] == pytest.approx((0.5 + 0.75) / 2)
    assert m["ttrl/transductive"] == 0 and m["ttrl/kept_correct_frac"] == pytest.approx(2 / 5)
    blind = [dict(r, correct=not r["correct"], reward=0.0) for r in rows]  # gold must not steer selection
    assert [r["kept"] for r in method.select(FakeIt(), blind)[0]] == [r["kept"] for r in rows]


def test_ttrl_grpo_refuses_position_coupled_tasks():
    from selftaught.trainers import grpo

    with pytest.raises(ValueError, match="custom position ids"):
        ttrl.build(ttrl.Config(variant="grpo")).generate(FakeIt(), [P1])
    with pytest.raises(ValueError, match="position_tracker"):
        grpo.build(grpo.Config()).train("unused", [{"prompt": "p"}], "unused", position_tracker=TASK.position_tracker,
                                        reward_fn=lambda **_: [])


def test_best_of_n_keeps_the_top_scorer():
    method = best_of_n.build(best_of_n.Config())
    rows, train, m = method.select(FakeIt(), rows_for(P1, ["=11", GOOD1, WRONG_WORKING1]) + rows_for(P2, ["=1", "=2"]))
    assert [r["kept"] for r in rows] == [False, True, False, False, False]  # ties go to the first; P2 has no winner
    assert [t["completion"] for t in train] == [GOOD1]
    assert m == {"select/problems_with_kept": 1, "select/kept_correct_frac": 1.0}
    loose = best_of_n.build(best_of_n.Config(min_reward=0.0))
    assert sum(r["kept"] for r in loose.select(FakeIt(), rows_for(P2, ["=1", "=2"]))[0]) == 1


def test_self_play_keeps_by_judge_and_reports_judge_vs_verifier():
    assert self_play.parse_verdict("INCORRECT: carry dropped") == (False, ": carry dropped")
    assert self_play.parse_verdict("Looks CORRECT") == (True, "")
    assert self_play.parse_verdict("no idea")[0] is None
    method = self_play.build(self_play.Config(quality_threshold=0.75))
    rows = rows_for(P1, [GOOD1, "=11", WRONG_WORKING1]) + rows_for(P1, ["=64"], phase="revise")
    rows += rows_for(P1, [GOOD1], phase="judge")
    for r, q in zip(rows, (1.0, 0.75, 0.25, 0.75, None)):
        r.update(judge_quality=q, judge_verdict=None if q is None else q > 0.5)
    rows, train, m = method.select(FakeIt(), rows)
    assert [r["kept"] for r in rows] == [True, True, False, True, False]
    # judged CORRECT: GOOD1 (right), "=11" (wrong) -> precision 1/2; really correct: GOOD1, WRONG_WORKING1 -> recall 1/2
    assert m["self_play/judge_precision"] == 0.5 and m["self_play/judge_recall"] == 0.5
    assert m["self_play/revised"] == 1 and m["select/kept_correct_frac"] == pytest.approx(2 / 3)


def test_reward_model_scorer(tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from selftaught.verifiers import scorers
    from selftaught.models.tiny import build_tokenizer

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=20, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=2, num_labels=1, pad_token_id=0)
    LlamaForSequenceClassification(cfg).save_pretrained(tmp_path / "rm")
    build_tokenizer(arithmetic.ALPHABET).save_pretrained(tmp_path / "rm")
    rows = rows_for(P1, [GOOD1, "=11", WRONG_WORKING1, "=64"])
    raw = scorers.reward_model_scores(str(tmp_path / "rm"), [r["prompt"] for r in rows], [r["completion"] for r in rows], 2)
    alone = scorers.reward_model_scores(str(tmp_path / "rm"), [rows[1]["prompt"]], [rows[1]["completion"]])
    assert len(set(raw)) == 4 and alone[0] == pytest.approx(raw[1], abs=1e-5)  # padding does not change a score
    rm = scorers.rewards(rows, best_of_n.Config(scorer="reward_model", reward_model=str(tmp_path / "rm")))
    assert min(rm) == 0.0 and max(rm) == 1.0 and rows[0]["rm_score"] == pytest.approx(raw[0])
    comb = scorers.rewards(rows, best_of_n.Config(scorer="combined", reward_model=str(tmp_path / "rm")))
    assert min(comb[i] for i in (0, 2, 3)) >= 0.5 >= comb[1]  # with bonus 1, no wrong one beats a correct one
    with pytest.raises(ValueError, match="needs `reward_model:`"):
        rest.Config(scorer="combined")


def test_recipes_validate():
    from pathlib import Path

    from selftaught import config

    root = Path(__file__).resolve().parents[2] / "recipes"
    for name in ("rft", "rest_em", "rest", "ttrl", "self_play", "best_of_n"):
        cfg = config.load(root / f"{name}_arithmetic.yaml")
        assert isinstance(cfg, RunConfig) and cfg.method.type == name


class ScriptedBackend:
    """Answers by prompt: the judge says INCORRECT to '=11', revisions are right."""

    name = "scripted"

    def load(self, model, tracker=None):
        pass

    def sample(self, prompts, n, **kw):
        def one(p, i):
            if "Is the solution above correct?" in p:
                return "INCORRECT: wrong sum" if "=11" in p else "CORRECT"
            if "Improved solution:" in p:
                return GOOD1
            return "=11" if i == 0 else GOOD1
        return [[one(p, i) for i in range(n)] for p in prompts]


def real_it():
    return FakeIt(trainer_steps=1, backend=ScriptedBackend())


@pytest.mark.parametrize("judge", ["prompt", "resolve"])
def test_self_play_generate_judges_and_revises(judge):
    method = self_play.build(self_play.Config(judge=judge, samples_per_problem=2, judge_samples=2))
    it = real_it()
    rows = it.score(method.generate(it, [P1]))
    assert len({r["sample_id"] for r in rows}) == len(rows)
    sols = [r for r in rows if r["phase"] == "sample"]
    assert [r["completion"] for r in sols] == ["=11", GOOD1]
    if judge == "prompt":  # the judge prompt's verdicts, one CORRECT and one INCORRECT solution: no revision
        assert [r["judge_verdict"] for r in sols] == [False, True] and sols[0]["judge_feedback"] == ": wrong sum"
        assert not any(r["phase"] == "revise" for r in rows)
    else:  # re-derivations: "=11" (answer 11) and GOOD1 (46) -> each solution gets half the votes: not > 0.5
        assert [r["judge_quality"] for r in sols] == [0.5, 0.5] and not any(r["judge_verdict"] for r in sols)
        revised = [r for r in rows if r["phase"] == "revise"]
        assert len(revised) == 1 and revised[0]["hint"] in ("11", "46") and "|" in revised[0]["prompt"]
    rows, train, _ = method.select(it, rows)
    assert all("|" not in t["prompt"] and "Is the solution" not in t["prompt"] for t in train)


def test_score_batches_through_verify_many_and_skips_proposals():
    """A task with ``verify_many`` (the code task: sandbox workers in parallel) gets
    every answer of a stage in one call; non-answers never reach the verifier."""
    from selftaught.iteration import Iteration

    calls = []

    from selftaught.tasks import Task

    class Batched(Task):
        name = "batched"

        def verify_many(self, problems, completions):
            calls.append(list(completions))
            return [Score(float(c == "7"), c == "7", c, "ok") for c in completions]

    it = Iteration(1, SimpleNamespace(seed=0), Batched(), ScriptedBackend(), None, "B", "L", "h", "out", {P1.id: P1})
    rows = [{"problem_id": P1.id, "completion": "7"}, {"problem_id": P1.id, "completion": "x", "is_answer": False},
            {"problem_id": P1.id, "completion": "8"}]
    it.score(rows)
    assert calls == [["7", "8"]]
    assert [r["correct"] for r in rows] == [True, False, False] and rows[1]["verify_reason"] == "not an answer"


def test_a_method_scorer_may_be_your_function(tmp_path):
    """``scorer: ./file.py:function`` ranks best-of-N samples by your own score, as written."""
    f = tmp_path / "short.py"
    f.write_text("def shortest(problem, completion):\n    return 1.0 / len(completion)\n")
    method = best_of_n.build(best_of_n.Config(scorer=f"{f}:shortest", min_reward=0.0))
    rows, train, _ = method.select(FakeIt(), rows_for(P1, [WRONG_WORKING1, GOOD1, "=11"]))
    assert [r["kept"] for r in rows] == [False, False, True]  # the shortest wins, right or wrong
    assert rows[2]["select_score"] == pytest.approx(min(1.0, 1.0 / 3))
    with pytest.raises(ValueError, match="expected one of verifier"):
        best_of_n.Config(scorer="bogus")
