"""Tasks: problems (a train pool and a disjoint held-out split), how a prompt is
rendered, and how a completion is judged. The ``type:`` of a recipe's ``task``
section is a file name in this folder (``arithmetic`` -> ``arithmetic.py``)."""

from __future__ import annotations

from typing import Callable, Protocol

from selftaught.records import Problem, Score


class PositionTracker(Protocol):
    """Feeds tokens one at a time and returns each token's position id. Tasks whose
    text format needs custom positions (position coupling) provide one."""

    def feed(self, token: str) -> int: ...


class Task(Protocol):
    name: str

    def train_pool(self) -> list[Problem]: ...
    def eval_set(self) -> list[Problem]: ...
    def seed_set(self) -> list[Problem]: ...  # labeled rationales; may be empty
    def prompt(self, problem: Problem, hint: bool = False) -> str: ...
    def hint(self, problem: Problem) -> str: ...  # the hint text a hinted prompt carries
    def verify(self, problem: Problem, completion: str) -> Score: ...

    # None: ordinary positions 0, 1, 2, ...
    position_tracker: Callable[[], PositionTracker] | None

    # Optional: ``def reasoning_path(self, completion: str) -> str`` -- the part of a
    # completion that counts as its reasoning path, so RFT can keep only distinct
    # paths (methods/rft.py). Default: the completion with whitespace normalized.
