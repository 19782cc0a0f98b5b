"""Trainers fine-tune a model on kept records. ``type:`` picks a file here."""

from __future__ import annotations

from typing import Protocol


class Trainer(Protocol):
    def train(self, init_model: str, rows: list[dict], out_dir: str, *, steps: int, seed: int, position_tracker=None, desc: str = "train") -> dict:
        """Fine-tune ``init_model`` on ``rows`` (prompt/completion dicts), save an HF
        model directory to ``out_dir``, return ``train/`` metrics."""


def save_checkpoint(model, tokenizer, out_dir: str) -> None:
    """Write to ``<out_dir>.tmp`` and rename: a half-written checkpoint never looks finished."""
    import shutil
    from pathlib import Path

    tmp = Path(str(out_dir) + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
