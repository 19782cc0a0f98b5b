"""Built-in task: n-digit addition with a checkable scratchpad (STaR's arithmetic
experiment, Zelikman et al. 2022, Sec. 5).

Text format (every number least-significant digit first, one character a token):

    prompt      3721+5963\n            1273 + 3695, digits reversed
    hinted      3721+5963|8694\n        ... with the answer as STaR's hint
    scratchpad  3+5+0=8,0\n             one line per digit: a_i+b_i+carry=digit,carry
                7+9+0=6,1\n
                2+6+1=9,0\n
                1+3+0=4,0\n
    answer      =8694                   4968 reversed; a final carry gets its own line

Why reversed digits and custom positions: a tiny model trained on 1-3 digit sums
must extend to 5-8 digits, and with ordinary positions it does not (0% on 4+
digits in our prototype, with RoPE, no positions or index markers alike). *Position coupling* (Cho et al. 2024,
arXiv 2405.20671) gives digit i of each operand, of the hint, scratchpad line i
and answer digit i position ids at fixed offsets inside a block of ``W`` ids, so
"which digits go together" is a fixed relative offset the model learns once, for
any length; the prompt's closing newline, from which line 1 is written, sits
where a line before line 1 would end (``LINE_START``). ``Positions`` computes those ids token by token, for training and
sampling alike. ``position_gaps`` randomizes, in training only, which blocks the
digits use (every offset stays): without it the distance from the prompt's start
tells the model a line's index, and it stops after the longest line it was taught.

Splits are disjoint by construction: a hash of the problem decides whether it
may ever be drawn for evaluation or for training (``_is_eval``), and
``check_disjoint`` checks it again on the drawn sets.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re

from pydantic import Field

from selftaught.component import Component
from selftaught.records import Problem, Score
from selftaught.tasks import Task

ALPHABET = "0123456789+=,|\n"
W, B = 16, 8  # block width and first block of the position-coupling layout
# Where the prompt's closing newline sits: where the newline of a line -1 would, so the
# first scratchpad line is read from the same offset (W - 12 = 4 before a_0) as every
# later line is from the newline before it. At the prompt's natural place (after the
# last digit of b) that offset grows with the operands' length, and the tiny model
# misread a_0 at lengths it had not seen: 13 of 14 wrong 10-digit sums had line 1
# wrong after a 1-8 digit seed (the same cause as the frontier's wrong working).
LINE_START = B - W + 12


class Config(Component):
    type: str = "arithmetic"
    seed_digits: tuple[int, int] = Field((1, 3), description="digit counts with labeled scratchpads (seed SFT)")
    seed_size: int = Field(3000, description="labeled seed problems")
    pool_digits: tuple[int, int] = Field((1, 7), description="digit counts of the unlabeled train pool")
    pool_size: int = Field(6000, description="problems in the train pool (answers only)")
    eval_digits: tuple[int, int] = Field((1, 8), description="digit counts of the held-out split")
    eval_per_group: int = Field(100, description="held-out problems per digit count (fewer if fewer exist)")
    split_seed: int = Field(0, description="seed of the problem generators")
    position_gaps: int = Field(0, ge=0, exclude_if=lambda v: v == 0,  # unset: config.yaml as before
                               description="training only: up to this many unused position blocks between consecutive "
                                           "digits, drawn per example, so a line's distance from the prompt's start "
                                           "no longer tells its index (Positions); 0: off")
    verifier: str | None = Field(None, exclude_if=lambda v: v is None,  # unset: config.yaml as before
                                 description="your own check instead of the answer line: module:function or ./file.py:function")


def reverse(n: int) -> str:
    return str(n)[::-1]


def scratchpad(a: int, b: int) -> str:
    """The worked solution: one line per digit position, then the answer line."""
    ra, rb = reverse(a), reverse(b)
    lines, carry, i = [], 0, 0
    while i < max(len(ra), len(rb)) or carry:
        x = int(ra[i]) if i < len(ra) else 0
        y = int(rb[i]) if i < len(rb) else 0
        s = x + y + carry
        lines.append(f"{x}+{y}+{carry}={s % 10},{s // 10}\n")
        carry, i = s // 10, i + 1
    return "".join(lines) + "=" + reverse(a + b)


def _is_eval(a: int, b: int) -> bool:
    """About one problem in eight is reserved for evaluation, forever."""
    return hashlib.sha1(f"{a}+{b}".encode()).digest()[0] < 32


@functools.lru_cache(maxsize=16)
def _space(lo: int, hi: int, want_eval: bool) -> tuple[tuple[int, int], ...]:
    """Every pair of a small space on one side of the eval split, in order (each split
    draws from it; the 8,100 sha1s of the 2-digit space are paid once per process)."""
    return tuple((a, b) for a in range(lo, hi + 1) for b in range(lo, hi + 1) if _is_eval(a, b) == want_eval)


def _draw(rng: random.Random, digits: int, want_eval: bool, n: int) -> list[tuple[int, int]]:
    lo, hi = (0, 9) if digits == 1 else (10 ** (digits - 1), 10**digits - 1)
    if (hi - lo + 1) ** 2 <= 100_000:  # small space: enumerate (rejection sampling could run dry)
        pairs = list(_space(lo, hi, want_eval))
        rng.shuffle(pairs)
        return pairs[:n]
    seen: set[tuple[int, int]] = set()
    out = []
    while len(out) < n:
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        if (a, b) not in seen and _is_eval(a, b) == want_eval:
            seen.add((a, b))
            out.append((a, b))
    return out


def _problem(a: int, b: int, labeled: bool) -> Problem:
    return Problem(
        id=f"{a}+{b}",
        question=f"{a}+{b}",
        answer=str(a + b),
        group=str(max(len(str(a)), len(str(b)))),
        rationale=scratchpad(a, b) if labeled else None,
        meta={"a": a, "b": b},
    )


class Positions:
    """Position ids of the layout above, one token at a time. Any string gets
    positions (model samples can be garbage); only well-formed text gets the
    coupled ones.

    Digit index ``i`` owns the block at ``B + W * c(i)``; sampling always has
    ``c(i) = i``. In training, ``gaps > 0`` leaves up to ``gaps`` unused blocks
    between consecutive digit indices, drawn from ``rng`` (randomized positions,
    Ruoss et al. 2023, arXiv 2305.16843, here on blocks so the coupling stays
    exact). A token that predicts digit index ``i``'s line or answer digit sits
    just before block ``c(i)`` (the newline ending a line, 4 before; an answer
    digit, 3 before), so every offset the model reads is the same with gaps or
    without, and only the distance from the prompt's start changes: with no gaps
    it tells a line's index, and a model taught 1-8 digits writes at most one
    line past its longest: ``=`` with p = 1.00 after the 10 lines of a 10-digit
    sum with a final carry (benchmarks/final_carry.py), with gaps the carry line.
    With ``gaps == 0`` the ids are the layout's above, for any string."""

    def __init__(self, gaps: int = 0, rng: random.Random | None = None) -> None:
        self.state, self.i, self.j, self.line = "a", 0, 0, 0
        self.gaps, self.blocks = gaps, [0]
        self.rng = rng if rng is not None or not gaps else random.Random(0)

    def _blk(self, i: int) -> int:
        if not self.gaps:  # sampling's layout: no list, no draws (feed runs once per sampled token)
            return B + W * i
        while len(self.blocks) <= i:
            self.blocks.append(self.blocks[-1] + 1 + self.rng.randint(0, self.gaps))
        return B + W * self.blocks[i]

    def feed(self, tok: str) -> int:
        s, blk = self.state, self._blk(self.i)
        if s == "a":  # operand a; its terminator "+" sits in the next a-slot
            self.state, self.i = ("b", 0) if tok == "+" else ("a", self.i + 1)
            return blk
        if s == "b":
            if tok == "\n":
                self.state, self.i = "lines", 0
                return LINE_START  # block c(0) is block 0 with gaps too
            if tok == "|":
                self.state, self.i = "h", 0
            else:
                self.i += 1
            return blk + 1
        if s == "h":  # the hint (answer digits)
            if tok == "\n":
                self.state, self.i = "lines", 0
                return LINE_START
            self.i += 1
            return blk + 2
        if s == "lines":
            if self.j == 0 and tok == "=":  # the answer line: "=" is a virtual answer digit at block -1
                self.state, self.i = "ans", 0
                return B - W + 13
            if tok == "\n" and self.j == 9:  # a well-formed line's end: 4 before the next line's block
                pos = self._blk(self.line + 1) - W + 12
            else:
                pos = self._blk(self.line) + 3 + min(self.j, 9)
            self.line, self.j = (self.line + 1, 0) if tok == "\n" else (self.line, self.j + 1)
            return pos
        self.i += 1  # answer digits (3 before the next digit's block), then whatever follows
        return self._blk(self.i) - W + 13


class Arithmetic(Task):
    """The task object; ``build(cfg)`` makes one."""

    name = "arithmetic"
    alphabet = ALPHABET
    position_tracker = Positions
    capabilities = frozenset({"make_problem", "step_checks"})

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    @property
    def train_position_tracker(self):
        """Positions for training rows: ``position_gaps`` blocks of slack, drawn from one
        seeded stream per training stage (sampling and scoring keep ``position_tracker``)."""
        if not self.cfg.position_gaps:
            return Positions
        return functools.partial(Positions, self.cfg.position_gaps, random.Random(f"gaps/{self.cfg.split_seed}"))

    @property
    def train_positions_key(self) -> str | None:
        return f"position_gaps={self.cfg.position_gaps}" if self.cfg.position_gaps else None

    def _split(self, digits: tuple[int, int], per_group: int, want_eval: bool, labeled: bool, salt: str):
        rng = random.Random(f"{self.cfg.split_seed}/{salt}")
        out = []
        for d in range(digits[0], digits[1] + 1):
            out += [_problem(a, b, labeled) for a, b in _draw(rng, d, want_eval, per_group)]
        return out

    def seed_set(self) -> list[Problem]:
        n_groups = self.cfg.seed_digits[1] - self.cfg.seed_digits[0] + 1
        return self._split(self.cfg.seed_digits, -(-self.cfg.seed_size // n_groups), False, True, "seed")

    def train_pool(self) -> list[Problem]:
        n_groups = self.cfg.pool_digits[1] - self.cfg.pool_digits[0] + 1
        return self._split(self.cfg.pool_digits, -(-self.cfg.pool_size // n_groups), False, False, "pool")

    def eval_set(self) -> list[Problem]:
        return self._split(self.cfg.eval_digits, self.cfg.eval_per_group, True, False, "eval")

    def prompt(self, problem: Problem, hint: bool = False) -> str:
        a, b = problem.meta["a"], problem.meta["b"]
        return f"{reverse(a)}+{reverse(b)}" + (f"|{self.hint(problem)}" if hint else "") + "\n"

    def hint(self, problem: Problem) -> str:
        return reverse(int(problem.answer))

    def verify(self, problem: Problem, completion: str) -> Score:
        return verify(problem, completion)

    def make_problem(self, question: str, id: str | None = None) -> Problem | None:
        """A problem from free text ``a+b`` (normal digit order), or None if it is not one
        or is reserved for evaluation (Self-Instruct's new problems, methods/self_instruct.py)."""
        m = re.fullmatch(r"\s*(\d{1,40})\s*\+\s*(\d{1,40})\s*", question)
        if not m or _is_eval(int(m.group(1)), int(m.group(2))):
            return None
        return _problem(int(m.group(1)), int(m.group(2)), labeled=False)

    def graded(self, pool: list[Problem]):
        """Levels are digit counts (the ``group``); a d-digit sum has d or d+1 digits
        (the length filter of Lee et al. 2025, methods/easy_to_hard.py)."""
        from selftaught.curriculum import ByGroup

        return ByGroup(pool, answer_lengths=lambda level: (int(level), int(level) + 1), consistent=consistent)

    def reasoning_path(self, completion: str) -> str:
        """RFT's distinct-path key: the scratchpad lines (the sequence of equations,
        as in the paper), without the answer line and blank lines."""
        return "\n".join(x.strip() for x in completion.split("\n") if x.strip() and not x.startswith("="))

    def step_checks(self, problem: Problem, completion: str) -> list[bool]:
        """Every step exactly checkable: step i is right when lines 1..i are the exact
        working's (a wrong line makes it and every later step wrong, as a prefix)."""
        gold = [x.strip() for x in scratchpad(problem.meta["a"], problem.meta["b"]).split("\n")]
        out, ok = [], True
        for i, step in enumerate(self.steps(completion)):
            ok = ok and i < len(gold) and step.strip() == gold[i]
            out.append(ok)
        return out


_LINE = re.compile(r"(\d)\+(\d)\+([01])=(\d),([01])")


def consistent(completion: str) -> bool:
    """Does the working agree with itself? Read from the completion alone -- neither
    the question nor the answer nor any digit sum is checked, so it is label-free
    (curriculum.py's ``Graded.consistent``): every scratchpad line is well formed,
    each line's carry in is the line before's carry out (0 on the first), the last
    line carries nothing out (a final carry gets its own line), and the answer line
    is the lines' result digits in order. It catches a sum that drops its final
    carry line, the tiny model's usual error one length past its training."""
    lines = completion.strip().split("\n")
    if len(lines) < 2 or not lines[-1].startswith("="):
        return False
    carry, digits = "0", []
    for line in lines[:-1]:
        m = _LINE.fullmatch(line.strip())
        if m is None or m.group(3) != carry:
            return False
        digits.append(m.group(4))
        carry = m.group(5)
    return carry == "0" and lines[-1][1:].strip() == "".join(digits)


def extract_answer(completion: str) -> str | None:
    """The final answer in normal digit order, from the last line starting with '='."""
    for line in reversed(completion.split("\n")):
        if line.startswith("="):
            digits = line[1:].strip()
            return digits[::-1] if digits.isdigit() else None
    return None


def verify(problem: Problem, completion: str) -> Score:
    """STaR's verifier is the final answer; ``steps_ok`` also checks every
    scratchpad line against the exact working (selection may require it)."""
    answer = extract_answer(completion)
    gold = problem.rationale or scratchpad(problem.meta["a"], problem.meta["b"])
    steps_ok = completion.strip() == gold.strip()
    if answer is None:
        return Score(0.0, False, None, "no answer line", {"steps_ok": False})
    correct = answer.lstrip("0") == problem.answer.lstrip("0")
    reason = "correct" if correct else f"answer {answer}, expected {problem.answer}"
    if correct and not steps_ok:
        reason = "correct answer, wrong working"
    return Score(float(correct), correct, answer, reason, {"steps_ok": steps_ok})


def check_disjoint(train: list[Problem], held_out: list[Problem]) -> None:
    overlap = {p.id for p in train} & {p.id for p in held_out}
    if overlap:
        raise ValueError(f"arithmetic: {len(overlap)} held-out problems are in the train pool, e.g. {sorted(overlap)[:5]}")


def build(cfg: Config) -> Arithmetic:
    from selftaught.verifiers.callable import with_verifier

    return with_verifier(Arithmetic(cfg), cfg.verifier, extract=extract_answer)
