"""The per-iteration table printed during a run and by ``selftaught show``."""

from __future__ import annotations

from rich.table import Table


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
    for col in ("samples", "kept", "rational.", "bad steps", "train s", "total s"):
        t.add_column(col, justify="right")
    t.add_column("gate")
    for m in history:
        total = sum(v for k, v in m.items() if k.startswith("time/"))
        t.add_row(
            str(m["iteration"]), f"{m.get('eval/acc', 0):.1%}",
            *[f"{m[f'eval/acc/{g}']:.0%}" if f"eval/acc/{g}" in m else "" for g in groups],
            _num(m.get("gen/samples")), _num(m.get("select/kept")), _num(m.get("select/kept_rationalized")),
            f"{m['select/kept_wrong_working_frac']:.1%}" if "select/kept_wrong_working_frac" in m else "",
            _num(m.get("time/train_s")), f"{total:.0f}", m.get("gate/stop") or "",
        )
    return t


def _num(x) -> str:
    return "" if x is None else f"{x:,.0f}" if isinstance(x, (int, float)) else str(x)
