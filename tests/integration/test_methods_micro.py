"""A real 2-iteration micro-run of each sample-and-filter method on the tiny model,
checking that each keeps what its paper says it keeps; and TTRL's GRPO variant
on a tiny model with a task that has no custom positions."""

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from selftaught import loop
from selftaught.iteration import Iteration
from selftaught.records import Problem, Score
from selftaught.tasks import Task, arithmetic

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def run(micro, method, *overrides):
    cfg = micro(f"name={method}", *overrides, recipe=RECIPES / f"{method}_arithmetic.yaml")
    root = loop.run(cfg).root
    metrics = [json.loads(x) for x in (root / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in metrics] == [0, 1, 2] and all("eval/acc" in m for m in metrics)

    def rows(k, name):  # training rows: only the method's own, not the mix stage's natural data
        out = pq.read_table(root / f"iter_{k:03d}" / f"{name}.parquet").to_pylist()
        return [r for r in out if r.get("source") != "natural"] if name == "train" else out

    return cfg, root, metrics, rows


def test_rft(micro):
    _, _, metrics, rows = run(micro, "rft", "mix.natural_fraction=0", "mix.dedup=none")  # the rule alone
    for k in (1, 2):
        samples, train = rows(k, "samples"), rows(k, "train")
        assert set(Counter(s["problem_id"] for s in samples).values()) == {4}
        by_id = {s["sample_id"]: s for s in samples}
        assert train and all(by_id[t["sample_id"]]["correct"] for t in train)
        paths = [(t["problem_id"], arithmetic.Arithmetic.reasoning_path(None, t["completion"])) for t in train]
        assert len(paths) == len(set(paths))  # distinct paths only
        correct = sum(s["correct"] for s in samples)
        assert metrics[k]["select/distinct_paths"] + metrics[k]["select/duplicates_dropped"] == correct


def test_rest_em(micro):
    _, _, metrics, rows = run(micro, "rest_em", "method.max_per_problem=2")
    for k in (1, 2):
        train = rows(k, "train")
        assert train and max(Counter(t["problem_id"] for t in train).values()) <= 2
        kept = [s for s in rows(k, "samples") if s["kept"]]
        assert kept and all(s["reward"] >= 1.0 for s in kept)
    assert "iter_" not in metrics[2]["train/init"]  # the M-step restarts from the base model


def test_rest(micro):
    _, root, metrics, _ = run(micro, "rest", "method.improve_steps=3")
    for k in (1, 2):
        m = metrics[k]
        assert (m["rest/tau_1"], m["rest/tau_2"], m["rest/tau_3"]) == (0.5, 0.7, 0.9)
        assert m["rest/rows_1"] >= m["rest/rows_2"] >= m["rest/rows_3"] and m["train/steps"] == 3 * m["rest/improve_steps"]
        assert not list((root / f"iter_{k:03d}").glob("improve_*"))
    assert metrics[2]["train/init"].endswith("iter_001/checkpoint")  # Grow/Improve continue from the policy


def test_ttrl_pool_and_transductive(micro):
    cfg, _, metrics, rows = run(micro, "ttrl", "method.samples_per_problem=4")
    pool = {p.id for p in arithmetic.build(cfg.task).train_pool()}
    for k in (1, 2):
        assert {s["problem_id"] for s in rows(k, "samples")} <= pool
        assert metrics[k]["ttrl/transductive"] == 0 and 0 <= metrics[k]["ttrl/label_acc"] <= 1
        kept = [s for s in rows(k, "samples") if s["kept"]]
        assert kept and all(s["answer"] == s["pseudo_label"] for s in kept)
    _, _, tmetrics, trows = run(micro, "ttrl", "method.samples_per_problem=4", "method.transductive=true",
                                "name=ttrl_transductive")
    eval_ids = {s["problem_id"] for s in trows(0, "eval")}
    assert {s["problem_id"] for s in trows(1, "samples")} <= eval_ids
    assert tmetrics[1]["ttrl/transductive"] == 1


def test_self_play(micro):
    _, _, metrics, rows = run(micro, "self_play", "method.judge_samples=2")
    for k in (1, 2):
        samples, train = rows(k, "samples"), rows(k, "train")
        assert {"sample", "judge"} <= {s["phase"] for s in samples}
        kept = [s for s in samples if s["kept"]]
        assert kept and all(s["judge_quality"] >= 0.5 for s in kept)
        assert not any(s["kept"] for s in samples if s["phase"] == "judge")
        assert train and all("|" not in t["prompt"] for t in train)  # the judge's feedback never reaches training
        for key in ("self_play/judge_precision", "self_play/judge_recall"):
            assert 0 <= metrics[k][key] <= 1


def test_best_of_n(micro):
    _, _, _, rows = run(micro, "best_of_n")
    for k in (1, 2):
        train, samples = rows(k, "train"), rows(k, "samples")
        assert train and len(train) == len({t["problem_id"] for t in train})  # one per problem
        best = {t["problem_id"]: max(s["select_score"] for s in samples if s["problem_id"] == t["problem_id"]) for t in train}
        by_id = {s["sample_id"]: s for s in samples}
        assert all(by_id[t["sample_id"]]["select_score"] == best[t["problem_id"]] >= 1.0 for t in train)


class DigitTask(Task):
    """A task without custom positions: 'what digit is this?' -> the digit."""

    name, alphabet, position_tracker = "digit", "0123456789?=\n", None

    def prompt(self, p, hint=False):
        return f"{p.question}?\n"

    def verify(self, p, completion):
        ans = completion.strip()[:1] or None
        return Score(float(ans == p.answer), ans == p.answer, ans)


def test_ttrl_grpo_on_a_tiny_model(tmp_path, seed=0):
    from selftaught.methods import ttrl
    from selftaught.models import tiny
    from selftaught.trainers import grpo

    task = DigitTask()
    model = tiny._init_model(task, seed)
    model.save_pretrained(tmp_path / "m0")
    tiny.build_tokenizer(task.alphabet).save_pretrained(tmp_path / "m0")
    problems = {str(i): Problem(str(i), str(i), str(i)) for i in range(4)}
    trainer = grpo.build(grpo.Config(steps=2, batch_size=8, num_generations=4, max_completion_length=4, lr=1e-3))
    cfg = SimpleNamespace(seed=seed, trainer=SimpleNamespace(steps=2), mix=None)
    it = Iteration(1, cfg, task, None, trainer, str(tmp_path / "m0"), str(tmp_path / "m0"), "h", str(tmp_path / "out"),
                   problems)
    rows = [{"prompt": task.prompt(p), "problem_id": p.id, "pseudo_label": "7"} for p in problems.values()]
    method = ttrl.build(ttrl.Config(variant="grpo"))
    reward = ttrl.agreement_reward(it)
    assert reward(["p", "p"], ["7\n", "3"], ["0", "1"], ["7", "7"]) == [1.0, 0.0]
    m = method.train(it, rows)
    assert (tmp_path / "out" / "config.json").is_file() and m["train/steps"] == 2
    assert m["train/reward_first"] is not None and 0 <= m["train/reward_first"] <= 1


def test_method_needs_are_checked_when_the_recipe_is_validated(micro):
    """A method whose trainer does not match is refused by config validation, naming
    the fields, before any model is loaded (no run directory is created)."""
    from selftaught import config

    with pytest.raises(config.ConfigError, match=r"method.type=ttrl trains with grpo .*trainer.type=sft"):
        micro("method.type=ttrl", "method.variant=grpo", recipe=RECIPES / "ttrl_arithmetic.yaml")
    with pytest.raises(config.ConfigError, match=r"method.type=spin trains with dpo .*trainer.type=sft"):
        micro("method.type=spin", "~method.rationalize", "~method.samples_per_problem", "~method.steps_growth",
              "~method.init")
    cfg = micro("method.type=self_instruct", "~method.rationalize", "~method.samples_per_problem",
                "~method.steps_growth", "~method.init", "method.label=task", "name=si_needs")
    from selftaught.methods import check_task
    from selftaught.tasks import Task

    class Plain(Task):
        name = "plain"

    with pytest.raises(ValueError, match="needs a task with make_problem .*method.label=majority"):
        check_task(cfg.method, cfg.iterations, Plain())
