"""Tasks: problems (a train pool and a disjoint held-out split), how a prompt is
rendered, and how a completion is judged. The ``type:`` of a recipe's ``task``
section is a file name in this folder (``arithmetic`` -> ``arithmetic.py``)."""

from __future__ import annotations

from typing import Callable, ClassVar, Protocol

from selftaught.records import Problem, Score


class PositionTracker(Protocol):
    """Feeds tokens one at a time and returns each token's position id. Tasks whose
    text format needs custom positions (position coupling) provide one."""

    def feed(self, token: str) -> int: ...


class Task(Protocol):
    """What the loop, the methods and the monitor read of a task. Optional
    capabilities have defaults here: a task subclasses ``Task`` and overrides
    what it has, so nothing is probed with ``hasattr``."""

    name: str
    # None: ordinary positions 0, 1, 2, ...
    position_tracker: Callable[[], PositionTracker] | None = None
    # What changes a trained model's positions beyond ``position_tracker``, for cache
    # keys (arithmetic's ``position_gaps``); None: nothing.
    train_positions_key: str | None = None
    # Character-level tasks (the built-in tiny model's) name their tokenizer's
    # characters; n-gram metrics then count characters, not words. None: word-level.
    alphabet: str | None = None
    verifier_version: int = 1  # stamped in every row's ``verifier`` column; bump when verify() changes
    # "make_problem": labels new questions; "step_checks": checks every step exactly
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def train_pool(self) -> list[Problem]: ...
    def eval_set(self) -> list[Problem]: ...
    def seed_set(self) -> list[Problem]: ...  # labeled rationales; may be empty
    def prompt(self, problem: Problem, hint: bool = False) -> str: ...
    def hint(self, problem: Problem) -> str: ...  # the hint text a hinted prompt carries
    def verify(self, problem: Problem, completion: str) -> Score: ...

    @property
    def train_position_tracker(self) -> Callable[[], PositionTracker] | None:
        """Positions for training rows; ``position_tracker`` unless the task varies them
        in training only (arithmetic's ``position_gaps``)."""
        return self.position_tracker

    def verify_many(self, problems: list[Problem], completions: list[str]) -> list[Score]:
        """Batched verify (the code task runs its sandbox workers in parallel)."""
        return [self.verify(p, c) for p, c in zip(problems, completions)]

    def reasoning_path(self, completion: str) -> str:
        """The part of a completion that counts as its reasoning path, so RFT keeps
        only distinct paths (methods/rft.py): by default, whitespace collapsed."""
        return " ".join(completion.split())

    def steps(self, completion: str) -> list[str]:
        """The completion cut into reasoning steps, concatenating back to it (the
        process reward model scores each, verifiers/prm.py): by default one line a step,
        a blank line joined to the step before it."""
        out: list[str] = []
        for line in completion.splitlines(keepends=True):
            if out and not line.strip():
                out[-1] += line
            else:
                out.append(line)
        return out

    def step_checks(self, problem: Problem, completion: str) -> list[bool] | None:
        """Is each step's prefix exactly right? Only tasks whose steps can be checked
        (arithmetic's scratchpad lines), with ``"step_checks"`` in ``capabilities``;
        None: no exact check."""
        return None

    def graded(self, pool: list[Problem]):
        """The pool by difficulty level, for the curriculum (curriculum.py): by
        default each problem's ``group`` is its level, with no length filter."""
        from selftaught.curriculum import ByGroup

        return ByGroup(pool)

    def make_problem(self, question: str, id: str | None = None) -> Problem | None:
        """A new problem with its gold answer from a question text (Self-Instruct's
        ``label: task``); only tasks with ``"make_problem"`` in ``capabilities``."""
        raise NotImplementedError(f"task {self.name!r} cannot label new problems")


def supports(task: Task, capability: str) -> bool:
    return capability in task.capabilities
