"""Collapse warnings and the gate: rules over the run's metric history (one dict
per iteration, as in ``metrics.jsonl``), and what the loop does about them.

Default rules are the seeds' (all thresholds in ``GateConfig``, config.py):

| rule | fires when | severity |
|---|---|---|
| diversity_falling | a diversity metric fell ``falling_for`` (3) iterations in a row, by more than ``diversity_min_change`` (5%) of its first value; a ``gen/`` one only over iterations that sampled the same pool (``GEN_POOL``) | high (info if held-out accuracy rose over those iterations) |
| accuracy_falling | held-out accuracy fell ``falling_for`` iterations in a row, by more than ``accuracy_min_change`` (2 points) in all | critical |
| repetition | the repetition rate (pairwise 3-gram Jaccard) exceeds ``repetition_max`` (0.3) *and* rose more than ``repetition_rise`` (0.1) above the starting model's | high |
| below_start | held-out accuracy is more than ``max_drop_from_start`` (0.1) below iteration 0's | critical |
| overoptimization | a learned scorer selects, and its held-out proxy score rose while gold accuracy fell ``falling_for`` iterations in a row (``overopt.py``) | high |

Rules are relative to the starting model where an absolute threshold misfires:
an untrained model's short answers ("The answer is 1.") repeat each other's
3-grams, so ``repetition`` compares with the first value the run measured (the
starting model's: iteration 0 for ``eval/`` metrics, iteration 1 for ``gen/``
ones, whose samples come from the starting model) and fires only on a rise. And
no rule stops a run before its first training: iteration 0 only measures the
starting model, so its warnings are recorded, never acted on (a stop held
back is recorded as ``gate/held_back``).

Policies: ``warn`` records and prints warnings and goes on; ``stop`` ends the run
at a warning of at least ``stop_severity``; ``rollback`` stops the same way and
marks the best held-out iteration as the run's result. Early stopping
(``patience``) applies under every policy. When a run ends, ``result.json`` in
the run directory points at the iteration whose model is the run's result: the
best held-out one under ``rollback``, else the last one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

SEVERITY = {"info": 0, "high": 1, "critical": 2}
# Diversity metrics where a *rise* is the bad direction (more alike = less diverse).
RISING_IS_BAD = ("self_bleu", "repetition")
# What an iteration's generation prompts were drawn from, where a method changes it: a
# curriculum (methods/easy_to_hard.py) samples the next, harder level each time its
# schedule advances, and diversity measured on other problems does not compare. Over
# the saved benchmark runs, its gen distinct-3 "fell" across levels 9 -> 12 in two
# flat runs that did not collapse (benchmarks/detector_replay.py).
GEN_POOL = "curriculum/current"


@dataclass(frozen=True)
class Alarm:
    rule: str
    metric: str
    severity: str
    iterations: list[int]
    values: list[float]
    message: str


def _series(history: list[dict], metric: str) -> list[tuple[int, float]]:
    """(iteration, value) of every iteration that measured ``metric``."""
    return [(m["iteration"], float(m[metric])) for m in history if isinstance(m.get(metric), (int, float))]


def _fmt(values: list[float]) -> str:
    return " -> ".join(f"{v:.4g}" for v in values)


def worsening(history: list[dict], metric: str, times: int, tolerance: float = 0.0, rising: bool = False):
    """The last ``times + 1`` points of ``metric`` if each moved the bad way by more than
    ``tolerance`` and the last one is the latest iteration's; else None."""
    s = _series(history, metric)
    if times < 1 or len(s) < times + 1 or not history or s[-1][0] != history[-1].get("iteration"):
        return None
    tail = s[-(times + 1) :]
    steps = [b - a if rising else a - b for (_, a), (_, b) in zip(tail, tail[1:])]
    return tail if all(d > tolerance for d in steps) else None


def check(cfg, history: list[dict]) -> list[Alarm]:
    """Every rule that fires at the latest iteration of ``history``."""
    out = []
    acc = dict(_series(history, cfg.accuracy_metric))
    for metric in cfg.diversity_metrics:
        rising = metric.endswith(RISING_IS_BAD)
        tail = worsening(history, metric, cfg.falling_for, cfg.falling_tolerance, rising)
        if tail and abs(tail[-1][1] - tail[0][1]) <= cfg.diversity_min_change * abs(tail[0][1]):
            tail = None  # a drift of a few percent (distinct-3 0.0560 -> 0.0538) is not a collapse
        if tail and metric.startswith("collapse/gen/") and not _one_pool(history, tail):
            tail = None
        if tail:
            way = "rose" if rising else "fell"
            what, severity = f"{metric} {way} {cfg.falling_for} iterations in a row", "high"
            first, last = acc.get(tail[0][0]), acc.get(tail[-1][0])
            if first is not None and last is not None and last > first:  # sharper and better: not collapse
                severity = cfg.diversity_when_improving
                what += f" while {cfg.accuracy_metric} rose {first:.4g} -> {last:.4g}"
            out.append(_warn("diversity_falling", metric, severity, tail, what))
    tail = worsening(history, cfg.accuracy_metric, cfg.falling_for, cfg.falling_tolerance)
    if tail and tail[0][1] - tail[-1][1] <= cfg.accuracy_min_change:
        tail = None  # 38.8% -> 38.1% over 3 iterations (self-play, n = 711) is noise, not a decline
    if tail:
        out.append(_warn("accuracy_falling", cfg.accuracy_metric, "critical", tail,
                         f"{cfg.accuracy_metric} fell {cfg.falling_for} iterations in a row"))
    out += _relative_to_start(cfg, history)
    from selftaught.monitor import overopt  # proxy up, gold down: reward over-optimization (its own module)

    out += overopt.check(cfg, history)
    return out


def _one_pool(history: list[dict], tail: list[tuple[int, float]]) -> bool:
    """Did the iterations of ``tail`` sample from one pool (``GEN_POOL``; absent: yes)?"""
    its = {k for k, _ in tail}
    return len({m.get(GEN_POOL) for m in history if m.get("iteration") in its}) <= 1


def _relative_to_start(cfg, history: list[dict]) -> list[Alarm]:
    """Repetition above its ceiling *and* risen since the starting model; held-out
    accuracy fallen too far below the starting model's."""
    out = []
    for metric in cfg.repetition_metrics:
        s = _series(history, metric)
        if len(s) < 2 or s[-1][0] != history[-1].get("iteration"):
            continue  # the first value is the starting model's own: the baseline, never an alarm
        (k0, start), (k, now) = s[0], s[-1]
        if now > cfg.repetition_max and now - start > cfg.repetition_rise:
            out.append(_warn("repetition", metric, "high", [(k0, start), (k, now)],
                             f"{metric} above {cfg.repetition_max} and up more than {cfg.repetition_rise} "
                             "on the starting model's"))
    s = _series(history, cfg.accuracy_metric)
    if cfg.max_drop_from_start is not None and len(s) >= 2 and s[-1][0] == history[-1].get("iteration"):
        (k0, start), (k, now) = s[0], s[-1]
        if start - now > cfg.max_drop_from_start:
            out.append(_warn("below_start", cfg.accuracy_metric, "critical", [(k0, start), (k, now)],
                             f"{cfg.accuracy_metric} more than {cfg.max_drop_from_start} below the starting model's"))
    return out


def trained(history: list[dict]) -> bool:
    """Has any iteration of ``history`` trained a model (iteration 0 never does)?"""
    return any(m.get("iteration", 0) >= 1 and not m.get("train/skipped") for m in history)


def _warn(rule: str, metric: str, severity: str, tail: list[tuple[int, float]], what: str) -> Alarm:
    its, vals = [i for i, _ in tail], [round(v, 6) for _, v in tail]
    msg = f"[{severity}] {what}: {_fmt(vals)} (iterations {its[0]}-{its[-1]})" if len(its) > 1 else \
        f"[{severity}] {what}: {_fmt(vals)} (iteration {its[0]})"
    return Alarm(rule, metric, severity, its, vals, msg)


def best_iteration(history: list[dict], metric: str = "eval/acc") -> int | None:
    """The iteration with the highest held-out ``metric`` (the earliest on ties: fewer self-training rounds)."""
    s = _series(history, metric)
    return max(s, key=lambda p: (p[1], -p[0]))[0] if s else None


def early_stop(history: list[dict], metric: str, patience: int | None, min_delta: float = 0.0) -> str:
    """Why to stop, if ``metric`` has not improved by ``min_delta`` on its earlier best for
    ``patience`` iterations; else ''."""
    s = _series(history, metric)
    if patience is None or len(s) <= patience:
        return ""
    before = max(v for _, v in s[:-patience])
    recent = max(v for _, v in s[-patience:])
    if recent < before + min_delta:
        return f"{metric} has not improved on {before:.4g} for {patience} iterations (patience)"
    return ""


def decide(cfg, history: list[dict]) -> dict:
    """The gate's metrics for the latest iteration of ``history``: its warnings,
    whether to stop and why (``gate/stop``, '' to go on), and the best iteration so far."""
    warnings = check(cfg, history)
    stop = ""
    if cfg.policy in ("stop", "rollback"):
        serious = [w for w in warnings if SEVERITY[w.severity] >= SEVERITY[cfg.stop_severity]]
        if serious:
            stop = f"{cfg.policy}: {serious[0].message}"
    stop = stop or early_stop(history, cfg.accuracy_metric, cfg.patience, cfg.min_delta)
    held = {}
    if stop and not trained(history):  # nothing trained yet: nothing to stop or roll back from
        held, stop = {"gate/held_back": f"{stop} (no stop before the first training)"}, ""
    return {"collapse/warnings": [asdict(w) for w in warnings], "gate/stop": stop,
            "gate/best_iteration": best_iteration(history, cfg.accuracy_metric), **held}


def write_result(root: str | Path, cfg, history: list[dict], reason: str) -> dict:
    """Point ``<run>/result.json`` at the run's result: the best held-out iteration under
    ``rollback``, else the last iteration."""
    from selftaught.store import write_json

    last = history[-1]
    k = best_iteration(history, cfg.accuracy_metric) if cfg.policy == "rollback" else last["iteration"]
    chosen = next(m for m in history if m["iteration"] == k)
    result = {"iteration": k, "model": chosen.get("model"), cfg.accuracy_metric: chosen.get(cfg.accuracy_metric),
              "policy": cfg.policy, "last_iteration": last["iteration"],
              "why": ("best held-out iteration (rollback)" if cfg.policy == "rollback" else "last iteration"),
              "stopped": reason or "all iterations done"}
    write_json(Path(root) / "result.json", result)
    return result
