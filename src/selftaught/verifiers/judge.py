"""LLM-as-a-judge with the additive 0-5 rubric of Self-Rewarding Language Models
(Yuan et al. 2024, arXiv 2401.10020, Fig. 2; the rubric is from Li et al. 2023).

The model that answers also judges: each response is shown to it inside the
rubric prompt (``templates/judge_additive.txt`` or a user file with ``{prompt}``
and ``{response}`` slots), it writes a justification and ``Score: <points>``.
``parse_score`` reads the score robustly; anything it cannot read is *no score*
(never a zero), so an unparseable judgement can never make a response "worst".
Used by ``methods/self_rewarding.py`` and by best-of-N (``strategies.py``).
"""

from __future__ import annotations

import json
import re

from selftaught import templates

_NUM = r"(\d+(?:\.\d+)?)"
# Most specific first; each pattern's *last* match wins (models restate the rubric, then conclude).
_PATTERNS = [
    re.compile(r"score\s*(?:is|of|=|:|-)?\s*[\*_`\"'\[\(]*\s*" + _NUM + r"(?:\s*(?:/|out\s+of)\s*5(?:\.0)?)?", re.I),
    re.compile(r"total(?:\s+(?:points|score))?\s*(?:is|of|=|:)?\s*[\*_`\"'\[\(]*\s*" + _NUM, re.I),
    re.compile(_NUM + r"\s*(?:/|out\s+of)\s*5\b", re.I),
    re.compile(r"\b" + _NUM + r"\s+points?\b", re.I),
]


def parse_score(text: str | None, lo: float = 0.0, hi: float = 5.0) -> float | None:
    """The judge's final score in [lo, hi], or None if there is none we can trust.

    ``Score: 4``, ``**Score:** 4/5``, ``score of 3 out of 5``, ``Total points: 2``,
    ``... so 3/5.`` all parse; ``Score: <total points>`` (the template echoed),
    ``Score: 7`` (out of range) and text with no score do not.
    """
    if not text:
        return None
    for pattern in _PATTERNS:
        matches = pattern.findall(text)
        if matches:
            value = float(matches[-1])
            return value if lo <= value <= hi else None
    return None


def judge_prompts(rows: list[dict], template: str) -> list[str]:
    """The rubric prompt for each candidate row (its prompt and completion)."""
    return [templates.fill(template, prompt=r["prompt"], response=r["completion"]) for r in rows]


def judge(it, rows: list[dict], *, template: str, samples: int = 1, temperature: float = 0.7,
          max_new_tokens: int = 160, phase: str = "judge") -> list[dict]:
    """Score every candidate row with this iteration's model as judge, in place.

    Adds ``judge_prompt``, ``judge_output`` (the judgements, joined), ``judge_scores``
    (JSON list, None for unparseable ones) and ``judge_score`` (mean of the parsed
    ones; None if none parsed). The paper samples 3 judgements and averages.
    """
    if not rows:
        return rows
    prompts = judge_prompts(rows, template)
    problems = [it.problem_of(r) for r in rows]
    outs = it.sample(problems, samples, temperature=temperature if samples > 1 else 0.0,
                     max_new_tokens=max_new_tokens, phase=phase, prompts=prompts)
    for r, prompt, i in zip(rows, prompts, range(len(rows))):
        texts = [o["completion"] for o in outs[i * samples:(i + 1) * samples]]
        scores = [parse_score(t) for t in texts]
        parsed = [s for s in scores if s is not None]
        r.update(judge_prompt=prompt, judge_output="\n-----\n".join(texts), judge_scores=json.dumps(scores),
                 judge_score=sum(parsed) / len(parsed) if parsed else None)
    return rows
