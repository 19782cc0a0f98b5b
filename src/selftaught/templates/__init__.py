"""Prompt templates shipped with selftaught (judge rubric, constitution, critique,
refinement and reflection prompts). A template is plain text with ``{field}``
slots; ``fill`` replaces only the named slots, so braces in model output or in
user text are left alone. Users point a method at their own file instead."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent


def load(name_or_path: str, fields: tuple[str, ...] = ()) -> str:
    """A shipped template by name (``judge_additive``) or a user file by path; checks
    that every slot in ``fields`` is present, naming the file if one is missing."""
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        path = HERE / f"{name_or_path}.txt"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in HERE.glob("*.txt")))
        raise FileNotFoundError(f"template {name_or_path!r}: no such file, and not a shipped template ({shipped})")
    text = path.read_text()
    missing = [f for f in fields if "{" + f + "}" not in text]
    if missing:
        raise ValueError(f"{path}: template lacks the slot(s) {', '.join('{' + f + '}' for f in missing)}")
    return text


def fill(template: str, **fields: str) -> str:
    """Replace ``{name}`` slots that are in ``fields``; leave every other brace alone."""
    return re.sub(r"\{(\w+)\}", lambda m: str(fields[m.group(1)]) if m.group(1) in fields else m.group(0), template)
