"""Label-free easy-to-hard self-improvement (Lee et al. 2025, "Self-Improving
Transformers Overcome Easy-to-Hard and Length Generalization Challenges", arXiv
2502.01612), with TTRL's majority-vote pseudo-label (Zuo et al. 2025, arXiv
2504.16084).

What it does: a model trained with labels only on easy problems (arithmetic: 1-3
digit sums) labels problems one step harder itself, keeps the labels that survive
majority voting and a length filter, trains on them together with everything it
labeled before, and repeats -- each round a little further (the paper: 10 to 100
digit addition). Which levels a round samples follows the model
(``curriculum.py``): the next level enters when the vote agreement on the current
one reaches ``advance_at``. Gold answers are never read by selection nor by the
schedule; they only feed the ``label/`` metrics (pseudo-label accuracy per level).

``label`` picks the arm: ``vote`` (the paper's filters: majority share >=
``min_majority_ratio`` and, where the task knows it, an answer of a plausible
length), ``none`` (every sample trained: no filter) or ``gold`` (the samples the
verifier calls correct: an oracle upper bound, not label-free). ``consistency``
(with ``vote``) adds a filter of our own, label-free like the length filter: a
trace whose working contradicts itself (``Graded.consistent``; arithmetic: the
carry chain breaks, the last line carries a digit out, or the answer line is
not the lines' digits) casts no vote. It targets the tiny model's systematic
error one length past its training -- it drops the final-carry line, so every
sample agrees on an answer one digit short, which the vote and the length filter
both keep (vote agreement 0.98 with 38% of labels right at 10 digits). Measured,
it is not a fix: labels there were 61-67% right for one round, then the model
learned to pass the check with a wrong carry on the last digit line
(benchmarks/results/curriculum_consistent*.json, README). The stall's cause is the
positions: the model reads a line's index from its distance to the prompt's start
and stops after the longest line it was taught; with ``task.position_gaps`` in
training (recipes/easy_to_hard_gaps_arithmetic.yaml) the warm start reaches 24
digits and the vote's rounds take it to the 48 held out
(benchmarks/results/curriculum_gaps*.json).

Where we depart:
- The paper votes across 5 models trained with different seeds, greedy; here
  one model's ``samples_per_problem`` sampled completions vote (TTRL's vote).
- The paper adds one length per round on a fixed schedule; here a round walks
  up from the first unlabeled level and stops at the first level not mastered:
  with ``advance: learned`` (default) a level is mastered once the model was
  trained on it in an earlier round and its agreement reaches ``advance_at``, so
  at most one new level enters per round, as in the paper, but only when the
  model is ready for it; earlier levels replay with fresh labels, and a
  forgotten level is learned again. ``advance: agreement`` (agreement alone) lets
  a model skip levels it agrees with itself on without having been taught them;
  on the tiny model that sent it one level too far, to labels mostly wrong
  (``curriculum.py``).
- The paper's length filter keeps outputs of length n or n+1 for n-digit
  addition; here it is the task's ``Graded.answer_lengths`` (arithmetic: the same).
- Training accumulates every round's kept rows and mixes in the labeled seed
  set through the recipe's ``mix`` section (``accumulate: true``,
  ``natural_fraction``), continuing from the last model (``init: last``).

Run it: ``selftaught run recipes/easy_to_hard_arithmetic.yaml`` (arms:
``method.label=none``, ``method.label=gold``); ``python benchmarks/curriculum.py``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field

from selftaught import curriculum
from selftaught.methods import _filter as F
from selftaught.store import read_parquet
from selftaught.verifiers.vote import majority_vote


class Config(F.SampleConfig):
    type: str = "easy_to_hard"
    samples_per_problem: int = Field(8, ge=2, description="votes per problem")
    init: Literal["base", "last"] = Field("last", description="continue from the last model (the paper)")
    label: Literal["vote", "none", "gold"] = Field("vote", description="vote: majority + length filter; none: keep all; gold: oracle")
    min_majority_ratio: float = Field(0.6, ge=0, le=1, description="vote: keep a problem's label only with this majority share (paper: 0.6)")
    length_filter: bool = Field(True, description="vote: drop labels whose length the level cannot have (task's Graded.answer_lengths)")
    consistency: bool = Field(
        False, description="vote: a trace whose working contradicts itself (task's Graded.consistent, read from the "
                           "completion alone) casts no vote; the share is taken among the traces that do")
    advance_at: float = Field(0.9, gt=0, le=1, description="agreement on a level at which the next level enters the pool")
    advance: Literal["learned", "agreement"] = Field(
        "learned", description="learned: a level counts as mastered only once trained on in an earlier round; agreement: agreement alone")
    probe_problems: int = Field(16, ge=1, description="problems per level sampled on the way up to the current level")
    problems_per_iteration: int | None = Field(128, description="problems of the current level per round")
    start_level: str | None = Field(None, description="first level walked (None: the first level without labeled seed problems)")
    max_per_problem: int | None = Field(2, description="keep at most this many traces per problem")


def blind_answers(it, rows: list[dict], check=None) -> list[dict]:
    """Each row's extracted answer with the gold answer blanked out (``vote_answer``).
    With ``check`` (``Graded.consistent``), a row whose working contradicts itself
    gets ``consistent: False`` and no vote (``vote_answer`` None): the schedule's
    agreement then counts it as a vote against every answer."""
    for r in rows:
        blind = replace(it.problems[r["problem_id"]], answer="", rationale=None)
        r["vote_answer"] = it.task.verify(blind, r["completion"]).answer
        if check is not None:
            r["consistent"] = bool(check(r["completion"]))
            r["vote_answer"] = r["vote_answer"] if r["consistent"] else None
    return rows


def consistency_check(graded, cfg: Config):
    """``Graded.consistent`` when ``consistency`` is on (an error if the task has none)."""
    if not cfg.consistency:
        return None
    if cfg.label != "vote":
        raise ValueError(f"easy_to_hard: method.consistency applies to label: vote, not label: {cfg.label}")
    if graded.consistent("") is None:
        raise ValueError("easy_to_hard: method.consistency is on, but this task has no self-consistency check "
                         "(its graded() gives no `consistent`); turn it off or give the task one")
    return graded.consistent


def start_index(it, levels: list[str], cfg: Config) -> int:
    if cfg.start_level is not None:
        return levels.index(cfg.start_level)
    labeled = {str(p.group) for p in it.task.seed_set()}
    return next((i for i, lv in enumerate(levels) if lv not in labeled), len(levels))


def learned_levels(it, cfg: Config) -> set[str] | None:
    """The levels earlier rounds trained on (levels of their kept rows), read from
    their ``samples.parquet``; None with ``advance: agreement``."""
    if cfg.advance == "agreement":
        return None
    out: set[str] = set()
    for k in range(1, it.k):
        path = it.iter_dir(k) / "samples.parquet"
        if path.is_file():
            out |= {str(r["level"]) for r in read_parquet(path) if r.get("kept") and r.get("level") is not None}
    return out


def keep_rule(cfg: Config, graded):
    """``(row -> kept?, row -> why not)`` for the configured label arm."""
    def length_ok(r) -> bool:
        span = graded.answer_lengths(r["level"]) if cfg.length_filter else None
        return span is None or span[0] <= len(r["pseudo_label"]) <= span[1]

    def vote_ok(r) -> bool:
        return (r["pseudo_label"] is not None and r["majority_ratio"] >= cfg.min_majority_ratio
                and r["vote_answer"] == r["pseudo_label"] and length_ok(r))

    def why(r) -> str:
        if cfg.label == "gold":
            return r["verify_reason"]
        if r.get("consistent") is False:
            return "working contradicts itself: casts no vote"
        if r["pseudo_label"] is None:
            return "no answer to vote on"
        if r["majority_ratio"] < cfg.min_majority_ratio:
            return f"majority share {r['majority_ratio']:.2f} < {cfg.min_majority_ratio}"
        if r["vote_answer"] != r["pseudo_label"]:
            return f"answer {r['vote_answer']} disagrees with majority {r['pseudo_label']}"
        return f"label {r['pseudo_label']} has a length level {r['level']} cannot have"

    ok = {"vote": vote_ok, "none": lambda r: True, "gold": lambda r: bool(r["correct"])}[cfg.label]
    return ok, why


def label_metrics(rows: list[dict], levels: list[str]) -> dict:
    """Pseudo-labels against gold, overall and per level: a label is right when a row
    giving it is judged correct by the task's verifier."""
    out, right_all, n_all = {}, 0, 0
    for lv in levels:
        groups = F.by_problem([r for r in rows if r["level"] == lv])
        labelled = [g for g in groups.values() if g[0]["pseudo_label"] is not None]
        right = sum(any(r["correct"] for r in g if r["vote_answer"] == g[0]["pseudo_label"]) for g in labelled)
        if groups:
            out[f"label/acc/{lv}"] = F.frac(right, len(labelled))
        right_all, n_all = right_all + right, n_all + len(labelled)
    return {"label/acc": F.frac(right_all, n_all), "label/problems": n_all, **out}


class EasyToHard:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def generate(self, it, pool) -> list[dict]:
        graded = it.task.graded(pool)
        levels = graded.levels()
        check = consistency_check(graded, self.cfg)
        return curriculum.walk(graded, start_index(it, levels, self.cfg),
                               lambda ps: blind_answers(it, F.sample(it, ps, self.cfg), check),
                               probe=self.cfg.probe_problems, full=self.cfg.problems_per_iteration or 10**9,
                               advance_at=self.cfg.advance_at, seed=it.seed("draw"), learned=learned_levels(it, self.cfg))

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        graded = it.task.graded([it.problems[r["problem_id"]] for r in rows])
        for g in F.by_problem(rows).values():
            # consistency: the share among the traces that vote (majority_vote([]) is (None, 0.0))
            label, ratio = majority_vote([r["vote_answer"] for r in g if r.get("consistent") is not False])
            for r in g:
                r["pseudo_label"], r["majority_ratio"] = label, ratio
        ok, why = keep_rule(self.cfg, graded)
        F.cap_per_problem(rows, ok, self.cfg.max_per_problem, it.seed("select"), why_not=why)
        levels = graded.levels()
        front = curriculum.frontier(rows, levels, self.cfg.advance_at, learned_levels(it, self.cfg))
        kept = [r for r in rows if r["kept"]]
        metrics = {**label_metrics(rows, levels), **{f"curriculum/agreement/{lv}": a for lv, a in front.agreement.items()},
                   "curriculum/current": front.current or "none", "curriculum/levels_walked": len(front.agreement),
                   "curriculum/levels_mastered": len(front.mastered),
                   "select/kept_correct_frac": F.frac(sum(bool(r["correct"]) for r in kept), len(kept))}
        if self.cfg.consistency:
            metrics["select/inconsistent_frac"] = F.frac(sum(r["consistent"] is False for r in rows), len(rows))
        return rows, F.train_rows(it, rows), metrics

    def train(self, it, rows: list[dict]) -> dict:
        return F.train(it, rows, self.cfg)


def build(cfg: Config) -> EasyToHard:
    return EasyToHard(cfg)
