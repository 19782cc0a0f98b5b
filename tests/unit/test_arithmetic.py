from selftaught.tasks.arithmetic import Arithmetic, Config, Positions, check_disjoint, extract_answer, scratchpad, verify
from selftaught.records import Problem

import pytest


def _p(a, b):
    return Problem(f"{a}+{b}", f"{a}+{b}", str(a + b), meta={"a": a, "b": b})


def test_scratchpad_format_and_final_carry():
    assert scratchpad(345, 78) == "5+8+0=3,1\n4+7+1=2,1\n3+0+1=4,0\n=324"
    # a final carry gets its own line, so answer digit i always copies line i
    assert scratchpad(95, 7) == "5+7+0=2,1\n9+0+1=0,1\n0+0+1=1,0\n=201"


def test_extract_answer_reverses_digits():
    assert extract_answer("5+8+0=3,1\n=324") == "423"
    assert extract_answer("garbage") is None
    assert extract_answer("=12a") is None


def test_verify_answer_and_steps():
    p = _p(345, 78)
    good = scratchpad(345, 78)
    assert verify(p, good).correct and verify(p, good).info["steps_ok"]
    # right answer, wrong working: STaR keeps it, the step verifier flags it
    bad_steps = good.replace("4+7+1=2,1", "4+7+1=2,9")
    s = verify(p, bad_steps)
    assert s.correct and s.info["steps_ok"] is False and "wrong working" in s.reason
    wrong = verify(p, "5+8+0=3,1\n=325")
    assert not wrong.correct and wrong.answer == "523"
    assert verify(p, "").reason == "no answer line"


def test_positions_couple_digits_across_operands_lines_and_answer():
    text = "543+87|324\n" + scratchpad(345, 78)
    tr = Positions()
    pos = [tr.feed(c) for c in text]
    at = dict(enumerate(pos))
    a0, b0, h0 = at[0], at[4], at[7]
    line1 = text.index("4+7")  # scratchpad line for digit 1
    ans = text.rindex("=") + 1
    assert (b0 - a0, h0 - a0) == (1, 2)
    # line i and answer digit i sit at the same offsets from a_i for every i
    assert at[line1] - at[1] == at[text.index("5+8")] - at[0]
    assert at[ans + 1] - at[1] == at[ans] - at[0]
    # garbage text still gets positions (model samples can be anything)
    tr = Positions()
    assert all(isinstance(tr.feed(c), int) for c in "++||\n\n==99,,abc")


def test_line_one_is_written_from_the_same_offset_at_every_length():
    # the token each scratchpad line's first character is predicted from (the prompt's
    # closing newline for line 1, the previous line's newline after) sits at one offset
    # from that line's a-digit, whatever the operands' length, hint or no hint
    offsets = set()
    for a, b in [(7, 5), (345, 78), (12345678, 87654321), (10**15 + 7, 9 * 10**15)]:
        for hint in ("", "|" + str(a + b)[::-1]):
            text = f"{str(a)[::-1]}+{str(b)[::-1]}{hint}\n" + scratchpad(a, b)
            tr = Positions()
            pos = [tr.feed(c) for c in text]
            lines = [i + 1 for i, c in enumerate(text) if c == "\n"][:-1]  # first character of each line
            for n, start in enumerate(lines[:len(str(a))]):
                offsets.add(pos[start - 1] - pos[n])  # query position minus a_n's position
    assert offsets == {-4}  # 4 ids before a_n: W - 12, the newline of the line before


def test_splits_disjoint_by_construction_and_grouped():
    t = Arithmetic(Config(seed_size=300, pool_size=700, eval_per_group=20))
    pool, seed, held = t.train_pool(), t.seed_set(), t.eval_set()
    check_disjoint(pool + seed, held)
    assert {p.group for p in held} == {str(d) for d in range(1, 9)}
    assert all(p.rationale is None for p in pool) and all(p.rationale for p in seed)
    assert {p.group for p in seed} <= {"1", "2", "3"}
    # deterministic
    assert [p.id for p in Arithmetic(Config(seed_size=300, pool_size=700, eval_per_group=20)).eval_set()] == [p.id for p in held]
    with pytest.raises(ValueError, match="held-out"):
        check_disjoint(pool, pool[:2])


def test_hint_in_prompt_only_when_asked():
    t = Arithmetic(Config())
    p = _p(345, 78)
    assert t.prompt(p) == "543+87\n"
    assert t.prompt(p, hint=True) == "543+87|324\n"


def _ungapped(pos, blocks):
    """Gapped ids mapped back: an id in [block c(k) - 4, block c(k+1) - 4) keeps its offset
    from block c(k) and moves to block k."""
    from selftaught.tasks.arithmetic import B, W

    starts = [B + W * c - 4 for c in blocks]
    out = []
    for p in pos:
        k = max(i for i, s in enumerate(starts) if s <= p) if p >= starts[0] else 0
        out.append(B + W * k + (p - B - W * blocks[k]))
    return out


def test_position_gaps_keep_every_offset_and_hide_the_line_index():
    import random

    for a, b in [(7, 5), (345, 78), (95, 7), (12345678, 87654321), (9999999999, 1), (10**15 + 7, 9 * 10**15)]:
        for hint in ("", "|" + str(a + b)[::-1]):
            text = f"{str(a)[::-1]}+{str(b)[::-1]}{hint}\n" + scratchpad(a, b)
            tr0, trg = Positions(), Positions(2, random.Random(len(text)))
            p0 = [tr0.feed(c) for c in text]
            pg = [trg.feed(c) for c in text]
            # the same layout up to which blocks are used: every offset the model reads is kept
            assert _ungapped(pg, trg.blocks) == p0
            if len(str(a)) >= 8:  # ... while the distance from the prompt's start changes
                assert pg[-1] - pg[0] != p0[-1] - p0[0]
    # no gaps is the layout itself, and sampling never gaps
    t0, t2 = Arithmetic(Config()), Arithmetic(Config(position_gaps=2))
    assert t0.train_position_tracker is Positions and t2.position_tracker is Positions
    assert t0.train_positions_key is None and t2.train_positions_key == "position_gaps=2"
    text = "0987654321+1234567899\n" + scratchpad(1234567890, 9987654321)
    runs = [[f().feed(c) for c in text] for f in (t2.train_position_tracker, t2.train_position_tracker)]
    assert runs[0] == runs[1]  # one seeded stream per training stage: reproducible
    import pickle  # trainers/_launch.py sends the tracker to `accelerate launch` processes pickled

    again = pickle.loads(pickle.dumps(t2.train_position_tracker))
    assert [again().feed(c) for c in text] == runs[0]
    assert "position_gaps" not in Config().model_dump_json(exclude_defaults=False)  # unset: config.yaml unchanged


def test_training_gets_the_gapped_positions_and_its_own_model_key(tmp_path):
    """it.train hands the trainer the training tracker (gapped), sampling keeps the plain
    layout, and a gapped warm start is cached under its own key; ungapped keys unchanged."""
    from types import SimpleNamespace

    from selftaught.iteration import Iteration
    from selftaught.models import tiny

    calls = []

    class Recording:
        def train(self, init, rows, out_dir, *, steps, seed, position_tracker=None, desc=""):
            calls.append(position_tracker)
            return {}

    text = "0987654321+1234567899\n" + scratchpad(1234567890, 9987654321)
    tr0 = Positions()
    plain = [tr0.feed(c) for c in text]
    cfg = SimpleNamespace(seed=0, trainer=SimpleNamespace(steps=4), mix=None)
    for gaps in (0, 2):
        task = Arithmetic(Config(position_gaps=gaps))
        Iteration(1, cfg, task, None, Recording(), "b", "l", "h", str(tmp_path / "ckpt"), {}).train([], init="b")
        tr = calls[-1]()
        assert ([tr.feed(c) for c in text] == plain) == (gaps == 0)
    rows = [{"prompt": "1+2\n", "completion": scratchpad(1, 2)}]
    k0, k2 = (tiny._key(Arithmetic(Config(position_gaps=g)), rows, 0, 10) for g in (0, 2))
    import hashlib
    import json

    from selftaught.tasks.arithmetic import ALPHABET

    before = [tiny.VERSION, tiny.ARCH, tiny.WARM_START, 10, sorted(ALPHABET), rows, 0]  # the key before gaps existed
    assert k0 == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:12] != k2
