"""A constitution file for ``cai`` (methods/cai.py), and the principles a program can check.

Format (the shipped ``templates/constitution.txt`` and ``constitution_checkable.txt``):
one principle per block, blocks separated by a blank line, ``#`` lines are comments.
Every block has ``critique:``, ``revision:`` and ``choose:``; a block may add

- ``check:`` a rule a program decides for a response, one of
    ``format``            the last non-empty line states the answer: ``Answer: X``
                          (also ``The answer is: X``, ``Final answer: X``)
    ``max_words N``       at most N whitespace-separated words
    ``forbidden w1, w2``  none of these words or phrases, as whole words, any case
- ``name:`` the principle's name in metrics (default: the check's kind).

A principle without ``check:`` is judged by the model only; files without checks
(the default constitution) read as before. ``satisfaction`` scores responses
against the checkable principles; ``program_preference`` says which response of a
pair the program prefers under one principle, and ``label_agreement`` how often
the model's preference labels pick that one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from selftaught import templates
from selftaught.tasks._qa import ANSWER_LINE

FIELDS = ("critique", "revision", "choose")
OPTIONAL = ("check", "name")


@dataclass(frozen=True)
class Check:
    """A program check: ``kind`` (format, max_words, forbidden) with its argument."""

    kind: str
    limit: int = 0
    words: tuple[str, ...] = ()

    def __call__(self, text: str | None) -> bool:
        text = text or ""
        if self.kind == "format":
            lines = [x for x in text.splitlines() if x.strip()]
            return bool(lines) and bool(ANSWER_LINE.fullmatch(lines[-1]))  # the task's own answer line, as the last line
        if self.kind == "max_words":
            return len(text.split()) <= self.limit
        return not any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE) for w in self.words)


def parse_check(spec: str) -> Check:
    """``format`` | ``max_words N`` | ``forbidden w1, w2, ...`` to a Check; ValueError says what is wrong."""
    kind, _, arg = spec.strip().partition(" ")
    arg = arg.strip()
    if kind == "format" and not arg:
        return Check("format")
    if kind == "max_words" and arg.isdigit() and int(arg) > 0:
        return Check("max_words", limit=int(arg))
    if kind == "forbidden":
        words = tuple(w.strip() for w in arg.split(",") if w.strip())
        if words:
            return Check("forbidden", words=words)
    raise ValueError(f"bad check {spec.strip()!r}: expected `format`, `max_words N` (N > 0) "
                     "or `forbidden word, word, ...`")


def load_principles(name_or_path: str) -> list[dict]:
    """Principles as dicts with critique/revision/choose, plus ``check`` (a Check) and
    ``name`` where the block has a check; errors name the file and line."""
    path = Path(name_or_path).expanduser()
    path = path if path.is_file() else templates.HERE / f"{name_or_path}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"cai: principles file {name_or_path!r} not found")
    out, cur, start = [], {}, 1
    for n, line in enumerate([*path.read_text().splitlines(), ""], 1):
        line = line.strip()
        if line.startswith("#"):
            continue
        if not line:
            if cur:
                out.append(_finish(cur, path, start))
            cur = {}
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or key not in (*FIELDS, *OPTIONAL):
            raise ValueError(f"{path}, line {n}: expected `critique:`, `revision:`, `choose:`, `check:` or `name:`, "
                             f"got {line[:40]!r}")
        if not cur:
            start = n
        if key == "check":
            try:
                cur[key] = parse_check(value)
            except ValueError as e:
                raise ValueError(f"{path}, line {n}: {e}") from None
        else:
            cur[key] = value.strip()
    if not out:
        raise ValueError(f"{path}: no principles")
    names = [p["name"] for p in out if "name" in p]
    if len(names) != len(set(names)):
        raise ValueError(f"{path}: two checkable principles share a name ({', '.join(names)}); give each a `name:`")
    return out


def _finish(cur: dict, path: Path, start: int) -> dict:
    missing = [f for f in FIELDS if f not in cur]
    if missing:
        raise ValueError(f"{path}, line {start}: principle lacks field(s) {', '.join(missing)}")
    if "name" in cur and "check" not in cur:
        raise ValueError(f"{path}, line {start}: `name:` is for a principle with a `check:`")
    if "check" in cur:
        cur.setdefault("name", cur["check"].kind)
    return cur


def checkable(principles: list[dict]) -> list[dict]:
    return [p for p in principles if "check" in p]


def satisfaction(texts: list[str], principles: list[dict], prefix: str = "cai/satisfied") -> dict:
    """Share of ``texts`` that satisfy each checkable principle (``<prefix>/<name>``),
    all of them (``<prefix>/all``), and how many texts (``<prefix>_n``); {} without checks."""
    checks = checkable(principles)
    if not checks:
        return {}
    n = max(1, len(texts))
    passed = [[p["check"](t) for p in checks] for t in texts]
    out = {f"{prefix}/{p['name']}": sum(row[i] for row in passed) / n for i, p in enumerate(checks)}
    out[f"{prefix}/all"] = sum(all(row) for row in passed) / n
    out[f"{prefix}_n"] = len(texts)
    return out


def program_preference(a: str, b: str, principle: dict) -> str | None:
    """'first' / 'second': the one response the principle's check accepts; None when the
    principle has no check or both or neither pass (the program has no preference)."""
    check = principle.get("check")
    if check is None:
        return None
    ok_a, ok_b = check(a), check(b)
    return None if ok_a == ok_b else ("first" if ok_a else "second")


def label_agreement(pairs: list[tuple[str, str, dict, str | None]]) -> tuple[float | None, int]:
    """Over (a, b, principle, label) with label 'first'/'second' (anything else: no label)
    and a program preference: the share where the label picks the program's choice, and
    how many such pairs (None when there are none)."""
    hits = [label == want for a, b, pr, label in pairs if label in ("first", "second")
            for want in [program_preference(a, b, pr)] if want is not None]
    return (sum(hits) / len(hits) if hits else None), len(hits)
