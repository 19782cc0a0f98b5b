"""Collapse warnings and the gate: rules over the run's metric history (one dict
per iteration, as in ``metrics.jsonl``), and what the loop does about them.

Default rules are the seeds' (all thresholds in ``GateConfig``, config.py):

| rule | fires when | severity |
|---|---|---|
| diversity_falling | a diversity metric fell ``falling_for`` (3) iterations in a row | high (info if held-out accuracy rose over those iterations) |
| accuracy_falling | held-out accuracy fell ``falling_for`` iterations in a row | critical |
| repetition | the repetition rate (pairwise 3-gram Jaccard) exceeds ``repetition_max`` (0.3) | high |

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
        if tail:
            way = "rose" if rising else "fell"
            what, severity = f"{metric} {way} {cfg.falling_for} iterations in a row", "high"
            first, last = acc.get(tail[0][0]), acc.get(tail[-1][0])
            if first is not None and last is not None and last > first:  # sharper and better: not collapse
                severity = cfg.diversity_when_improving
                what += f" while {cfg.accuracy_metric} rose {first:.4g} -> {last:.4g}"
            out.append(_warn("diversity_falling", metric, severity, tail, what))
    tail = worsening(history, cfg.accuracy_metric, cfg.falling_for, cfg.falling_tolerance)
    if tail:
        out.append(_warn("accuracy_falling", cfg.accuracy_metric, "critical", tail,
                         f"{cfg.accuracy_metric} fell {cfg.falling_for} iterations in a row"))
    for metric in cfg.repetition_metrics:
        s = _series(history[-1:], metric)
        if s and s[-1][1] > cfg.repetition_max:
            out.append(_warn("repetition", metric, "high", s, f"{metric} above {cfg.repetition_max}"))
    from selftaught.monitor import overopt  # proxy up, gold down: reward over-optimization (its own module)

    out += overopt.check(cfg, history)
    return out


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
    return {"collapse/warnings": [asdict(w) for w in warnings], "gate/stop": stop,
            "gate/best_iteration": best_iteration(history, cfg.accuracy_metric)}


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
