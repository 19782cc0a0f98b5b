"""``selftaught compare RUN_A RUN_B ... [--out compare.html]``: ablations side by side.

The report's plots with one line per run, a table of start / final / best
held-out accuracy and cost (wall time of every timed stage, samples generated),
and the config settings the runs do not share (what the ablation changed),
printed in the terminal and written as HTML.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

from rich.table import Table

from selftaught.report import svg
from selftaught.report.html import accuracy_charts, collapse_charts, lines_chart, page, pass_k_charts
from selftaught.report.rundata import Run
from selftaught.store import write_text


def load_runs(run_dirs) -> list[Run]:
    """The runs, renamed by directory where two share a name."""
    runs = [Run(d) for d in run_dirs]
    clash = Counter(r.name for r in runs)
    for r in runs:
        if clash[r.name] > 1:
            r.name = r.root.name if Counter(x.root.name for x in runs)[r.root.name] == 1 else str(r.root)
    return runs


def summary(run: Run) -> dict:
    acc = run.series("eval/acc")
    best = max(acc, key=lambda p: p[1]) if acc else None
    band = dict((k, (lo, hi)) for k, lo, hi in run.acc_band())
    stop = next((m["gate/stop"] for m in run.history if m.get("gate/stop")), "")
    return {
        "run": run.name, "iterations": len(run.history) - 1 if run.history else 0,
        "start": acc[0][1] if acc else None, "final": acc[-1][1] if acc else None,
        "final_ci": band.get(acc[-1][0]) if acc else None,
        "best": best[1] if best else None, "best_iteration": best[0] if best else None,
        "wall_s": run.wall_time(), "samples": run.total("gen/samples"), "kept": run.total("select/kept"),
        "stopped": stop,
    }


COLUMNS = ("run", "iters", "start acc", "final acc", "final 95% CI", "best acc (iter)",
           "wall time", "samples", "kept", "stopped early")


def _cells(s: dict) -> list[str]:
    pct = lambda v: "" if v is None else f"{v:.1%}"
    ci = f"[{s['final_ci'][0]:.1%}, {s['final_ci'][1]:.1%}]" if s["final_ci"] else ""
    best = f"{pct(s['best'])} ({s['best_iteration']})" if s["best"] is not None else ""
    return [s["run"], str(s["iterations"]), pct(s["start"]), pct(s["final"]), ci, best,
            f"{s['wall_s'] / 60:.1f} min", f"{s['samples']:,.0f}", f"{s['kept']:,.0f}", s["stopped"]]


def _flat(tree, prefix: str = "") -> dict:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for k, v in tree.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _with_defaults(tree: dict) -> dict:
    """A saved config read with today's defaults, so a field added since one run
    started is not a difference; the text as saved when it no longer validates."""
    from selftaught import config

    try:
        return config.validate(tree).model_dump(mode="json")
    except Exception:
        return tree


IGNORED = ("name", "out_dir")  # differ between any two runs; not a setting of the experiment


def differing_settings(runs: list[Run]) -> list[tuple[str, list[str]]]:
    """(dotted key, each run's value) for every config setting the runs do not share."""
    flats = [_flat(_with_defaults(r.config)) for r in runs]
    keys = sorted({k for f in flats for k in f} - set(IGNORED))
    missing = "(unset)"
    return [(k, [str(f.get(k, missing)) for f in flats]) for k in keys if len({str(f.get(k, missing)) for f in flats}) > 1]


def settings_table(runs: list[Run]) -> Table:
    t = Table(title="settings that differ", header_style="bold")
    t.add_column("setting")
    for r in runs:
        t.add_column(r.name, overflow="fold")
    for key, values in differing_settings(runs):
        t.add_row(key, *values)
    return t


def table(runs: list[Run]) -> Table:
    t = Table(title="selftaught compare", header_style="bold")
    for c in COLUMNS:
        t.add_column(c, justify="left" if c in ("run", "stopped early") else "right")
    best_final = max((summary(r)["final"] or 0 for r in runs), default=0)
    for r in runs:
        s = summary(r)
        t.add_row(*_cells(s), style="bold green" if len(runs) > 1 and s["final"] == best_final else None)
    return t


def _html_table(runs: list[Run]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    rows = "".join("<tr>" + "".join(f'<td class="{"text" if i == 0 else ""}">{html.escape(str(v))}</td>'
                                    for i, v in enumerate(_cells(summary(r)))) + "</tr>" for r in runs)
    return f'<div class="scroll"><table><tr>{head}</tr>{rows}</table></div>'


def _html_settings(runs: list[Run]) -> str:
    diff = differing_settings(runs)
    if not diff:
        return "<p>The runs' configs are the same (apart from name and out_dir).</p>"
    head = "<th>setting</th>" + "".join(f"<th>{html.escape(r.name)}</th>" for r in runs)
    rows = "".join(f'<tr><td class="text">{html.escape(k)}</td>' + "".join(f"<td>{html.escape(v)}</td>" for v in vs)
                   + "</tr>" for k, vs in diff)
    return f'<div class="scroll"><table><tr>{head}</tr>{rows}</table></div>'


def render(runs: list[Run]) -> str:
    cost = [lines_chart(runs, [k], t) for k, t in (("gen/samples", "samples generated"), ("select/kept", "samples kept"),
                                                    ("select/kept_rationalized", "kept after rationalization (hint)"))]
    cost.append(svg.line_chart("wall time per iteration (all stages)",
                               [svg.Series(r.name, r.time_per_iteration()) for r in runs], y_label="seconds"))
    sources = "".join(f"<li>{html.escape(r.name)}: {html.escape(str(r.root))}</li>" for r in runs)
    body = [
        f'<header><h1>compare: {html.escape(", ".join(r.name for r in runs))}</h1><ul class="meta">{sources}</ul></header><main>',
        "<section><h2>Summary</h2>" + _html_table(runs) + "</section>",
        "<section><h2>Settings that differ</h2>" + _html_settings(runs) + "</section>",
        "<section><h2>Held-out accuracy</h2><p>Shaded: 95% Wilson interval.</p>" + accuracy_charts(runs) + "</section>",
        f'<section><h2>Samples and cost</h2><div class="charts">{"".join(c for c in cost if c)}</div></section>',
    ]
    for title, content in (("pass@k", pass_k_charts(runs)), ("Diversity and collapse", collapse_charts(runs))):
        if content:
            body.append(f"<section><h2>{title}</h2>{content}</section>")
    body.append("</main>")
    return page("selftaught compare", "\n".join(body))


def build_compare(run_dirs, out: str | Path) -> Path:
    path = Path(out)
    write_text(path, render(load_runs(run_dirs)))
    return path


def main(args, console) -> int:
    runs = load_runs(args.run_dirs)
    console.print(table(runs))
    if len(runs) > 1:
        console.print(settings_table(runs) if differing_settings(runs) else "settings: the runs' configs are the same")
    path = Path(args.out)
    write_text(path, render(runs))
    console.print(f"written: {path}")
    return 0
