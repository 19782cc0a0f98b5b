"""Backends turn prompts into sampled completions. ``type:`` picks a file here."""

from __future__ import annotations

from typing import Protocol


class Backend(Protocol):
    name: str

    def load(self, model_path: str, position_tracker=None) -> None:
        """(Re)load weights; called when the checkpoint to sample from changes."""

    def sample(
        self, prompts: list[str], n: int, *, temperature: float, top_p: float, max_new_tokens: int, seed: int, desc: str = ""
    ) -> list[list[str]]:
        """``n`` completions per prompt, deterministic for a given seed. temperature 0 is greedy."""
