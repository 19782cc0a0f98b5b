"""Trainers fine-tune a model on kept records. ``type:`` picks a file here."""

from __future__ import annotations

from typing import Protocol


class Trainer(Protocol):
    def train(self, init_model: str, rows: list[dict], out_dir: str, *, steps: int, seed: int, position_tracker=None, desc: str = "train") -> dict:
        """Fine-tune ``init_model`` on ``rows`` (prompt/completion dicts), save an HF
        model directory to ``out_dir``, return ``train/`` metrics."""
