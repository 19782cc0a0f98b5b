"""The mix stage on known records: natural fraction, dedup, cap, accumulate, temperature."""

import random
from types import SimpleNamespace

import pytest

from selftaught.tasks import Task
from selftaught import mix
from selftaught.config import GateConfig
from selftaught.mix import MixConfig
from selftaught.monitor.perplexity import fixed_set, natural_problems
from selftaught.records import Problem
from selftaught.store import RunStore


class WordTask(Task):
    """Eight labeled seed problems, two held-out ones (one of them also labeled: must never be mixed)."""

    name = "words"

    def seed_set(self):
        return [Problem(f"s{i}", f"q{i}", str(i), rationale=f"because {i} so {i}") for i in range(8)] + \
            [Problem("e0", "qe", "0", rationale="leak")]

    def eval_set(self):
        return [Problem("e0", "qe", "0"), Problem("e1", "qf", "1")]

    def train_pool(self):
        return []

    def prompt(self, p, hint=False):
        return f"Q: {p.question}\n"


def it_for(tmp_path, k=1, **mixcfg):
    cfg = SimpleNamespace(mix=MixConfig(**mixcfg), gate=GateConfig(natural_ppl_examples=2), seed=0)
    return SimpleNamespace(k=k, cfg=cfg, task=WordTask(), seed=lambda stage: random.Random(f"{k}/{stage}").randrange(2**31))


def row(sid, pid, text, source="sample"):
    return {"prompt": f"Q: {pid}\n", "completion": text, "source": source, "sample_id": sid, "problem_id": pid}


def sample(sid):
    return {"sample_id": sid, "kept": True, "select_reason": "first correct"}


def test_natural_fraction_without_replacement_and_provenance(tmp_path):
    train = [row(f"1/sample/p{i}/0", f"p{i}", f"answer number {i} is {i}") for i in range(7)]
    out, m = mix.apply(it_for(tmp_path), RunStore(tmp_path), [], train)
    natural = [r for r in out if r["source"] == "natural"]
    assert len(natural) == 3 and len(out) == 10 and m["mix/natural_frac"] == pytest.approx(0.3)
    assert len({r["problem_id"] for r in natural}) == 3  # without replacement
    measured = {p.id for p in fixed_set(natural_problems(WordTask()), 2, 0)}
    for r in natural:
        assert r["sample_id"] is None and r["problem_id"].startswith("s") and r["problem_id"] not in measured
        assert r["completion"] == f"because {r['problem_id'][1:]} so {r['problem_id'][1:]}"
    again, _ = mix.apply(it_for(tmp_path), RunStore(tmp_path), [], train)
    assert again == out  # seeded
    other, _ = mix.apply(it_for(tmp_path, k=2), RunStore(tmp_path), [], train)
    assert {r["problem_id"] for r in other if r["source"] == "natural"} != {r["problem_id"] for r in natural}
    off, m0 = mix.apply(it_for(tmp_path, natural_fraction=0.0), RunStore(tmp_path), [], train)
    assert off == train and m0["mix/natural_rows"] == 0


def test_natural_pool_smaller_than_wanted_and_nothing_kept(tmp_path):
    train = [row(f"1/sample/p{i}/0", f"p{i}", f"text {i}") for i in range(40)]
    out, m = mix.apply(it_for(tmp_path, natural_fraction=0.5), RunStore(tmp_path), [], train)
    assert m["mix/natural_rows"] == 6  # 8 seeds - 2 measured for perplexity; held-out e0 never
    out, m = mix.apply(it_for(tmp_path), RunStore(tmp_path), [], [])
    assert out == [] and m["mix/natural_rows"] == 0  # never train on natural data alone


LONG = "the model adds the digits from the right and carries the one into the next column " * 2


def test_dedup_within_problem_by_default(tmp_path):
    train = [row("a", "p1", LONG), row("b", "p1", LONG + "done"), row("c", "p2", LONG), row("d", "p1", "short other")]
    samples = [sample(s) for s in "abcd"]
    out, m = mix.apply(it_for(tmp_path, natural_fraction=0.0), RunStore(tmp_path), samples, train)
    assert [r["sample_id"] for r in out] == ["a", "c", "d"]  # b repeats a; c is another problem's
    assert m["mix/dropped_duplicates"] == 1
    assert samples[1]["kept"] is False and samples[1]["select_reason"] == "mix: near-duplicate of a"
    assert samples[0]["kept"] and samples[2]["kept"]
    out, _ = mix.apply(it_for(tmp_path, natural_fraction=0.0, dedup="global"), RunStore(tmp_path), [], train)
    assert [r["sample_id"] for r in out] == ["a", "d"]
    out, _ = mix.apply(it_for(tmp_path, natural_fraction=0.0, dedup="none"), RunStore(tmp_path), [], train)
    assert len(out) == 4


def test_near_duplicates_threshold():
    a = " ".join(f"w{i}" for i in range(40))
    b = " ".join(f"w{i}" for i in range(38)) + " x y"  # 38 3-grams each, 36 shared: Jaccard 36/40 = 0.9
    rows = [{"problem_id": "p", "completion": a}, {"problem_id": "p", "completion": b}]
    assert mix.near_duplicates(rows, 0.7, 3, "words") == {1: 0}
    assert mix.near_duplicates(rows, 0.9, 3, "words") == {1: 0}
    assert mix.near_duplicates(rows, 0.91, 3, "words") == {}
    assert mix.near_duplicates(rows, 0.99, 3, "words") == {}


def test_per_problem_cap(tmp_path):
    train = [row(f"s{i}", "p1" if i < 3 else "p2", f"distinct text number {i} here") for i in range(4)]
    samples = [sample(f"s{i}") for i in range(4)]
    out, m = mix.apply(it_for(tmp_path, natural_fraction=0.0, per_problem_cap=2), RunStore(tmp_path), samples, train)
    assert [r["sample_id"] for r in out] == ["s0", "s1", "s3"] and m["mix/dropped_cap"] == 1
    assert samples[2]["select_reason"].startswith("mix: over the cap of 2")


def test_accumulate_reads_earlier_iterations_without_natural_rows(tmp_path):
    store = RunStore(tmp_path)
    store.write_rows(1, "train", [row("1/a", "p1", "one a"), row(None, "s1", "nat", source="natural")])
    store.write_rows(2, "train", [row("2/b", "p2", "two b"), row("1/a", "p1", "one a")])  # already accumulated
    current = [row("3/c", "p3", "three c")]
    out, m = mix.apply(it_for(tmp_path, k=3, natural_fraction=0.0, accumulate=True), store, [], current)
    assert [r["sample_id"] for r in out] == ["3/c", "2/b", "1/a"]  # newest first, each once, no natural row
    assert m["mix/accumulated_rows"] == 2
    out, _ = mix.apply(it_for(tmp_path, k=3, natural_fraction=0.0), store, [], current)
    assert [r["sample_id"] for r in out] == ["3/c"]  # replace (default)


def test_non_sft_rows_are_left_alone(tmp_path):
    pairs = [{"prompt": "q", "chosen": "a", "rejected": "b"}]
    assert mix.apply(it_for(tmp_path), RunStore(tmp_path), [], pairs) == (pairs, {"mix/skipped": 1})


def test_temperature_schedule():
    assert mix.scheduled_temperature(MixConfig(), 3, 0.7) == 0.7
    sched = MixConfig(temperature_schedule=[0.7, 0.9, 1.1])
    assert [mix.scheduled_temperature(sched, k, 0.5) for k in (1, 2, 3, 4)] == [0.7, 0.9, 1.1, 1.1]
    step = MixConfig(temperature_step=0.1)
    assert [round(mix.scheduled_temperature(step, k, 0.7), 6) for k in (1, 2, 3)] == [0.7, 0.8, 0.9]
    assert mix.scheduled_temperature(None, 5, 0.3) == 0.3


def test_a_natural_fraction_with_no_natural_rows_is_a_warning_not_silence(tmp_path, capsys):
    class Unlabeled(WordTask):
        def seed_set(self):
            return []

    it = it_for(tmp_path)
    it.task = Unlabeled()
    train = [row(f"1/sample/p{i}/0", f"p{i}", f"answer number {i} is {i}") for i in range(7)]
    out, m = mix.apply(it, RunStore(tmp_path), [], train)
    assert out == train and m["mix/natural_rows"] == 0
    assert "natural_fraction=0.3" in m["mix/warning"] and "no natural" in capsys.readouterr().out
    _, labeled = mix.apply(it_for(tmp_path), RunStore(tmp_path), [], train)
    assert "mix/warning" not in labeled
