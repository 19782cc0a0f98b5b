"""Majority vote: the one implementation behind TTRL's pseudo-label, the
``maj@k`` strategy (self-consistency, Wang et al. 2022) and Self-Instruct's
``label: majority``."""

from __future__ import annotations

from collections import Counter


def majority_vote(answers: list[str | None]) -> tuple[str | None, float]:
    """The most frequent extracted answer (ties: the one seen first; ``None`` never
    wins) and its share of *all* votes, unparseable ones included."""
    votes = [a for a in answers if a is not None]
    if not votes:
        return None, 0.0
    counts = Counter(votes)
    top = max(counts.values())
    label = next(a for a in votes if counts[a] == top)
    return label, top / len(answers)
