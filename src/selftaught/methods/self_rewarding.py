"""Self-Rewarding Language Models (Yuan et al. 2024, arXiv 2401.10020).

What it does: the model is both the policy and its own reward model. Each
iteration, for every prompt it samples N candidate responses (paper: N = 4,
T = 0.7, top-p 0.9), then judges each candidate itself with the additive 0-5
LLM-as-a-judge rubric (``verifiers/judge.py``; paper: 3 judgements averaged). The highest-
and lowest-scored candidates of a prompt form a preference pair (prompts whose
scores tie are discarded), and the next model M_{t+1} is trained from M_t with
DPO on those pairs (AI Feedback Training). Because the judge drifts with the
policy, we report what the paper flags as the confounds: the judge's agreement
with gold where the task has a verifier (``judge/gold_pair_agreement``: over
candidate pairs of one prompt with different gold verdicts, the fraction the
judge orders correctly, ties 0.5), the score distribution (``judge/score_hist/*``)
and response length (``gen/len_chars_mean``, chosen vs rejected).

Where we depart:
- No EFT/IFT seed fine-tuning step (M1 in the paper): we start from the given
  model (an instruct model such as SmolLM2-135M-Instruct).
- Prompts come from the task's train pool instead of being generated few-shot.
- A judgement we cannot parse is *no score*; a candidate with no parsed score
  never enters a pair (``judge.parse_score``).
- The reference model of DPO is M_t (TRL default: the model training starts from).

Run it: ``selftaught run recipes/self_rewarding_arithmetic.yaml`` (trainer ``dpo``).
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import Field

from selftaught import templates
from selftaught.methods import MethodConfig, Needs
from selftaught.verifiers.judge import judge


class Config(MethodConfig):
    type: str = "self_rewarding"
    problems_per_iteration: int | None = Field(64, description="prompts drawn from the pool per iteration (None: all)")
    candidates: int = Field(4, ge=2, description="responses sampled per prompt (paper: 4)")
    temperature: float = Field(0.7, description="sampling temperature of the candidates (paper: 0.7)")
    top_p: float = Field(0.9, description="nucleus sampling of the candidates (paper: 0.9)")
    max_new_tokens: int = Field(160, description="generation budget of a candidate")
    judge_samples: int = Field(3, ge=1, description="judgements per candidate, averaged (paper: 3)")
    judge_temperature: float = Field(0.7, description="sampling temperature of the judgements (greedy if judge_samples = 1)")
    judge_max_new_tokens: int = Field(192, description="budget of a judgement (the rubric asks for <= 100 words)")
    judge_template: str = Field("judge_additive", description="rubric prompt: shipped template name or a file with {prompt} and {response}")

    def needs(self, iterations: int) -> Needs:
        return Needs(trainer=("dpo",), why=" (best-vs-worst preference pairs)")


def best_worst_pairs(rows: list[dict]) -> tuple[list[tuple[dict, dict]], dict[str, str]]:
    """Per problem, (highest-scored, lowest-scored) candidate; ties of the max go to the
    first candidate. Candidates without a score are left out; a problem with fewer than
    two scored candidates, or whose scores are all equal, gives no pair.
    Returns (pairs, {sample_id: select_reason}) covering every row."""
    by_problem: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_problem[r["problem_id"]].append(r)
    pairs, why = [], {}
    for group in by_problem.values():
        scored = [r for r in group if r.get("judge_score") is not None]
        for r in group:
            why[r["sample_id"]] = "no parsable judge score" if r.get("judge_score") is None else "neither best nor worst"
        if len(scored) < 2:
            for r in scored:
                why[r["sample_id"]] = "fewer than two scored candidates for this prompt"
            continue
        best = max(scored, key=lambda r: r["judge_score"])
        worst = min(scored, key=lambda r: r["judge_score"])
        if best["judge_score"] == worst["judge_score"]:
            for r in scored:
                why[r["sample_id"]] = f"tie: every scored candidate got {best['judge_score']:g}"
            continue
        why[best["sample_id"]] = f"chosen: best judge score {best['judge_score']:g}"
        why[worst["sample_id"]] = f"rejected: worst judge score {worst['judge_score']:g}"
        pairs.append((best, worst))
    return pairs, why


def gold_pair_agreement(rows: list[dict]) -> tuple[float | None, int]:
    """Over same-prompt pairs of scored candidates whose gold verdicts differ: the
    fraction the judge scores the correct one higher (ties count half)."""
    by_problem: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("judge_score") is not None and r.get("correct") is not None:
            by_problem[r["problem_id"]].append(r)
    agree, n = 0.0, 0
    for group in by_problem.values():
        for good in (r for r in group if r["correct"]):
            for bad in (r for r in group if not r["correct"]):
                n += 1
                agree += 1.0 if good["judge_score"] > bad["judge_score"] else 0.5 if good["judge_score"] == bad["judge_score"] else 0.0
    return (agree / n if n else None), n


def _mean(xs) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


class SelfRewarding:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def generate(self, it, pool) -> list[dict]:
        c = self.cfg
        template = templates.load(c.judge_template, ("prompt", "response"))
        problems = it.draw(pool, c.problems_per_iteration)
        rows = it.sample(problems, c.candidates, temperature=c.temperature, top_p=c.top_p,
                         max_new_tokens=c.max_new_tokens, phase="sample")
        return judge(it, rows, template=template, samples=c.judge_samples, temperature=c.judge_temperature,
                     max_new_tokens=c.judge_max_new_tokens, phase="judge")

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        pairs, why = best_worst_pairs(rows)
        in_pair = {r["sample_id"] for pair in pairs for r in pair}
        for r in rows:
            r.update(kept=r["sample_id"] in in_pair, select_reason=why[r["sample_id"]])
        train = [{"prompt": b["prompt"], "chosen": b["completion"], "rejected": w["completion"],
                  "source": "self_rewarding", "sample_id": b["sample_id"], "rejected_id": w["sample_id"],
                  "problem_id": b["problem_id"], "chosen_score": b["judge_score"], "rejected_score": w["judge_score"]}
                 for b, w in pairs]
        return rows, train, judge_metrics(rows, train)

    def train(self, it, rows: list[dict]) -> dict:
        """DPO from M_t with M_t as the reference."""
        return it.train(rows, init=it.model, ref_model=it.model, desc="self-rewarding dpo")


def judge_metrics(rows: list[dict], train: list[dict]) -> dict:
    """The judge's scores and, where gold exists, its agreement with gold (never read by selection)."""
    scores = [r["judge_score"] for r in rows if r.get("judge_score") is not None]
    agreement, n_gold_pairs = gold_pair_agreement(rows)
    chosen = [r for r in rows if r["select_reason"].startswith("chosen")]
    rejected = [r for r in rows if r["select_reason"].startswith("rejected")]
    by_id = {r["sample_id"]: r for r in rows}
    pair_gold = [t for t in train if by_id[t["sample_id"]]["correct"] != by_id[t["rejected_id"]]["correct"]]
    out = {
        "select/pairs": len(train), "select/skipped_ties": len({r["problem_id"] for r in rows if r["select_reason"].startswith("tie")}),
        "judge/parsed_frac": len(scores) / max(1, len(rows)), "judge/score_mean": _mean(scores),
        "judge/score_correct_mean": _mean(r["judge_score"] for r in rows if r.get("judge_score") is not None and r["correct"]),
        "judge/score_wrong_mean": _mean(r["judge_score"] for r in rows if r.get("judge_score") is not None and not r["correct"]),
        "judge/gold_pair_agreement": agreement, "judge/gold_pairs": n_gold_pairs,
        "judge/chosen_correct_frac": _mean(float(b["correct"]) for b in chosen),
        "judge/rejected_correct_frac": _mean(float(w["correct"]) for w in rejected),
        "judge/pairs_gold_decisive": len(pair_gold),
        "gen/len_chars_mean": _mean(len(r["completion"]) for r in rows),
        "select/len_chars_chosen": _mean(len(r["completion"]) for r in chosen),
        "select/len_chars_rejected": _mean(len(r["completion"]) for r in rejected),
    }
    for s in range(6):
        out[f"judge/score_hist/{s}"] = sum(round(x) == s for x in scores)
    return {k: v for k, v in out.items() if v is not None}


def build(cfg: Config) -> SelfRewarding:
    return SelfRewarding(cfg)
