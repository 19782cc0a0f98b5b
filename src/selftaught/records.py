"""The nouns that cross stage boundaries: problems, scores, and the columns of the
record files a run writes: every completion is kept, kept or not, with its provenance.

Records travel between stages as plain ``dict`` rows and land on disk as Parquet
(see ``store.py``). Keeping them as dicts, not classes, is what lets a method add
its own provenance columns (a round number, a critique) without touching this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One problem of a task. ``answer`` is the gold final answer as text;
    ``rationale`` is a labeled worked solution where the task has one (seed data)."""

    id: str
    question: str
    answer: str
    group: str = ""  # what eval accuracy is broken down by, e.g. the digit count
    rationale: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    """What a verifier says about one completion. ``reward`` is what selection
    thresholds on; ``correct`` is the binary verdict; ``info`` carries anything
    else the verifier checked (e.g. ``steps_ok`` for scratchpads) and why."""

    reward: float
    correct: bool
    answer: str | None = None  # the extracted final answer, None if none was found
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)


# Columns every sample row has. Methods may add more (they are kept as-is).
SAMPLE_COLUMNS = (
    "sample_id",  # f"{iteration}/{phase}/{problem_id}/{index}", unique within a run
    "problem_id",
    "group",
    "iteration",
    "phase",  # "sample", "rationalize", "eval", ... what produced it
    "checkpoint",  # path of the model that sampled it
    "checkpoint_hash",
    "backend",
    "temperature",
    "top_p",
    "max_new_tokens",
    "seed",
    "prompt",  # exactly what the model saw, hint included
    "hint",  # the hint text when the prompt carried one, else None
    "completion",
    # set by the verify stage
    "answer",
    "verifier",
    "reward",
    "correct",
    "verify_reason",
    "steps_ok",  # every scratchpad step checks out (None when the task has no steps)
    # set by the select stage
    "kept",
    "select_reason",
)

# Columns of a training row: what the trainer sees, and where it came from.
TRAIN_COLUMNS = ("prompt", "completion", "source", "sample_id", "problem_id")


def sample_id(iteration: int, phase: str, problem_id: str, index: int) -> str:
    return f"{iteration}/{phase}/{problem_id}/{index}"


def with_columns(rows: list[dict], defaults: dict, **values) -> list[dict]:
    """Give every row a method's extra provenance columns (``defaults`` where unset,
    then ``values``), so all rows of a Parquet file share one schema."""
    for row in rows:
        for k, v in defaults.items():
            row.setdefault(k, v)
        row.update(values)
    return rows
