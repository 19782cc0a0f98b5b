"""Your own function as a task's verifier or a method's scorer.

A recipe names it by import path -- ``verifier: my_pkg.checks:within_1pct`` or
``verifier: ./checks.py:within_1pct`` -- or Python hands it over
(``selftaught.run(..., verifier=fn)``, registered as ``python:verifier.<name>``).
Two shapes are accepted, told apart by the parameter names:

- per completion, ``fn(problem, completion)`` returning a ``Score``, a ``bool``
  (the verdict; reward 1 or 0) or a number (the reward; correct when it reaches
  ``threshold``, 0.5 by default);
- a TRL-style reward function, one with a ``completions`` parameter:
  ``fn(prompts, completions, **kwargs) -> list[float]``, called once per batch
  with keyword arguments as ``GRPOTrainer`` calls it (completions are plain
  strings) and the problem fields as the dataset columns: ``answer``,
  ``question``, ``problem_id``, ``group``. Only the keywords it accepts are passed.

Why a version stamp: every scored row records ``<task>@<version>`` in its
``verifier`` column; for your function the version is its spec and a hash of its
source, so rows scored by an edited function are told apart from older ones.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

from selftaught.records import Problem, Score


class VerifierError(ValueError):
    """A user verifier that cannot be used as one, or that failed; names the spec."""


def resolve(spec_or_fn):
    """(function, spec) from an import-path spec, a ``python:`` name, or a callable."""
    if callable(spec_or_fn):
        return spec_or_fn, f"python:{getattr(spec_or_fn, '__qualname__', type(spec_or_fn).__name__)}"
    from selftaught import registry

    fn = registry.resolve_object(str(spec_or_fn))
    if not callable(fn):
        raise VerifierError(f"verifier `{spec_or_fn}` is {type(fn).__name__}, not a function")
    return fn, str(spec_or_fn)


def is_spec(value) -> bool:
    """Is a ``verifier:``/``scorer:`` value a reference to user code (not a built-in name)?"""
    return isinstance(value, str) and ":" in value


def _batched(fn) -> bool:
    try:
        return "completions" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def version(fn, spec: str) -> str:
    """``<file or module>:<name>#<hash of the source>`` (the hash of the name when the
    source cannot be read); ``python:<file>:<name>#...`` for an object from Python."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = getattr(fn, "__qualname__", repr(fn))
    path, sep, name = spec.rpartition(":")
    short = f"{Path(path).name}{sep}{name}" if "/" in path else spec
    if spec.startswith("python:"):  # a Python object: say where it was defined
        try:
            short = f"python:{Path(inspect.getsourcefile(fn)).name}:{fn.__qualname__}"
        except (TypeError, AttributeError):
            pass
    return f"{short}#{hashlib.sha1(source.encode()).hexdigest()[:8]}"


def to_score(value, spec: str, threshold: float, answer: str | None = None) -> Score:
    """What a user function returned, as a Score."""
    if isinstance(value, Score):
        return value
    if isinstance(value, bool):
        return Score(float(value), value, answer, "correct" if value else f"rejected by {spec}")
    if isinstance(value, (int, float)):
        ok = float(value) >= threshold
        return Score(float(value), ok, answer, f"reward {float(value):g} from {spec}")
    raise VerifierError(f"verifier `{spec}` returned {type(value).__name__} ({value!r:.60}); "
                        "expected a Score, a bool or a number")


class UserVerifier:
    """A user function with the task's verify signature, plus ``many`` for batches.
    ``extract`` (the task's answer extraction) fills the ``answer`` column when the
    function returns no Score of its own."""

    def __init__(self, spec_or_fn, *, threshold: float = 0.5, extract=None, prompt=None) -> None:
        self.fn, self.spec = resolve(spec_or_fn)
        self.threshold, self.extract, self.prompt = threshold, extract, prompt
        self.batched = _batched(self.fn)
        self.version = version(self.fn, self.spec)

    def __call__(self, problem: Problem, completion: str) -> Score:
        return self.many([problem], [completion])[0]

    def many(self, problems: list[Problem], completions: list[str], prompts: list[str] | None = None) -> list[Score]:
        answers = [self.extract(c) if self.extract else None for c in completions]
        try:
            if self.batched:
                if prompts is None:
                    prompts = [self.prompt(p) if self.prompt else p.question for p in problems]
                values = call_reward(self.fn, prompts, completions, problems)
            else:
                values = [self.fn(p, c) for p, c in zip(problems, completions)]
        except VerifierError:
            raise
        except Exception as e:
            raise VerifierError(f"verifier `{self.spec}` raised {type(e).__name__}: {e}") from e
        label = self.version.split("#")[0]
        return [to_score(v, label, self.threshold, a) for v, a in zip(values, answers)]


def call_reward(fn, prompts: list[str], completions: list[str], problems: list[Problem]) -> list:
    """Call a TRL-style reward function the way GRPOTrainer does (keywords), with the
    problem fields as dataset columns; checks it returned one value per completion."""
    columns = {"prompts": prompts, "completions": completions, "answer": [p.answer for p in problems],
               "question": [p.question for p in problems], "problem_id": [p.id for p in problems],
               "group": [p.group for p in problems]}
    params = inspect.signature(fn).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        columns = {k: v for k, v in columns.items() if k in params}
    out = list(fn(**columns))
    if len(out) != len(completions):
        raise VerifierError(f"reward function {getattr(fn, '__qualname__', fn)} returned {len(out)} values "
                            f"for {len(completions)} completions")
    return [0.0 if v is None else v for v in out]  # TRL: None = "this reward does not apply"


class VerifiedTask:
    """A task whose verifier is a user function: everything else is the task's own.
    ``verifier_version`` names the function, so each row's ``verifier`` column reads
    ``<task>@<file>:<function>#<hash>``."""

    def __init__(self, task, verifier: UserVerifier) -> None:
        self._task, self._verifier = task, verifier
        self.verifier_version = verifier.version

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_task", "_verifier"):  # unpickling, copy: no recursion
            raise AttributeError(name)
        return getattr(self._task, name)

    def verify(self, problem: Problem, completion: str) -> Score:
        return self._verifier(problem, completion)

    def verify_many(self, problems: list[Problem], completions: list[str]) -> list[Score]:
        prompts = [self._task.prompt(p) for p in problems]
        return self._verifier.many(problems, completions, prompts)


def with_verifier(task, spec_or_fn, **kwargs):
    """``task`` verified by a user function instead of its own check (``kwargs``: see UserVerifier)."""
    if spec_or_fn is None:
        return task
    return VerifiedTask(task, UserVerifier(spec_or_fn, prompt=task.prompt, **kwargs))


def scorer_rewards(spec_or_fn, rows: list[dict], problem_of) -> list[float]:
    """A method's ``scorer: module:function``: each row's reward on [0, 1] (clipped),
    from a per-completion function or a TRL-style reward over the rows' own prompts."""
    v = UserVerifier(spec_or_fn)
    problems = [problem_of(r) for r in rows]
    scores = v.many(problems, [r["completion"] for r in rows], [r["prompt"] for r in rows])
    return [min(1.0, max(0.0, float(s.reward))) for s in scores]
