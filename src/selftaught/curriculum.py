"""A difficulty schedule that follows the model: the next difficulty level enters
the pool when the model's vote agreement on the current one passes a threshold
(the easy-to-hard schedule of Lee et al. 2025, arXiv 2502.01612, made adaptive;
the method that uses it is ``methods/easy_to_hard.py``).

A task with a difficulty knob exposes it as ``Graded``: its levels, easiest
first, the train-pool problems of each, and -- if it knows them -- the answer
lengths a level's answers can have (the paper's length filter), and a check that
a completion's working agrees with itself (``consistent``: no answer read, so
label-free; arithmetic's carry chain). ``ByGroup`` is
the default any task gets from ``Task.graded``: the pool's ``group`` is the level,
numbers in numeric order -- arithmetic's digit count, or reasoning_gym's
``group_by`` field over a pool that spans a difficulty kwarg (e.g.
``group_by: num_terms`` with ``kwargs.min_terms: 2, max_terms: 6``).

How one round walks the levels (``walk``): from the first unlabeled level up,
sample votes on ``probe`` problems of each level; a level is mastered when its
agreement (the mean majority share of its problems' votes) reaches
``advance_at`` *and*, if the caller passes ``learned``, the model has already
been trained on it; then the next level is sampled. The first level that is not
mastered is the *current* one, sampled in full and learned this round. So the
next level enters the pool only once the model agrees with itself on the one it
was last taught. Without ``learned``, agreement alone decides, and a model that
agrees with itself on a level it was never taught (the tiny model agrees 0.9+
on 9-digit sums after a 1-8 digit seed) skips it and learns from the level
past it, where its labels are mostly wrong (38% of the kept ones right, in that
run). No state is carried between rounds beyond what is on disk: each round
walks up from the bottom, ``learned`` is read from earlier rounds' kept rows,
and ``frontier`` recomputes the walk's outcome from the round's rows, so a
resumed run sees the same curriculum, and a level the model forgets becomes the
current one again.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Protocol

from selftaught.records import Problem
from selftaught.verifiers.vote import majority_vote


class Graded(Protocol):
    def levels(self) -> list[str]:
        """Difficulty levels of the pool, easiest first."""

    def problems_at(self, level: str) -> list[Problem]:
        """The train-pool problems of one level."""

    def answer_lengths(self, level: str) -> tuple[int, int] | None:
        """Shortest and longest answer (in characters) a level's problems can have; None: unknown."""

    def consistent(self, completion: str) -> bool | None:
        """Does a completion's working agree with itself (read from the completion
        alone, no answer: arithmetic's carry chain)? None: the task has no such check."""


def _level_key(level: str):
    return (0, float(level)) if level.replace(".", "", 1).isdigit() else (1, level)


class ByGroup:
    """Levels = the pool's ``group`` values (numbers in numeric order)."""

    def __init__(self, pool: list[Problem], answer_lengths: Callable[[str], tuple[int, int]] | None = None,
                 consistent: Callable[[str], bool] | None = None) -> None:
        self._by: dict[str, list[Problem]] = defaultdict(list)
        for p in pool:
            self._by[str(p.group)].append(p)
        self._lengths, self._consistent = answer_lengths, consistent

    def levels(self) -> list[str]:
        return sorted(self._by, key=_level_key)

    def problems_at(self, level: str) -> list[Problem]:
        return list(self._by.get(level, []))

    def answer_lengths(self, level: str) -> tuple[int, int] | None:
        return self._lengths(level) if self._lengths else None

    def consistent(self, completion: str) -> bool | None:
        return self._consistent(completion) if self._consistent else None


def agreement(rows: list[dict], answer: str = "vote_answer") -> float:
    """Mean majority share over the problems of ``rows`` (each problem's votes: its rows' answers)."""
    votes: dict[str, list] = defaultdict(list)
    for r in rows:
        votes[r["problem_id"]].append(r[answer])
    shares = [majority_vote(v)[1] for v in votes.values()]
    return sum(shares) / len(shares) if shares else 0.0


@dataclass(frozen=True)
class Frontier:
    agreement: dict[str, float]  # per level walked, in walk order
    current: str | None  # the level learned this round (None: every walked level passed)
    mastered: list[str]  # walked levels at or above the threshold, below the current one


def passes(level: str, agree: float, advance_at: float, learned: set[str] | None) -> bool:
    """Is ``level`` mastered: agreement at the threshold and (with ``learned``) taught before?"""
    return agree >= advance_at and (learned is None or level in learned)


def frontier(rows: list[dict], levels: list[str], advance_at: float, learned: set[str] | None = None) -> Frontier:
    """The outcome of a round's walk, from its rows (each row has ``level``) and the
    same ``learned`` the walk had."""
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[str(r["level"])].append(r)
    agree = {lv: agreement(by[lv]) for lv in levels if lv in by}
    current = next((lv for lv, a in agree.items() if not passes(lv, a, advance_at, learned)), None)
    mastered = [lv for lv in agree if current is None or levels.index(lv) < levels.index(current)]
    return Frontier(agree, current, mastered)


def draw(problems: list[Problem], n: int, seed) -> list[Problem]:
    """``n`` of ``problems``, a seeded choice (all of them when there are fewer)."""
    return list(problems) if n >= len(problems) else random.Random(seed).sample(problems, n)


def walk(graded: Graded, start: int, sample: Callable[[list[Problem]], list[dict]], *, probe: int,
         full: int, advance_at: float, seed, learned: set[str] | None = None) -> list[dict]:
    """One round's rows: ``probe`` problems of each level from ``levels()[start]`` up
    while it is mastered (``passes``); the first level that is not gets ``full``
    problems in all and ends the walk. ``sample`` returns voted rows with
    ``vote_answer``; each row gets its ``level``."""
    rows: list[dict] = []
    for level in graded.levels()[start:]:
        problems = draw(graded.problems_at(level), max(probe, full), f"{seed}/{level}")
        got = sample(problems[:probe])
        if not passes(level, agreement(got), advance_at, learned) and full > probe:
            got += sample(problems[probe:full])
        for r in got:
            r["level"] = level
        rows += got
        if not passes(level, agreement(got), advance_at, learned):
            break
    return rows
