"""Contamination guard: no held-out problem may be in the train pool.

Ids alone miss the common case -- the same question under two ids (two files,
two generator seeds, a copy with different whitespace). So problems are also
compared by a hash of their *normalized text*: lowercased, prose punctuation
dropped, whitespace collapsed. Math symbols, digits and decimal points are kept,
so ``12 + 7`` and ``12 - 7`` or ``1.5`` and ``15`` stay different problems.
"""

from __future__ import annotations

import hashlib
import re
import sys

# Prose punctuation; a period or comma between digits (1.5, 1,000) is part of a number and stays.
_PUNCT = re.compile(r"(?<!\d)[.,]|[.,](?!\d)|[;:!?]")
_QUOTES = re.compile(r"[\"'`\u2018\u2019\u201c\u201d]")  # dropped: "it's" == "its"
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    return _SPACE.sub(" ", _PUNCT.sub(" ", _QUOTES.sub("", text.lower()))).strip()


def fingerprint(text: str) -> str:
    """16-hex hash of the normalized text."""
    return hashlib.sha1(normalize(text).encode()).hexdigest()[:16]


def overlap(pool, held_out) -> list[tuple[str, str, str]]:
    """(held-out id, pool id, question) for every held-out problem found in the pool,
    by id or by normalized text."""
    by_id = {p.id: p for p in pool}
    by_text = {fingerprint(p.question): p for p in pool}
    found = []
    for q in held_out:
        hit = by_id.get(q.id) or by_text.get(fingerprint(q.question))
        if hit is not None:
            found.append((q.id, hit.id, q.question))
    return found


def check_disjoint(pool, held_out, out=None) -> None:
    """Refuse to start (ValueError) if any held-out problem is in the train pool;
    print the overlapping problems first."""
    found = overlap(pool, held_out)
    if not found:
        return
    out = out or sys.stderr
    print(f"contamination: {len(found)} of {len(held_out)} held-out problems are in the train pool:", file=out)
    for eval_id, pool_id, question in found[:20]:
        short = " ".join(question.split())[:100]
        print(f"  held-out {eval_id} = pool {pool_id}: {short}", file=out)
    if len(found) > 20:
        print(f"  ... and {len(found) - 20} more", file=out)
    raise ValueError(f"{len(found)} held-out problems are in the train pool (same id or same normalized text), "
                     f"e.g. {[f[0] for f in found[:5]]}; refusing to start (training on the test set)")
