"""Methods: the policy of one iteration -- what to sample, what to keep, what to
train on and from which model. ``type:`` picks a file here; each file opens with
its paper.

The contract: the loop calls ``generate``, ``select`` and ``train`` and nothing
else. A method trains through ``it.train(rows, init=..., steps=..., **objective)``,
the trainer bound to the iteration (``iteration.py``). What a method needs --
which trainer objective, which optional task capabilities -- its ``Config``
declares (``MethodConfig.needs``): ``check_trainer`` refuses a mismatch when the
recipe is validated, ``check_task`` when a run starts, before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from selftaught.component import Component

if TYPE_CHECKING:
    from selftaught.iteration import Iteration
    from selftaught.records import Problem


@dataclass(frozen=True)
class Needs:
    """What a method needs of the run: the trainer objective(s) it trains with
    (``sft``, ``dpo``, ``grpo``; empty: any) and task capabilities by name
    (``seed_set``: labeled rationales; ``make_problem``: labels new questions)."""

    trainer: tuple[str, ...] = ("sft",)
    task: tuple[str, ...] = ()
    why: str = ""


class MethodConfig(Component):
    """Base of a method's ``Config``: a config, not a hook; ``needs`` reads its fields."""

    def needs(self, iterations: int) -> Needs:
        return Needs()

    def proxy(self, it):
        """The learned scorer that selects iteration ``it``'s training data, as
        ``rows -> [0, 1] scores``, for the over-optimization watch (monitor/overopt.py);
        None: the method's own ``scorer:`` field decides (verifier: nothing to watch)."""
        return None


class Method(Protocol):
    def generate(self, it: Iteration, pool: list[Problem]) -> list[dict]:
        """Sample rows for iteration ``it`` from the train ``pool`` (``it.sample`` stamps provenance)."""

    def select(self, it: Iteration, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        """Mark each scored row kept or not (``kept``, ``select_reason``) and return
        (rows, training rows, the method's own metrics: ``select/...``, ``ttrl/...``)."""

    def train(self, it: Iteration, rows: list[dict]) -> dict:
        """Fine-tune on ``rows`` (after the loop's mix stage) through ``it.train``, which
        leaves the iteration's checkpoint; return ``train/`` metrics."""


def _needs(method_cfg, iterations: int) -> Needs:
    return method_cfg.needs(iterations) if isinstance(method_cfg, MethodConfig) else Needs(trainer=())


def check_trainer(method_cfg, trainer_cfg, iterations: int) -> None:
    """Refuse a trainer whose objective the method does not train with, naming the
    fields (run at recipe validation, so before anything is built)."""
    needs = _needs(method_cfg, iterations)
    objective = getattr(type(trainer_cfg), "objective", None)
    if needs.trainer and objective not in needs.trainer:
        want = " or ".join(f"`trainer: {{type: {t}}}`" for t in needs.trainer)
        raise ValueError(f"method.type={method_cfg.type} trains with {'/'.join(needs.trainer)}{needs.why} and needs "
                         f"{want}, but trainer.type={trainer_cfg.type} trains {objective}")


def check_task(method_cfg, iterations: int, task) -> None:
    """Refuse a task that lacks a capability the method needs (at run start, once the
    task is built and before any model is loaded)."""
    from selftaught.tasks import supports

    needs = _needs(method_cfg, iterations)
    for cap in needs.task:
        if not supports(task, cap):
            raise ValueError(f"method.type={method_cfg.type} needs a task with {cap} "
                             f"(task {task.name!r} has none){needs.why}")
