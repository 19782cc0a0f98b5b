"""Scorers beyond the task's own verifier: a reward model, and the weighted mix
of reward model and verifier that ReST's recipes use ("reward-model score +
a bonus if correct").

Selection thresholds (ReST's rising τ, best-of-N's ``min_reward``) are read on
one scale, [0, 1], whatever the scorer:

- ``verifier``      the task's ``reward`` column, clipped to [0, 1];
- ``reward_model``  the reward model's score, min-max normalized over the rows
                    scored together (one iteration's grown set);
- ``combined``      (normalized RM score + ``correct_bonus`` · correct) / (1 + bonus).

A reward model is any HF sequence-classification model directory
(``AutoModelForSequenceClassification``). It reads ``prompt + completion`` and its
score is the single logit when ``num_labels == 1`` (the usual RM head), else the
logit of the last label minus the first.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, model_validator

Scorer = Literal["verifier", "reward_model", "combined"]


class ScorerFields(BaseModel):
    """Mixed into a method's ``Config`` that thresholds on a reward."""

    scorer: Scorer = Field("verifier", description="reward to threshold on: verifier, reward_model or combined")
    reward_model: str | None = Field(None, description="HF sequence-classification model dir (scorer reward_model/combined)")
    correct_bonus: float = Field(1.0, ge=0, description="combined: weight of the verifier's correct next to the RM score")
    rm_batch_size: int = Field(16, ge=1, description="rows the reward model scores at once")

    @model_validator(mode="after")
    def _needs_model(self):
        if self.scorer != "verifier" and not self.reward_model:
            raise ValueError(f"scorer: {self.scorer} needs `reward_model:` (an HF sequence-classification model dir)")
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


def rewards(rows: list[dict], cfg: ScorerFields) -> list[float]:
    """Each row's reward in [0, 1] under ``cfg.scorer`` (rows carry prompt,
    completion, reward and correct from the verify stage)."""
    if cfg.scorer == "verifier":
        return [min(1.0, max(0.0, float(r["reward"]))) for r in rows]
    raw = reward_model_scores(cfg.reward_model, [r["prompt"] for r in rows], [r["completion"] for r in rows],
                              cfg.rm_batch_size)
    for r, x in zip(rows, raw):
        r["rm_score"] = x
    rm = normalize(raw)
    if cfg.scorer == "reward_model":
        return rm
    b = cfg.correct_bonus
    return [(s + b * bool(r["correct"])) / (1 + b) for s, r in zip(rm, rows)]
