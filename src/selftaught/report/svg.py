"""Plots as inline SVG, drawn in Python so a report opens offline with no plotting
library and no CDN. Two shapes cover every plot of a run: lines over iterations
(with an optional confidence band per line and marks for warnings) and bars per
iteration (side by side or stacked).

Every string that reaches the SVG goes through ``html.escape``: series names and
titles can come from task groups or metric names, and a report must never run
what a model or a recipe wrote.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

# Colour-blind-friendly palette (Okabe-Ito, then Tableau) -- enough for 8 groups or runs.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8c564b", "#7f7f7f",
           "#bcbd22", "#17becf", "#9467bd", "#F0E442")
W, H = 600, 290
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 30, 42


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]  # (iteration, value)
    band: list[tuple[float, float, float]] = field(default_factory=list)  # (iteration, low, high)
    color: str = ""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    return next(m * mag for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * mag >= v)


def fmt(v: float, percent: bool = False) -> str:
    if percent:
        return f"{v:.0%}" if abs(v * 100 - round(v * 100)) < 1e-9 else f"{v:.1%}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if 0 < abs(v) < 0.01:  # 0.00008, not 8e-05
        return f"{v:.6f}".rstrip("0")
    return f"{v:.3g}"


class _Frame:
    """Axes of one plot: maps (iteration, value) to pixels and draws the grid."""

    def __init__(self, xs: list[float], y_lo: float, y_hi: float, pad: float = 0.0) -> None:
        self.x0, self.x1 = (min(xs) - pad, max(xs) + pad) if xs else (0, 1)
        if self.x0 == self.x1:
            self.x0, self.x1 = self.x0 - 0.5, self.x1 + 0.5
        self.y0, self.y1 = y_lo, (y_hi if y_hi > y_lo else y_lo + 1)

    def px(self, x: float) -> float:
        return round(LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT), 1)

    def py(self, y: float) -> float:
        return round(H - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM), 1)

    def axes(self, title: str, x_ticks: list[float], y_label: str, percent: bool) -> list[str]:
        out = [f'<text class="title" x="{LEFT}" y="18">{_e(title)}</text>']
        for i in range(6):
            v = self.y0 + (self.y1 - self.y0) * i / 5
            y = self.py(v)
            out.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y}" y2="{y}"/>'
                       f'<text class="tick" x="{LEFT - 6}" y="{y + 4}" text-anchor="end">{_e(fmt(v, percent))}</text>')
        for x in x_ticks:
            out.append(f'<text class="tick" x="{self.px(x)}" y="{H - BOTTOM + 16}" text-anchor="middle">{_e(fmt(x))}</text>')
        out.append(f'<line class="axis" x1="{LEFT}" x2="{W - RIGHT}" y1="{H - BOTTOM}" y2="{H - BOTTOM}"/>')
        out.append(f'<text class="label" x="{(LEFT + W - RIGHT) / 2}" y="{H - 6}" text-anchor="middle">iteration</text>')
        if y_label:
            out.append(f'<text class="label" transform="translate(14 {(TOP + H - BOTTOM) / 2}) rotate(-90)" '
                       f'text-anchor="middle">{_e(y_label)}</text>')
        return out


def _x_ticks(xs: list[float]) -> list[float]:
    xs = sorted(set(xs))
    step = max(1, math.ceil(len(xs) / 12))
    return xs[::step]


def _legend(names: list[str], colors: list[str]) -> str:
    keys = "".join(f'<button type="button" class="key" data-series="{_e(n)}"><i style="background:{c}"></i>{_e(n)}</button>'
                   for n, c in zip(names, colors))
    return f'<div class="legend">{keys}</div>'


def line_chart(title: str, series: list[Series], *, y_label: str = "", percent: bool = False,
               marks: list[tuple[float, str]] = (), note: str = "") -> str:
    """Lines over iterations; ``band`` draws a shaded interval, ``marks`` vertical warning lines."""
    series = [s for s in series if s.points]
    for i, s in enumerate(series):
        s.color = s.color or PALETTE[i % len(PALETTE)]
    xs = [x for s in series for x, _ in s.points] + [x for x, _ in marks]
    if percent:
        y_lo, y_hi = 0.0, 1.0
    else:
        vals = [y for s in series for _, y in s.points] + [v for s in series for _, lo, hi in s.band for v in (lo, hi)]
        y_lo = min(0.0, min(vals, default=0.0))
        y_hi = _nice_max(max(vals, default=1.0) * 1.05)  # headroom: a flat line is not drawn on the frame
    f = _Frame(xs, y_lo, y_hi)
    parts = f.axes(title, _x_ticks(xs), y_label, percent)
    for x, text in marks:
        parts.append(f'<g class="mark"><title>{_e(text)}</title><line x1="{f.px(x)}" x2="{f.px(x)}" y1="{TOP}" '
                     f'y2="{H - BOTTOM}"/><text x="{f.px(x) + 3}" y="{TOP + 10}">&#9888;</text></g>')
    for s in series:
        parts.append(_draw_series(f, s, percent))
    svg = (f'<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
           f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>')
    legend = _legend([s.name for s in series], [s.color for s in series]) if len(series) > 1 else ""
    caption = f"<figcaption>{_e(note)}</figcaption>" if note else ""
    return f'<figure class="chart">{svg}{legend}{caption}</figure>'


def _draw_series(f: _Frame, s: Series, percent: bool) -> str:
    name = _e(s.name)
    out = [f'<g class="series" data-series="{name}">']
    band = sorted(s.band)
    if len(band) > 1:
        upper = " L".join(f"{f.px(x)} {f.py(hi)}" for x, _, hi in band)
        lower = " L".join(f"{f.px(x)} {f.py(lo)}" for x, lo, _ in reversed(band))
        out.append(f'<path class="band" d="M{upper} L{lower} Z" fill="{s.color}"/>')
    elif band:
        x, lo, hi = band[0]
        out.append(f'<line class="whisker" x1="{f.px(x)}" x2="{f.px(x)}" y1="{f.py(lo)}" y2="{f.py(hi)}" stroke="{s.color}"/>')
    pts = sorted(s.points)
    d = " L".join(f"{f.px(x)} {f.py(y)}" for x, y in pts)
    out.append(f'<path class="line" d="M{d}" stroke="{s.color}"/>')
    ci = {x: (lo, hi) for x, lo, hi in band}
    for x, y in pts:
        extra = f" [{fmt(ci[x][0], percent)}, {fmt(ci[x][1], percent)}]" if x in ci else ""
        out.append(f'<circle cx="{f.px(x)}" cy="{f.py(y)}" r="3" fill="{s.color}">'
                   f'<title>{name}, iteration {fmt(x)}: {_e(fmt(y, percent))}{_e(extra)}</title></circle>')
    out.append("</g>")
    return "".join(out)


def bar_chart(title: str, xs: list[float], series: list[tuple[str, list[float | None]]], *,
              stacked: bool = False, y_label: str = "", note: str = "") -> str:
    """Bars per iteration: one bar per series side by side, or stacked."""
    series = [(n, v) for n, v in series if any(x is not None for x in v)]
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    if stacked:
        top = max((sum(v[i] or 0 for _, v in series) for i in range(len(xs))), default=1.0)
    else:
        top = max((x or 0 for _, v in series for x in v), default=1.0)
    f = _Frame(xs, 0.0, _nice_max(top), pad=0.5)  # half a slot either side, so edge bars fit
    parts = f.axes(title, _x_ticks(xs), y_label, False)
    slot = f.px(1) - f.px(0)
    width = max(2.0, slot * 0.7 / (1 if stacked else max(1, len(series))))
    base = [0.0] * len(xs)
    for j, ((name, vals), c) in enumerate(zip(series, colors)):
        parts.append(f'<g class="series" data-series="{_e(name)}">')
        for i, (x, v) in enumerate(zip(xs, vals)):
            if v is None:
                continue
            left = f.px(x) - (width / 2 if stacked else slot * 0.35 - j * width)
            y_top, y_bottom = f.py(base[i] + v), f.py(base[i])
            parts.append(f'<rect class="bar" x="{left:.1f}" y="{y_top}" width="{width:.1f}" height="{max(0.0, y_bottom - y_top):.1f}" '
                         f'fill="{c}"><title>{_e(name)}, iteration {fmt(x)}: {_e(fmt(v))}</title></rect>')
            if stacked:
                base[i] += v
        parts.append("</g>")
    svg = (f'<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
           f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>')
    caption = f"<figcaption>{_e(note)}</figcaption>" if note else ""
    return f'<figure class="chart">{svg}{_legend([n for n, _ in series], colors)}{caption}</figure>'
