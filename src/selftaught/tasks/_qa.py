"""What the text question-answering tasks share (``gsm8k``, ``math``, ``mcq``,
``jsonl``, ``reasoning_gym``): the prompt with its answer instruction and STaR
hint, final-answer extraction, numeric comparison, and a deterministic
hash split into train pool and held-out set.

Prompts are plain text; the backend and trainer wrap them in the model's chat
template when it has one (``backends/hf.py``, ``trainers/sft.py``), the same
way at sampling and at training time.

Why "briefly": SmolLM2-135M-Instruct invents steps when asked to reason step by
step, and rarely writes ``Answer:`` unprompted (measured on reasoning-gym), so the
instruction asks for a short explanation and a final ``Answer:`` line.
"""

from __future__ import annotations

import hashlib
import random
import re

from selftaught.contamination import fingerprint
from selftaught.records import Problem
from selftaught.tasks import Task

INSTRUCTION = ("Explain briefly in one or two sentences, then give your final answer on the last line "
               "in the form 'Answer: <answer>'.")

ANSWER_LINE = re.compile(  # the final-answer line (the constitution's format check uses it too)
    r"(?im)^[\s*#>_-]*(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*[:：]\s*(.+?)\s*$")
_ANSWER_IS = re.compile(r"(?i)\banswer\s+is\s*:?\s*([^\n]+?)\s*(?:\.\s|\.?$|\n)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?")


def render(question: str, instruction: str, hint: str | None = None) -> str:
    """The user message: question, STaR's hint when asked for, then the instruction."""
    parts = [question.strip()]
    if hint:
        parts.append(hint)
    if instruction:
        parts.append(instruction)
    return "\n\n".join(parts)


def boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (nested braces allowed)."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j].strip()
    return None


def final_answer(text: str) -> str | None:
    """The stated final answer: the last ``Answer:`` line, else ``\\boxed{}``, else
    "the answer is X". Markdown emphasis and a trailing period are dropped."""
    lines = ANSWER_LINE.findall(text)
    found = lines[-1] if lines else None
    if found is None or not found.strip():
        found = boxed(text)
    if found is None:
        m = _ANSWER_IS.findall(text)
        found = m[-1] if m else None
    if found is None:
        return None
    found = found.strip().strip("*_`").strip()
    inner = boxed(found)
    found = inner if inner is not None else found
    return found.rstrip(".").strip() or None


def parse_number(text: str) -> float | None:
    """The first number in ``text``: ``$1,234.50`` -> 1234.5, ``18 apples.`` -> 18,
    ``3/4`` -> 0.75, ``50%`` -> 50."""
    m = _NUMBER.search(text.replace("$", "").replace("\\$", ""))
    if not m:
        return None
    s = m.group(0).replace(",", "").replace(" ", "")
    try:
        if "/" in s:
            num, den = s.split("/")
            return float(num) / float(den) if float(den) else None
        return float(s)
    except ValueError:
        return None


def extract_number(completion: str, lenient: bool = True) -> float | None:
    """The numeric final answer: the number in the stated final answer; with
    ``lenient``, the last number of the completion when no answer is stated."""
    stated = final_answer(completion)
    if stated is not None:
        value = parse_number(stated)
        if value is not None or not lenient:
            return value
    if not lenient:
        return None
    numbers = _NUMBER.findall(completion.replace("$", ""))
    return parse_number(numbers[-1]) if numbers else None


def numbers_equal(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= 1e-6 * max(1.0, abs(b))


def format_number(x: float | None) -> str | None:
    if x is None:
        return None
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def dedupe(problems: list[Problem]) -> list[Problem]:
    """First occurrence of every normalized question (files repeat problems)."""
    seen, out = set(), []
    for p in problems:
        key = fingerprint(p.question)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def is_held_out(question: str, fraction: float, salt: str) -> bool:
    """A problem's split is a hash of its normalized text: stable across runs,
    file orders and machines, and equal texts always land on the same side."""
    h = hashlib.sha1(f"{salt}/{fingerprint(question)}".encode()).digest()
    return int.from_bytes(h[:4], "big") < fraction * 2**32


def hash_split(problems: list[Problem], fraction: float, salt: str) -> tuple[list[Problem], list[Problem]]:
    """(train pool, held-out) by ``is_held_out``, after dropping duplicate texts."""
    problems = dedupe(problems)
    held = [p for p in problems if is_held_out(p.question, fraction, salt)]
    pool = [p for p in problems if not is_held_out(p.question, fraction, salt)]
    return pool, held


def take(problems: list[Problem], n: int | None, seed: str) -> list[Problem]:
    """A seeded shuffle, truncated to ``n`` -- so ``eval_set()[:k]`` is a random sample."""
    out = list(problems)
    random.Random(seed).shuffle(out)
    return out if n is None else out[:n]


class QATask(Task):
    """A task over fixed problem lists: prompt = question + hint + instruction,
    ``verify`` a plain function. The task files build one of these."""

    position_tracker = None  # ordinary positions

    def __init__(self, name: str, pool: list[Problem], held_out: list[Problem], verify, *,
                 seeds: list[Problem] = (), instruction: str = INSTRUCTION) -> None:
        self.name, self._pool, self._eval, self._seeds = name, pool, held_out, list(seeds)
        self._verify, self.instruction = verify, instruction

    def train_pool(self) -> list[Problem]:
        return self._pool

    def eval_set(self) -> list[Problem]:
        return self._eval

    def seed_set(self) -> list[Problem]:
        return self._seeds

    def prompt(self, problem: Problem, hint: bool = False) -> str:
        return render(problem.question, self.instruction, self.hint(problem) if hint else None)

    def hint(self, problem: Problem) -> str:
        """STaR's rationalization hint: the correct answer, stated up front."""
        return f"Hint: the correct answer is {problem.answer}."

    def verify(self, problem: Problem, completion: str):
        return self._verify(problem, completion)
