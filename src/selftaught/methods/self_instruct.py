"""Self-Instruct (Wang et al. 2022, arXiv 2212.10560).

What it does: starting from a small seed set, the model writes *new problems*:
each proposal prompt shows it a few problems from the pool (paper: 8 -- 6 seed,
2 generated) and asks for one more. Proposals pass heuristic quality filters and
a novelty filter -- ROUGE-L against every problem already in the pool must be
below 0.7 (paper) -- and then join the pool, from which later proposals draw
their examples. The model answers the new problems and is fine-tuned on them.

Where we depart:
- Our tasks are verifiable, so a new problem is kept only if it can be checked:
  ``label: task`` asks the task to build the problem with its gold answer
  (optional task hook ``make_problem(question, id) -> Problem | None``);
  ``label: majority`` labels it with the majority answer of the model's own
  solutions (kept only if at least ``min_agreement`` of them agree), and marks
  it ``label_source: majority`` -- a pseudo-label, not a gold one.
- We train only on solutions that reach the (gold or majority) answer, one per
  new problem, and a new problem joins the pool only if it got one.
- Every proposal is also compared with the held-out split (ROUGE-L and exact
  text): anything too close is rejected, so the held-out split never leaks into
  the pool. New problems live in ``self_instruct_pool.jsonl`` next to the
  checkpoint that learned them (with the proposal's sample id), so a resumed run
  reads the same pool; they never enter the task's eval split.
- ROUGE-L is our own LCS implementation (F-measure over lower-cased
  alphanumeric tokens, as ``rouge-score``'s default tokenizer): 20 lines
  instead of a dependency that pulls in nltk and absl.

Run it: ``selftaught run recipes/self_instruct_arithmetic.yaml``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import Field

from selftaught import templates
from selftaught.iteration import problem_json
from selftaught.methods import MethodConfig, Needs
from selftaught.records import Problem, with_columns
from selftaught.verifiers.vote import majority_vote

POOL_FILE = "self_instruct_pool.jsonl"
EXTRA = {"is_answer": True, "proposal": None, "new_problem_id": None, "proposal_id": None, "problem_json": None}


class Config(MethodConfig):
    type: str = "self_instruct"
    problems_per_iteration: int = Field(64, ge=1, description="new problems the model is asked to propose per iteration")
    examples_per_prompt: int = Field(8, ge=1, description="pool problems shown per proposal prompt (paper: 8)")
    generated_examples: int = Field(2, ge=0, description="of those, how many come from generated problems (paper: 2)")
    rouge_threshold: float = Field(0.7, description="reject a proposal whose ROUGE-L with any pool or held-out problem is >= this (paper: 0.7)")
    min_chars: int = Field(3, description="quality filter: shortest acceptable problem")
    max_chars: int = Field(400, description="quality filter: longest acceptable problem")
    label: Literal["task", "majority"] = Field("task", description="who labels a new problem: the task (gold) or the model's majority vote")
    solutions: int = Field(4, ge=1, description="solutions sampled per accepted problem")
    min_agreement: float = Field(0.5, description="label: majority -- the winning answer's share must reach this")
    temperature: float = Field(1.0, description="sampling temperature of proposals and solutions")
    max_new_tokens: int = Field(160, description="budget of a solution")
    propose_max_new_tokens: int = Field(64, description="budget of a proposal")
    template: str = Field("self_instruct_propose", description="proposal prompt: shipped name or a file with {examples}")

    def needs(self, iterations: int) -> Needs:
        """``label: task`` needs a task that labels new questions (set label=majority otherwise)."""
        return Needs(task=("make_problem",) if self.label == "task" else (),
                     why="; set method.label=majority to label new problems by the model's majority vote")


# --- ROUGE-L novelty ---------------------------------------------------------------
def rouge_tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def lcs(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (one row of the DP table at a time)."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(a: list[str], b: list[str]) -> float:
    """ROUGE-L F-measure of two token lists (symmetric)."""
    if not a or not b:
        return 0.0
    n = lcs(a, b)
    return 0.0 if n == 0 else 2 * n / (len(a) + len(b))


class Novelty:
    """Texts seen so far; ``closest`` is the highest ROUGE-L of a text against them.
    A bag-of-tokens bound (LCS <= multiset overlap) skips most exact comparisons."""

    def __init__(self, texts=()) -> None:
        self.items: list[tuple[list[str], Counter, str]] = []
        for t in texts:
            self.add(t)

    def add(self, text: str) -> None:
        toks = rouge_tokens(text)
        self.items.append((toks, Counter(toks), text))

    def closest(self, text: str, stop_at: float = 1.0) -> tuple[float, str | None]:
        toks, bag = rouge_tokens(text), Counter(rouge_tokens(text))
        best, who = 0.0, None
        for other, other_bag, raw in self.items:
            if not toks or not other:
                continue
            bound = 2 * sum((bag & other_bag).values()) / (len(toks) + len(other))
            if bound <= best:
                continue
            score = rouge_l(toks, other)
            if score > best:
                best, who = score, raw
                if best >= stop_at:
                    break
        return best, who


def quality_problem(text: str, cfg: Config) -> str:
    """Why a proposal fails the heuristic filters ('' if it passes)."""
    if len(text) < cfg.min_chars:
        return "too short"
    if len(text) > cfg.max_chars:
        return "too long"
    if not text[0].isalnum():
        return "starts with punctuation"
    if not text.isprintable():
        return "non-printable characters"
    if Counter(text).most_common(1)[0][1] > 0.5 * len(text) and len(text) > 8:
        return "degenerate (one character repeated)"
    if re.search(r"\bexample problems?\b|\bproblem:\s*$", text, re.I):
        return "echoes the prompt"
    return ""


def extract_question(completion: str) -> str:
    """The first non-empty line, without a leading ``Problem:`` or list number."""
    for line in completion.splitlines():
        line = re.sub(r"^\s*(?:problem\s*\d*\s*:|\d+[.)])\s*", "", line.strip(), flags=re.I).strip()
        if line:
            return line
    return ""


# --- the method -------------------------------------------------------------------
def read_pool(model_dir: str) -> list[Problem]:
    """Problems generated by earlier iterations (stored next to their checkpoint)."""
    path = Path(model_dir) / POOL_FILE
    if not path.is_file():
        return []
    return [Problem(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _extra(rows: list[dict], **values) -> list[dict]:
    return with_columns(rows, EXTRA, **values)


class SelfInstruct:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def _new_problem(self, it, question: str) -> tuple[Problem | None, str]:
        pid = "si/" + hashlib.sha1(question.encode()).hexdigest()[:12]
        if self.cfg.label == "task":
            p = it.task.make_problem(question, pid)  # the task picks the id of a problem it knows
            return p, "" if p is not None else "the task cannot check it"
        p = Problem(id=pid, question=question, answer="", group="self_instruct", meta={"label_source": "majority"})
        try:
            it.task.prompt(p)
        except Exception as e:  # noqa: BLE001 -- a task that cannot render free text says so here
            return None, f"the task cannot render it ({type(e).__name__})"
        return p, ""

    def _propose(self, it, seeds: list[Problem], generated: list[Problem]) -> list[dict]:
        c, rng = self.cfg, random.Random(it.seed("examples"))
        template = templates.load(c.template, ("examples",))
        slots = []
        for i in range(c.problems_per_iteration):
            n_gen = min(c.generated_examples, len(generated))
            shown = rng.sample(seeds, min(len(seeds), c.examples_per_prompt - n_gen)) + rng.sample(generated, n_gen)
            examples = "".join(f"Problem: {p.question}\n" for p in shown)
            slots.append((Problem(id=f"proposal{i}", question="", answer=""), templates.fill(template, examples=examples)))
        rows = it.sample([s[0] for s in slots], 1, temperature=c.temperature, max_new_tokens=c.propose_max_new_tokens,
                         phase="propose", prompts=[s[1] for s in slots])
        return _extra(rows, is_answer=False)

    def generate(self, it, pool) -> list[dict]:
        c = self.cfg
        seeds, generated = it.task.seed_set() or list(pool), read_pool(it.model)
        novelty = Novelty([p.question for p in [*seeds, *pool, *generated]])
        held_out = Novelty([p.question for p in it.task.eval_set()])
        held_texts = {" ".join(rouge_tokens(p.question)) for p in it.task.eval_set()}
        rows, accepted = self._propose(it, seeds, generated), []
        for r in rows:
            q = extract_question(r["completion"])
            why = quality_problem(q, c)
            if not why and (" ".join(rouge_tokens(q)) in held_texts or held_out.closest(q, c.rouge_threshold)[0] >= c.rouge_threshold):
                why = "too close to a held-out problem"
            if not why:
                score, near = novelty.closest(q, c.rouge_threshold)
                why = f"not novel: ROUGE-L {score:.2f} with {near!r}" if score >= c.rouge_threshold else ""
            p = None
            if not why:
                p, why = self._new_problem(it, q)
            r.update(proposal=q, select_reason=why or "accepted", new_problem_id=p.id if p and not why else None)
            if not why:
                novelty.add(q)
                accepted.append((p, r["sample_id"]))
        return rows + self._solve(it, accepted)

    def _solve(self, it, accepted: list[tuple[Problem, str]]) -> list[dict]:
        if not accepted:
            return []
        c = self.cfg
        problems = [p for p, _ in accepted]
        rows = _extra(it.sample(problems, c.solutions, temperature=c.temperature, max_new_tokens=c.max_new_tokens,
                                phase="sample"))
        for i, (p, proposal_id) in enumerate(accepted):
            group = rows[i * c.solutions:(i + 1) * c.solutions]
            if c.label == "majority":
                p = majority_label(it.task, p, [r["completion"] for r in group], c.min_agreement)
            for r in group:
                r.update(problem_json=problem_json(p) if p else None, proposal_id=proposal_id,
                         is_answer=p is not None)
        return rows

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        """One correct solution per new problem; proposals are never training rows."""
        train, solved = [], set()
        for r in rows:
            if r["phase"] == "propose":
                r.update(kept=False, select_reason=r.get("select_reason") or "proposal")
            elif not r["is_answer"]:
                r.update(kept=False, select_reason="no majority answer: problem not labeled")
            elif r["problem_id"] in solved or not r["correct"]:
                r.update(kept=False, select_reason="problem already solved" if r["correct"] else f"rejected: {r['verify_reason']}")
            else:
                solved.add(r["problem_id"])
                r.update(kept=True, select_reason="first correct solution of a new problem")
                train.append({"prompt": it.task.prompt(it.problem_of(r)), "completion": r["completion"],
                              "source": "self_instruct", "sample_id": r["sample_id"], "problem_id": r["problem_id"],
                              "problem_json": r["problem_json"], "proposal_id": r["proposal_id"]})
        return rows, train, proposal_metrics(rows, train)

    def train(self, it, rows: list[dict]) -> dict:
        """SFT from the current model, then store the grown pool beside the checkpoint."""
        m = it.train(rows, init=it.model, steps=it.trainer_steps, desc="self-instruct sft")
        out_dir = it.out_dir
        pool = {p.id: p for p in read_pool(it.model)}
        for r in rows:
            if r.get("problem_json"):
                p = Problem(**json.loads(r["problem_json"]))
                pool.setdefault(p.id, Problem(**{**p.__dict__, "meta": {**p.meta, "proposal_id": r["proposal_id"],
                                                                         "iteration": it.k}}))
        text = "".join(problem_json(p) + "\n" for p in pool.values())
        tmp = Path(out_dir) / f".{POOL_FILE}.tmp"
        tmp.write_text(text)
        tmp.rename(Path(out_dir) / POOL_FILE)
        return {**m, "train/init": it.model, "select/pool_generated": len(pool)}


def proposal_metrics(rows: list[dict], train: list[dict]) -> dict:
    props = [r for r in rows if r["phase"] == "propose"]
    reasons = Counter(r["select_reason"].split(":")[0] for r in props)
    out = {"select/proposals": len(props), "select/proposals_accepted": reasons.pop("accepted", 0),
           "select/new_problems_solved": len(train)}
    out.update({f"select/rejected/{k.replace(' ', '_')}": v for k, v in reasons.items()})
    return out


def majority_label(task, problem: Problem, completions: list[str], min_agreement: float) -> Problem | None:
    """The problem labeled with the most common extracted answer, if its share is high enough."""
    answer, share = majority_vote([task.verify(problem, c).answer for c in completions])
    if answer is None or share < min_agreement:
        return None
    return Problem(**{**problem.__dict__, "answer": answer, "meta": {**problem.meta, "agreement": share}})


def build(cfg: Config) -> SelfInstruct:
    return SelfInstruct(cfg)
