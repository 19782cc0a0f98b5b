"""Inference-time strategies: more compute at test time, no weight update.

- ``greedy``: one greedy answer (the default evaluation).
- ``maj@k``: self-consistency (Wang et al. 2022, arXiv 2203.11171): k samples,
  the most frequent extracted answer wins.
- ``best_of_n``: n samples, the one a scorer likes best wins; scorers are the
  model's own additive-rubric judgement (``self_judge``, ``verifiers/judge.py``), the task
  verifier (``verifier``: an oracle, i.e. pass@n), a process reward model's
  minimum step score (``prm``, ``verifiers/prm.py``), or any callable.
- ``self_refine``: Self-Refine (Madaan et al. 2023, arXiv 2303.17651): answer,
  ask the same model for feedback, refine with the feedback; up to R rounds or
  until the feedback says STOP.
- ``reflexion``: Reflexion (Shinn et al. 2023, arXiv 2303.11366): on a failed
  attempt the model writes a reflection from the verifier's feedback; reflections
  live in an episodic memory that goes into the context of the next attempt.

Each returns ``(rows, final)``: every generated row (with ``strategy``, ``round``,
``feedback``, ``review``, ``final``, ``strategy_score`` columns), and one final row
per problem whose ``correct`` is the strategy's verdict. Evaluation uses them via
``eval.strategy`` (``evaluate.py``); a training method can use them as a generator
and keep final rows that pass the verifier.

Where we depart: Self-Refine and Reflexion use one short prompt template each
(``templates/``), not the papers' task-specific few-shot prompts. Reflexion's
feedback is the verifier's verdict on the extracted answer ("the final answer 41
is wrong"), never the gold answer; since that verifier is the gold checker, the
Reflexion score is success-within-A-attempts with oracle feedback, as in the
paper's HotpotQA/ALFWorld setups, and is not comparable to pass@1.
"""

from __future__ import annotations

import re

from selftaught import templates
from selftaught.verifiers.vote import majority_vote

EXTRA = {"strategy": "", "round": 0, "feedback": None, "review": None, "final": False, "strategy_score": None}


def _mark(rows: list[dict], strategy: str, **values) -> list[dict]:
    """Give every row the same extra columns (Parquet needs one schema per file)."""
    for r in rows:
        for k, v in EXTRA.items():
            r.setdefault(k, v)
        r.update(strategy=strategy, **values)
    return rows


def parse(name: str, default_n: int) -> tuple[str, int]:
    """``maj@8`` -> ("maj", 8); ``best_of_4`` -> ("best_of_n", 4); others keep ``default_n``."""
    m = re.fullmatch(r"(maj|best_of)[@_](\d+|n|k)", name)
    if m:
        kind = "maj" if m.group(1) == "maj" else "best_of_n"
        return kind, int(m.group(2)) if m.group(2).isdigit() else default_n
    if name in ("greedy", "self_refine", "reflexion"):
        return name, default_n
    raise ValueError(f"eval.strategy {name!r}: expected greedy, maj@<k>, best_of_<n>, self_refine or reflexion")


def greedy(it, problems, *, max_new_tokens: int, phase: str = "eval"):
    rows = it.score(it.sample(problems, 1, temperature=0.0, max_new_tokens=max_new_tokens, phase=phase))
    return _mark(rows, "greedy", final=True), rows


def majority(it, problems, k: int, *, temperature: float, max_new_tokens: int, phase: str = "eval_maj"):
    """Self-consistency: the final row per problem is the first sample with the most
    frequent extracted answer (ties: the answer seen first); no answer never wins."""
    rows = _mark(it.score(it.sample(problems, k, temperature=temperature, max_new_tokens=max_new_tokens,
                                     phase=phase)), f"maj@{k}")
    final = []
    for i in range(len(problems)):
        group = rows[i * k:(i + 1) * k]
        label, share = majority_vote([r["answer"] for r in group])
        if label is None:
            winner = group[0]
        else:
            winner = next(r for r in group if r["answer"] == label)
            winner["strategy_score"] = share
        winner["final"] = True
        final.append(winner)
    return rows, final


def best_of_n(it, problems, n: int, scorer="self_judge", *, temperature: float, max_new_tokens: int,
              phase: str = "eval_bon", judge_template: str = "judge_additive", prm_dir: str | None = None):
    """The sample with the highest score wins (ties: the first); unscored samples rank last."""
    rows = _mark(it.score(it.sample(problems, n, temperature=temperature, max_new_tokens=max_new_tokens,
                                     phase=phase)), f"best_of_{n}")
    if scorer == "self_judge":
        from selftaught.verifiers import judge

        judge.judge(it, rows, template=templates.load(judge_template, ("prompt", "response")),
                    max_new_tokens=max_new_tokens, phase=phase + "_judge")
        scores = [r["judge_score"] for r in rows]
    elif scorer == "verifier":
        scores = [r["reward"] for r in rows]
    elif scorer == "prm":  # a process reward model's min step score (verifiers/prm.py)
        from selftaught.verifiers import prm

        scores = prm.rewards(prm.dir_for(it, prm_dir), it.task, rows)
    elif callable(scorer):
        scores = [scorer(it.problem_of(r), r) for r in rows]
    else:
        raise ValueError(f"best_of_n: scorer {scorer!r} is not self_judge, verifier or a callable")
    final = []
    for i in range(len(problems)):
        group = list(zip(rows[i * n:(i + 1) * n], scores[i * n:(i + 1) * n]))
        for r, s in group:
            r["strategy_score"] = s
        winner = max(group, key=lambda rs: float("-inf") if rs[1] is None else rs[1])[0]
        winner["final"] = True
        final.append(winner)
    return rows, final


def self_refine(it, problems, rounds: int, *, max_new_tokens: int, phase: str = "eval_refine",
                stop_word: str = "STOP"):
    """Answer greedily, then up to ``rounds`` times: feedback -> refine. A problem
    stops when its feedback contains ``stop_word``; its last answer is final."""
    fb_t = templates.load("self_refine_feedback", ("prompt", "completion"))
    rf_t = templates.load("self_refine_refine", ("prompt", "completion", "feedback"))
    gen = dict(temperature=0.0, max_new_tokens=max_new_tokens)
    current = _mark(it.score(it.sample(problems, 1, phase=f"{phase}_r0", **gen)), "self_refine", round=0)
    rows, last = list(current), {r["problem_id"]: r for r in current}
    base = {p.id: it.task.prompt(p) for p in problems}
    active = list(problems)
    for rnd in range(1, rounds + 1):
        prompts = [templates.fill(fb_t, prompt=base[p.id], completion=last[p.id]["completion"]) for p in active]
        reviews = it.sample(active, 1, phase=f"{phase}_fb{rnd}", prompts=prompts, **gen)
        for p, rev in zip(active, reviews):
            last[p.id]["review"] = rev["completion"]
        active = [p for p in active if stop_word not in last[p.id]["review"]]
        if not active:
            break
        prompts = [templates.fill(rf_t, prompt=base[p.id], completion=last[p.id]["completion"],
                                  feedback=last[p.id]["review"]) for p in active]
        new = _mark(it.score(it.sample(active, 1, phase=f"{phase}_r{rnd}", prompts=prompts, **gen)),
                    "self_refine", round=rnd)
        for p, r in zip(active, new):
            r["feedback"] = last[p.id]["review"]
            last[p.id] = r
        rows += new
    final = [last[p.id] for p in problems]
    for r in final:
        r["final"] = True
    return rows, final


class EpisodicMemory:
    """Reflexion's long-term memory: the last ``size`` reflections per problem
    (paper: 1-3), rendered into the next attempt's prompt."""

    def __init__(self, size: int = 3) -> None:
        self.size, self.notes = size, {}

    def add(self, key: str, reflection: str) -> None:
        self.notes.setdefault(key, []).append(reflection.strip())

    def recall(self, key: str) -> list[str]:
        return self.notes.get(key, [])[-self.size:]

    def prompt(self, key: str, base_prompt: str, template: str) -> str:
        notes = self.recall(key)
        if not notes:
            return base_prompt
        listed = "\n".join(f"- {n}" for n in notes)
        return templates.fill(template, reflections=listed, prompt=base_prompt)


def verifier_feedback(row: dict) -> str:
    """What Reflexion's evaluator tells the model: the verdict, never the gold answer."""
    if row.get("answer") is None:
        return "no final answer could be found in it."
    return f"the final answer {row['answer']} is wrong."


def reflexion(it, problems, attempts: int, *, max_new_tokens: int, memory_size: int = 3,
              phase: str = "eval_reflexion", memory: EpisodicMemory | None = None):
    """Up to ``attempts`` greedy attempts per problem; after each failure the model
    reflects on it, and later attempts see the stored reflections."""
    reflect_t = templates.load("reflexion_reflect", ("prompt", "completion", "feedback"))
    attempt_t = templates.load("reflexion_attempt", ("prompt", "reflections"))
    memory = memory or EpisodicMemory(memory_size)
    gen = dict(temperature=0.0, max_new_tokens=max_new_tokens)
    base = {p.id: it.task.prompt(p) for p in problems}
    rows, last, active = [], {}, list(problems)
    for a in range(attempts):
        prompts = [memory.prompt(p.id, base[p.id], attempt_t) for p in active]
        new = _mark(it.score(it.sample(active, 1, phase=f"{phase}_a{a}", prompts=prompts, **gen)),
                    "reflexion", round=a)
        for p, r in zip(active, new):
            r["feedback"] = "\n".join(memory.recall(p.id)) or None
            last[p.id] = r
        rows += new
        active = [p for p, r in zip(active, new) if not r["correct"]]
        if not active or a == attempts - 1:
            break
        prompts = [templates.fill(reflect_t, prompt=base[p.id], completion=last[p.id]["completion"],
                                  feedback=verifier_feedback(last[p.id])) for p in active]
        for p, refl in zip(active, it.sample(active, 1, phase=f"{phase}_reflect{a}", prompts=prompts, **gen)):
            last[p.id]["review"] = refl["completion"]
            memory.add(p.id, refl["completion"])
    final = [last[p.id] for p in problems]
    for r in final:
        r["final"] = True
    return rows, final


class _Counted:
    """``it`` with a count of generated sequences (answers, feedback, reflections,
    judgements): the sample budget a strategy spent."""

    def __init__(self, it) -> None:
        self._it, self.generations = it, 0

    def __getattr__(self, name):
        return getattr(self._it, name)

    def sample(self, *args, **kwargs):
        rows = self._it.sample(*args, **kwargs)
        self.generations += len(rows)
        return rows


def run(name: str, it, problems, ecfg, phase: str = "eval"):
    """Dispatch ``eval.strategy``: (all rows, one final row per problem, budget metrics)."""
    kind, n = parse(name, ecfg.samples)
    mnt, temp, c = ecfg.max_new_tokens, ecfg.temperature, _Counted(it)
    if kind == "greedy":
        rows, final = greedy(c, problems, max_new_tokens=mnt, phase=phase)
    elif kind == "maj":
        rows, final = majority(c, problems, n, temperature=temp, max_new_tokens=mnt, phase=f"{phase}_maj")
    elif kind == "best_of_n":
        rows, final = best_of_n(c, problems, n, ecfg.scorer, temperature=temp, max_new_tokens=mnt,
                                phase=f"{phase}_bon", prm_dir=ecfg.prm)
    elif kind == "self_refine":
        rows, final = self_refine(c, problems, ecfg.rounds, max_new_tokens=mnt, phase=f"{phase}_refine")
    else:
        rows, final = reflexion(c, problems, ecfg.rounds, max_new_tokens=mnt, phase=f"{phase}_reflexion")
    return rows, final, {"eval/generations_per_problem": c.generations / max(1, len(problems))}
