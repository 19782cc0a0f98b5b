"""Solver/verifier self-play: one model writes solutions and judges them.

No single paper: the loop of the seed material (the model solves; the same model
judges each solution CORRECT/INCORRECT with reasons; a rejected solution gets a
second try written from the judge's feedback; solutions are kept by a quality
threshold), close to self-verification in Weng et al. 2023 (arXiv 2212.09561)
and to Self-Refine's feedback-then-revise step (Madaan et al. 2023,
arXiv 2303.17651). The seed material warns that a self-judge inherits the
solver's blind spots, so every iteration reports the judge against the real
verifier: ``self_play/judge_precision`` (judged CORRECT and really correct) and
``self_play/judge_recall`` (really correct and judged CORRECT).

Two judges (``judge``):
- ``prompt``  for instruction-following models: the judge prompt below asks for
  ``CORRECT`` or ``INCORRECT`` and reasons; the first of those words in the
  reply is the vote, the rest is the feedback the revision prompt carries.
- ``resolve`` for models that cannot follow instructions -- the built-in tiny
  arithmetic model only knows its scratchpad format. The judge *re-derives*:
  it solves the problem again ``judge_samples`` times and votes CORRECT for a
  solution when a re-derivation reaches the same final answer. The feedback is
  the re-derivations' majority answer, given to the reviser as the task's hint
  (the task's hinted prompt, with the judge's answer in place of gold). This is
  honest self-consistency, not a judge that reads the working: a wrong answer
  the model reaches consistently is judged CORRECT.

Quality of a solution = the share of judge votes saying CORRECT. A first
solution is kept when the judge's majority says CORRECT and its quality is at
least ``quality_threshold``; otherwise, if no solution of the problem was kept,
one revision is written from the feedback and kept by the same threshold. The
real verifier's verdict is never read by selection, only by the metrics.

Run it: ``selftaught run recipes/self_play_arithmetic.yaml``
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Literal

from pydantic import Field

from selftaught.methods import _filter as F
from selftaught.verifiers.vote import majority_vote

JUDGE_PROMPT = ("{prompt}{solution}\n\nIs the solution above correct? Reply CORRECT or INCORRECT on the first line, "
                "then give your reasons.\n")
REVISE_PROMPT = "{prompt}{solution}\n\nA reviewer found this solution incorrect: {feedback}\nImproved solution:\n"
VERDICT = re.compile(r"\b(INCORRECT|CORRECT)\b")


class Config(F.SampleConfig):
    type: str = "self_play"
    samples_per_problem: int = Field(2, ge=1, description="solutions per problem")
    judge: Literal["resolve", "prompt"] = Field("resolve", description="judge by re-deriving, or by a judge prompt")
    judge_samples: int = Field(4, ge=1, description="judge votes per solution (resolve: re-derivations per problem)")
    judge_temperature: float = Field(0.7, description="sampling temperature of the judge")
    quality_threshold: float = Field(0.5, ge=0, le=1, description="keep a solution whose CORRECT-vote share is >= this")
    revise: bool = Field(True, description="write an improved solution for problems with nothing kept")
    judge_prompt: str = Field(JUDGE_PROMPT, description="judge: prompt -- template with {prompt} and {solution}")
    revise_prompt: str = Field(REVISE_PROMPT, description="judge: prompt -- template with {prompt}, {solution}, {feedback}")


def parse_verdict(text: str) -> tuple[bool | None, str]:
    """(True for CORRECT, False for INCORRECT, None if neither word appears; the reasons after it)."""
    m = VERDICT.search(text)
    return (None, text.strip()) if not m else (m.group(1) == "CORRECT", text[m.end():].strip())


class SelfPlay:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def generate(self, it, pool) -> list[dict]:
        c, problems = self.cfg, it.draw(pool, self.cfg.problems_per_iteration)
        sols = F.sample(it, problems, c)
        judge = self._resolve if c.judge == "resolve" else self._prompt_judge
        extra = judge(it, problems, sols)
        return sols + extra

    def _answer(self, it, pid: str, completion: str) -> str | None:
        blind = replace(it.problems[pid], answer="", rationale=None)  # the judge cannot see gold
        return it.task.verify(blind, completion).answer

    def _rate(self, it, row: dict, votes: list[str | None]) -> None:
        mine = self._answer(it, row["problem_id"], row["completion"])
        agree = sum(v is not None and v == mine for v in votes) if mine is not None else 0
        row["judge_quality"] = F.frac(agree, len(votes))
        row["judge_verdict"] = row["judge_quality"] > 0.5

    def _resolve(self, it, problems, sols) -> list[dict]:
        c = self.cfg
        judges = F.sample(it, problems, c, n=c.judge_samples, phase="judge", temperature=c.judge_temperature)
        votes = {pid: [self._answer(it, pid, r["completion"]) for r in g] for pid, g in F.by_problem(judges).items()}
        for s in sols:
            self._rate(it, s, votes[s["problem_id"]])
            s["judge_feedback"] = majority_vote(votes[s["problem_id"]])[0]
        todo = [p for p in problems if not any(self._accepted(s) for s in sols if s["problem_id"] == p.id)]
        todo = [p for p in todo if majority_vote(votes[p.id])[0] is not None] if c.revise else []
        if not todo:
            return judges
        fb = {p.id: majority_vote(votes[p.id])[0] for p in todo}
        prompts = [it.task.prompt(replace(p, answer=fb[p.id]), hint=True) for p in todo]
        revised = F.sample(it, todo, c, n=1, phase="revise", prompts=prompts)
        for r in revised:
            self._rate(it, r, votes[r["problem_id"]])
            r.update(hint=fb[r["problem_id"]], judge_feedback=fb[r["problem_id"]])
        return judges + revised

    def _judge_rows(self, it, sols, phase: str) -> list[dict]:
        """judge: prompt -- judge_samples votes on each solution; sets quality, verdict, feedback."""
        c = self.cfg
        prompts = [c.judge_prompt.format(prompt=s["prompt"], solution=s["completion"]) for s in sols]
        probs = [it.problems[s["problem_id"]] for s in sols]
        out = F.sample(it, probs, c, n=c.judge_samples, phase=phase, temperature=c.judge_temperature, prompts=prompts)
        for s, j0 in zip(sols, range(0, len(out), c.judge_samples)):
            group = out[j0 : j0 + c.judge_samples]
            verdicts = [parse_verdict(j["completion"]) for j in group]
            for i, j in enumerate(group):
                j["sample_id"] = f"{s['sample_id']}/{phase}{i}"
            s["judge_quality"] = F.frac(sum(v is True for v, _ in verdicts), len(verdicts))
            s["judge_verdict"] = s["judge_quality"] > 0.5
            s["judge_feedback"] = next((why for v, why in verdicts if v is False), "")
        return out

    def _prompt_judge(self, it, problems, sols) -> list[dict]:
        judges = self._judge_rows(it, sols, "judge")
        if not self.cfg.revise:
            return judges
        kept = {s["problem_id"] for s in sols if self._accepted(s)}
        worst = {}
        for s in sols:  # revise the lowest-rated solution of each problem with nothing kept
            if s["problem_id"] not in kept and s["judge_quality"] <= worst.get(s["problem_id"], {}).get("judge_quality", 2):
                worst[s["problem_id"]] = s
        if not worst:
            return judges
        todo = list(worst.values())
        prompts = [self.cfg.revise_prompt.format(prompt=s["prompt"], solution=s["completion"],
                                                 feedback=s["judge_feedback"]) for s in todo]
        revised = F.sample(it, [it.problems[s["problem_id"]] for s in todo], self.cfg, n=1, phase="revise",
                           prompts=prompts)
        return judges + revised + self._judge_rows(it, revised, "judge_revise")

    def _accepted(self, row: dict) -> bool:
        return bool(row.get("judge_verdict")) and row["judge_quality"] >= self.cfg.quality_threshold

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        for r in rows:
            if r["phase"] not in ("sample", "revise"):
                F.mark(r, False, "judge output")
            elif r["phase"] == "sample":
                ok = self._accepted(r)
                F.mark(r, ok, f"self-judged CORRECT (quality {r['judge_quality']:.2f})" if ok
                       else f"self-judged INCORRECT (quality {r['judge_quality']:.2f})")
            else:
                ok = r["judge_quality"] >= self.cfg.quality_threshold
                F.mark(r, ok, f"revision quality {r['judge_quality']:.2f} vs threshold {self.cfg.quality_threshold}")
        return rows, F.train_rows(it, rows), judge_metrics(rows)

    def train(self, it, rows: list[dict]) -> dict:
        return F.train(it, rows, self.cfg)


def judge_metrics(rows: list[dict]) -> dict:
    """The self-judge against gold (never read by selection): precision, recall, accuracy."""
    first = [r for r in rows if r["phase"] == "sample"]
    judged_ok = [r for r in first if r["judge_verdict"]]
    really_ok = [r for r in first if r["correct"]]
    both = [r for r in judged_ok if r["correct"]]
    revised = [r for r in rows if r["phase"] == "revise"]
    kept = [r for r in rows if r["kept"]]
    return {"self_play/judge_precision": F.frac(len(both), len(judged_ok)),
            "self_play/judge_recall": F.frac(len(both), len(really_ok)),
            "self_play/judge_accuracy": F.frac(sum(bool(r["judge_verdict"]) == bool(r["correct"]) for r in first),
                                               len(first)),
            "self_play/revised": len(revised),
            "self_play/revised_correct_frac": F.frac(sum(r["correct"] for r in revised), len(revised)),
            "select/kept_correct_frac": F.frac(sum(r["correct"] for r in kept), len(kept))}


def build(cfg: Config) -> SelfPlay:
    return SelfPlay(cfg)
