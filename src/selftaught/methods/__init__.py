"""Methods: the policy of one iteration -- what to sample, what to keep, what to
train on and from which model. ``type:`` picks a file here; each file opens with
its paper."""

from __future__ import annotations

from typing import Protocol


class Method(Protocol):
    def generate(self, it) -> list[dict]:
        """Sample rows for iteration ``it`` (see ``loop.Iteration``)."""

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict]]:
        """Mark each scored row kept or not (``kept``, ``select_reason``) and return
        (rows, training rows)."""

    def init_model(self, it) -> str:
        """The model the train stage starts from: the base model or the last checkpoint."""

    def train_steps(self, it, n_rows: int) -> int:
        """Optimizer steps of this iteration's train stage."""

    # Optional: a method that needs more than one trainer call per iteration (ReST's
    # Improve steps) or another trainer (DPO, GRPO) defines
    #     def train(self, it, rows, trainer, out_dir) -> dict
    # and must leave an HF model directory at out_dir; the loop then skips
    # init_model/train_steps.
    #
    # Optional: ``def select_metrics(self, it, rows, train) -> dict`` adds the
    # method's own metrics (``select/...``, ``ttrl/...``) to the select stage's.
