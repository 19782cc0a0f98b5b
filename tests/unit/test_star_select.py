"""STaR's selection rule on hand-made records."""

from types import SimpleNamespace

from selftaught.methods.star import Config, Star
from selftaught.tasks.arithmetic import Arithmetic, Config as TaskConfig, scratchpad
from selftaught.records import Problem


def _it(problems):
    return SimpleNamespace(task=Arithmetic(TaskConfig()), problems={p.id: p for p in problems}, k=1)


def _p(a, b):
    return Problem(f"{a}+{b}", f"{a}+{b}", str(a + b), group=str(len(str(a))), meta={"a": a, "b": b})


def _row(p, phase, i, completion, correct, steps_ok):
    hinted = phase == "rationalize"
    return {"sample_id": f"1/{phase}/{p.id}/{i}", "problem_id": p.id, "phase": phase, "completion": completion,
            "prompt": Arithmetic(TaskConfig()).prompt(p, hint=hinted), "hint": "x" if hinted else None,
            "correct": correct, "steps_ok": steps_ok, "verify_reason": "correct" if correct else "answer 1, expected 2"}


def test_first_correct_then_rationalized_without_hint():
    solved, failed, hopeless = _p(12, 34), _p(56, 78), _p(99, 99)
    rows = [
        _row(solved, "sample", 0, "wrong", False, False),
        _row(solved, "sample", 1, scratchpad(12, 34), True, True),
        _row(solved, "sample", 2, scratchpad(12, 34), True, True),
        _row(failed, "sample", 0, "wrong", False, False),
        _row(failed, "rationalize", 0, scratchpad(56, 78), True, True),
        _row(hopeless, "sample", 0, "wrong", False, False),
        _row(hopeless, "rationalize", 0, "still wrong", False, False),
    ]
    rows, train, _ = Star(Config()).select(_it([solved, failed, hopeless]), rows)
    kept = [r["sample_id"] for r in rows if r["kept"]]
    assert kept == ["1/sample/12+34/1", "1/rationalize/56+78/0"]
    assert "already has a kept trace" in rows[2]["select_reason"]
    assert [t["source"] for t in train] == ["sample", "rationalize"]
    # the hint is in the rationalization prompt, never in the training example
    assert "|" in rows[4]["prompt"] and all("|" not in t["prompt"] for t in train)
    assert train[1]["prompt"] == "65+87\n"


def test_require_valid_steps_rejects_right_answer_wrong_working():
    p = _p(12, 34)
    rows = [_row(p, "sample", 0, "lucky", True, False), _row(p, "sample", 1, scratchpad(12, 34), True, True)]
    rows, train, _ = Star(Config(require_valid_steps=True)).select(_it([p]), rows)
    assert [r["kept"] for r in rows] == [False, True] and rows[0]["select_reason"] == "rejected: wrong working"
    rows, _, _ = Star(Config()).select(_it([p]), [dict(r, kept=None) for r in rows])
    assert rows[0]["kept"]  # paper default: the answer is all that counts


def test_steps_grow_and_train_from_base(tmp_path):
    """Each iteration fine-tunes the *base* model (paper), steps x1.2 per iteration, through it.train."""
    from selftaught.iteration import Iteration

    calls = []

    class Recording:
        def train(self, init, rows, out_dir, *, steps, seed, position_tracker=None, desc=""):
            calls.append((init, steps, out_dir, position_tracker, desc))
            return {"train/steps": steps}

    task = Arithmetic(TaskConfig())
    cfg = SimpleNamespace(seed=0, trainer=SimpleNamespace(steps=40), mix=None)
    it = Iteration(3, cfg, task, None, Recording(), "base", "last", "h", str(tmp_path / "ckpt"), {})
    m = Star(Config(steps_growth=1.2)).train(it, [{"prompt": "p", "completion": "c"}])
    assert calls == [("base", round(40 * 1.44), str(tmp_path / "ckpt"), task.position_tracker, "iter 3 train")]
    assert m == {"train/steps": 58, "train/init": "base"}
    Star(Config(init="last")).train(it, [])
    assert calls[-1][0] == "last"
