"""Scorers beyond the task's own verifier: a reward model, and the weighted mix
of reward model and verifier that ReST's recipes use ("reward-model score +
a bonus if correct").

Selection thresholds (ReST's rising τ, best-of-N's ``min_reward``) are read on
one scale, [0, 1], whatever the scorer:

- ``verifier``      the task's ``reward`` column, clipped to [0, 1];
- ``reward_model``  the reward model's score, min-max normalized over the rows
                    scored together (one iteration's grown set);
- ``combined``      (normalized RM score + ``correct_bonus`` · correct) / (1 + bonus);
- ``prm``           a process reward model's trace score (``prm_aggregate`` of its
                    step probabilities, ``verifiers/prm.py``), already on [0, 1].

A reward model is any HF sequence-classification model directory
(``AutoModelForSequenceClassification``). It reads ``prompt + completion`` and its
score is the single logit when ``num_labels == 1`` (the usual RM head), else the
logit of the last label minus the first.
"""

from __future__ import annotations

from functools import lru_cache

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

BUILTIN: tuple[str, ...] = ("verifier", "reward_model", "combined", "prm")


class ScorerFields(BaseModel):
    """Mixed into a method's ``Config`` that thresholds on a reward."""

    scorer: str = Field("verifier", description="reward to threshold on: verifier, reward_model, combined, prm, or your "
                        "function as `module:function` / `./file.py:function` ((problem, completion) -> bool|float|Score, "
                        "or TRL-style (prompts, completions, **kw) -> list[float])")
    reward_model: str | None = Field(None, description="HF sequence-classification model dir (scorer reward_model/combined)")
    correct_bonus: float = Field(1.0, ge=0, description="combined: weight of the verifier's correct next to the RM score")
    rm_batch_size: int = Field(16, ge=1, description="rows the reward model scores at once")
    prm: str | None = Field(None, exclude_if=lambda v: v is None,  # unset: config.yaml as before
                            description="process reward model dir (scorer prm; verifiers/prm.py)")
    prm_aggregate: Literal["min", "prod"] = Field("min", exclude_if=lambda v: v == "min",
                                                  description="scorer prm: a trace's score from its steps'")

    @field_validator("scorer")
    @classmethod
    def _known(cls, v: str) -> str:
        from selftaught.verifiers.callable import is_spec

        if v not in BUILTIN and not is_spec(v):
            raise ValueError(f"scorer {v!r}: expected one of {', '.join(BUILTIN)} or `module:function`")
        return v

    @model_validator(mode="after")
    def _needs_model(self):
        if self.scorer in ("reward_model", "combined") and not self.reward_model:
            raise ValueError(f"scorer: {self.scorer} needs `reward_model:` (an HF sequence-classification model dir)")
        if self.scorer == "prm" and not self.prm:
            raise ValueError("scorer: prm needs `prm:` (a process reward model dir, verifiers/prm.py)")
        return self


@lru_cache(maxsize=2)
def _load(path: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from selftaught import hardware

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    hw = hardware.resolved()  # the run's device and dtype, as every model load
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=hw.torch_dtype).to(hw.torch_device()).eval()
    if model.config.pad_token_id is None:  # the head reads the last non-pad token
        model.config.pad_token_id = tok.pad_token_id
    return model, tok


def reward_model_scores(path: str, prompts: list[str], completions: list[str], batch_size: int = 16) -> list[float]:
    """Raw reward-model scores of ``prompt + completion``, in order."""
    import torch

    model, tok = _load(str(path))
    out: list[float] = []
    with torch.inference_mode():
        for i in range(0, len(prompts), batch_size):
            texts = [p + c for p, c in zip(prompts[i : i + batch_size], completions[i : i + batch_size])]
            enc = tok(texts, return_tensors="pt", padding=True, truncation=True, add_special_tokens=False)
            logits = model(**enc.to(model.device)).logits.float()
            score = logits[:, 0] if logits.shape[-1] == 1 else logits[:, -1] - logits[:, 0]
            out += score.tolist()
    return out


def normalize(xs: list[float]) -> list[float]:
    """Min-max to [0, 1]; all-equal scores map to 0.5."""
    if not xs:
        return []
    lo, hi = min(xs), max(xs)
    return [0.5 if hi == lo else (x - lo) / (hi - lo) for x in xs]


def rewards(rows: list[dict], cfg: ScorerFields, problem_of=None, task=None) -> list[float]:
    """Each row's reward in [0, 1] under ``cfg.scorer`` (rows carry prompt,
    completion, reward and correct from the verify stage); a user function's
    rows need ``problem_of`` (``Iteration.problem_of``), a PRM's the ``task``."""
    if cfg.scorer == "verifier":
        return [min(1.0, max(0.0, float(r["reward"]))) for r in rows]
    if cfg.scorer not in BUILTIN:
        from selftaught.verifiers.callable import scorer_rewards

        return scorer_rewards(cfg.scorer, rows, problem_of)
    if cfg.scorer == "prm":
        from selftaught.verifiers import prm

        return prm.rewards(cfg.prm, task, rows, cfg.prm_aggregate)
    raw = reward_model_scores(cfg.reward_model, [r["prompt"] for r in rows], [r["completion"] for r in rows],
                              cfg.rm_batch_size)
    for r, x in zip(rows, raw):
        r["rm_score"] = x
    rm = normalize(raw)
    if cfg.scorer == "reward_model":
        return rm
    b = cfg.correct_bonus
    return [(s + b * bool(r["correct"])) / (1 + b) for s, r in zip(rm, rows)]
