"""The per-iteration table printed during a run and by ``selftaught show``."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from selftaught.monitor.detector import SEVERITY


def _groups(history: list[dict]) -> list[str]:
    keys = {k.split("/", 2)[2] for m in history for k in m if k.startswith("eval/acc/")}
    return sorted(keys, key=lambda g: (0, int(g)) if g.isdigit() else (1, g))


def table(history: list[dict], title: str = "") -> Table:
    """Held-out accuracy (overall and per group), samples kept, wall time, gate."""
    groups = _groups(history)
    t = Table(title=title, header_style="bold")
    t.add_column("iter", justify="right")
    t.add_column("eval/acc", justify="right", style="bold green")
    for g in groups:
        t.add_column(g, justify="right")
    for col in ("samples", "kept", "rational.", "bad steps", "natural", "d-3", "rep", "ppl", "warn", "train s", "total s"):
        t.add_column(col, justify="right")
    t.add_column("gate")
    for m in history:
        total = sum(v for k, v in m.items() if k.startswith("time/"))
        t.add_row(
            str(m["iteration"]), f"{m.get('eval/acc', 0):.1%}",
            *[f"{m[f'eval/acc/{g}']:.0%}" if f"eval/acc/{g}" in m else "" for g in groups],
            _num(m.get("gen/samples")), _num(m.get("select/kept")), _num(m.get("select/kept_rationalized")),
            f"{m['select/kept_wrong_working_frac']:.1%}" if "select/kept_wrong_working_frac" in m else "",
            _num(m.get("mix/natural_rows")), *_collapse(m),
            _num(m.get("time/train_s")), f"{total:.0f}", escape(m.get("gate/stop") or ""),
        )
    return t


def _collapse(m: dict) -> list[str]:
    """distinct-3 and repetition of the samples (held-out outputs at iteration 0),
    natural-data perplexity, and the warnings as count + worst severity."""
    src = "gen" if "collapse/gen/distinct_3" in m else "eval"
    d3, rep, ppl = (m.get(f"collapse/{src}/distinct_3"), m.get(f"collapse/{src}/repetition"), m.get("collapse/natural_ppl"))
    warns = m.get("collapse/warnings") or []
    worst = max((w["severity"] for w in warns), key=lambda s: SEVERITY.get(s, -1), default="")
    return ["" if d3 is None else f"{d3:.3f}", "" if rep is None else f"{rep:.2f}",
            "" if ppl is None else f"{ppl:.2f}", f"{len(warns)} {worst}" if warns else ""]


def verdict(history: list[dict], root=None) -> list[str]:
    """What a reader wants under the table: the best iteration, the warnings, why the run stopped, its result."""
    from pathlib import Path

    from selftaught.store import read_json

    if not history:
        return []
    last = history[-1]
    best = last.get("gate/best_iteration", max(history, key=lambda m: m.get("eval/acc", 0.0))["iteration"])
    acc = next((m.get("eval/acc") for m in history if m["iteration"] == best), None)
    lines = [f"best held-out iteration: {best}" + (f" (eval/acc {acc:.1%})" if acc is not None else "")]
    for m in history:
        lines += [f"iteration {m['iteration']}: {w['message']}" for w in m.get("collapse/warnings") or []]
    stops = [m for m in history if m.get("gate/stop")]
    if stops:
        lines.append(f"stopped after iteration {stops[0]['iteration']}: {stops[0]['gate/stop']}")
    result = Path(root) / "result.json" if root else None
    if result and result.is_file():
        r = read_json(result)
        lines.append(f"result: iteration {r['iteration']} ({r['why']}; {r['stopped']}): {r['model']}")
    return lines


def _num(x) -> str:
    return "" if x is None else f"{x:,.0f}" if isinstance(x, (int, float)) else str(x)
