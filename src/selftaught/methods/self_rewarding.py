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

The seed (``method.eft``, the paper's M1): iteration 1 fine-tunes the starting
model (SFT, ``eft.trainer``) on IFT data (labeled problems' reference solutions)
and EFT data (judge prompts of the model's own candidates on those problems ->
a judgement whose score follows the verifier's verdict; ``methods/_eft.py`` says
how the targets are made). Self-Rewarding runs from iteration 2 on, its prompts
excluding the EFT problems; the judge metrics of iteration 2 are the EFT-seeded
model's, before any self-rewarding training. Without ``eft`` every iteration is
Self-Rewarding from the given model -- a model never taught to judge, which is
not the paper's setting.

Where we depart:
- EFT targets are synthesized from the verifier, not written by a strong model
  and filtered by human rankings; IFT data are the task's labeled problems, not
  Open Assistant conversations (``methods/_eft.py``).
- Prompts come from the task's train pool instead of being generated few-shot.
- A judgement we cannot parse is *no score*; a candidate with no parsed score
  never enters a pair (``judge.parse_score``).
- The reference model of DPO is M_t (TRL default: the model training starts from).

Run it: ``selftaught run recipes/self_rewarding_arithmetic.yaml`` (trainer ``dpo``);
with the EFT seed on SmolLM2: ``recipes/self_rewarding_eft_smollm2.yaml``
(``benchmarks/self_rewarding_eft.py`` runs it next to the no-EFT arm).
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import Field

from selftaught import registry, templates
from selftaught.methods import MethodConfig, Needs
from selftaught.methods import _eft
from selftaught.iteration import problem_json
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
    eft: _eft.EFT | None = Field(None, description="iteration 1 is the EFT + IFT seed stage (SFT), the paper's M1 (None: no seed)")

    def needs(self, iterations: int) -> Needs:
        if iterations > (1 if self.eft else 0):
            return Needs(trainer=("dpo",), why=" (best-vs-worst preference pairs)")
        return Needs(trainer=())  # the EFT stage alone trains with its own eft.trainer


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
        self.template = templates.load(cfg.judge_template, ("prompt", "response"))
        self.eft_trainer = registry.build("trainer", cfg.eft.trainer) if cfg.eft else None

    def is_eft(self, it) -> bool:
        return self.cfg.eft is not None and it.k == 1

    def eft_problems(self, it, pool) -> tuple[list, bool]:
        return _eft.eft_problems(it.task, pool, self.cfg.eft.problems, it.cfg.seed)

    def generate(self, it, pool) -> list[dict]:
        c = self.cfg
        if self.is_eft(it):
            return self._generate_eft(it, pool)
        if c.eft:  # the judge is measured, and trained, on problems it was never shown labeled
            held = {p.id for p in self.eft_problems(it, pool)[0]}
            pool = [p for p in pool if p.id not in held]
        problems = it.draw(pool, c.problems_per_iteration)
        rows = it.sample(problems, c.candidates, temperature=c.temperature, top_p=c.top_p,
                         max_new_tokens=c.max_new_tokens, phase="sample")
        return self._judge(it, rows)

    def _judge(self, it, rows: list[dict]) -> list[dict]:
        c = self.cfg
        return judge(it, rows, template=self.template, samples=c.judge_samples, temperature=c.judge_temperature,
                     max_new_tokens=c.judge_max_new_tokens, phase="judge")

    def _generate_eft(self, it, pool) -> list[dict]:
        """The model's own candidates on the labeled problems (verified in the next stage)."""
        c = self.cfg
        problems, from_seed = self.eft_problems(it, pool)
        rows = it.sample(problems, c.eft.candidates, temperature=c.temperature, top_p=c.top_p,
                         max_new_tokens=c.max_new_tokens, phase="sample")
        by_id = {p.id: p for p in problems}
        for r in rows:  # seed problems are in no split the loop knows (as SPIN's); pool ones need none
            r["problem_json"] = problem_json(by_id[r["problem_id"]]) if from_seed else None
        if c.eft.judge_before:
            return self._judge(it, rows)
        return [{**r, "judge_prompt": None, "judge_output": None, "judge_scores": None, "judge_score": None} for r in rows]

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        if self.is_eft(it):
            return self._select_eft(it, rows)
        pairs, why = best_worst_pairs(rows)
        in_pair = {r["sample_id"] for pair in pairs for r in pair}
        for r in rows:
            r.update(kept=r["sample_id"] in in_pair, select_reason=why[r["sample_id"]])
        train = [{"prompt": b["prompt"], "chosen": b["completion"], "rejected": w["completion"],
                  "source": "self_rewarding", "sample_id": b["sample_id"], "rejected_id": w["sample_id"],
                  "problem_id": b["problem_id"], "chosen_score": b["judge_score"], "rejected_score": w["judge_score"]}
                 for b, w in pairs]
        return rows, train, judge_metrics(rows, train)

    def _select_eft(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        """EFT rows from every verified candidate (balanced), IFT rows from the problems."""
        problems = {r["problem_id"]: it.problem_of(r) for r in rows}
        from_seed = any(r.get("problem_json") for r in rows)
        train, why = _eft.examples(rows, problems, it.task.prompt, self.cfg.eft, self.template, it.seed("eft"))
        for r in rows:
            r.update(kept=why[r["sample_id"]].startswith("eft example"), select_reason=why[r["sample_id"]])
        m = _eft.metrics(rows, train, from_seed)
        if self.cfg.eft.judge_before:  # the starting model's judge on these candidates, before it is taught
            m.update({k: v for k, v in judge_metrics(rows, []).items() if k.startswith("judge/")})
        if it.cfg.mix.dedup != "none":  # the mix compares completions within a problem: equal verdicts look alike
            m["eft/warning"] = (f"mix.dedup={it.cfg.mix.dedup} drops EFT examples whose judgements are equal "
                                "(same problem, same verdict); set mix.dedup=none for the EFT stage")
            print(f"warning: {m['eft/warning']}", flush=True)
        return rows, train, m

    def train(self, it, rows: list[dict]) -> dict:
        """The EFT stage: SFT from the starting model; then DPO from M_t with M_t as the reference."""
        if self.is_eft(it):
            m = it.train(rows, init=it.model, steps=self.cfg.eft.trainer.steps, trainer=self.eft_trainer,
                         desc="eft + ift sft")
            return {**m, "train/init": it.model}
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
        "judge/parsed_frac": len(scores) / max(1, len(rows)), "judge/candidates": len(rows),
        "judge/score_mean": _mean(scores),
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
