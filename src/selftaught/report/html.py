"""``selftaught report RUN_DIR``: one self-contained ``report.html`` per run.

Rebuilt from the run's files alone (metrics.jsonl, the record Parquet files,
config.yaml) at the end of every iteration, so it is always a pure function of
what is on disk: no timestamps, nothing fetched, plots as inline SVG. Everything
a model wrote is hostile input and is HTML-escaped before it reaches the page.
"""

from __future__ import annotations

import html
import random
import re
from pathlib import Path

from selftaught.report import svg
from selftaught.report.rundata import Run, is_number
from selftaught.store import write_text

TEMPLATE = Path(__file__).with_name("template.html")
MAX_TEXT = 700  # characters of a prompt or completion shown in an example trace
MAX_EXAMPLE_ITERATIONS = 12  # example traces of the last this many iterations
STAGE_ORDER = ("generate", "verify", "select", "train", "evaluate")


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def page(title: str, body: str) -> str:
    return TEMPLATE.read_text().replace("{{title}}", _e(title)).replace("{{body}}", body)


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``RUN_DIR/report.html``), atomically."""
    run = Run(run_dir)
    path = Path(out) if out else run.root / "report.html"
    write_text(path, render(run))
    return path


def render(run: Run) -> str:
    sections = [
        _header(run),
        '<main>',
        _section("Held-out accuracy", accuracy_charts([run]),
                 "Greedy pass@1 on the held-out split; shaded: 95% Wilson interval (n = held-out problems per group)."),
        _section("Samples and wall time", samples_chart(run) + time_chart(run)),
        _section("pass@k", pass_k_charts([run]), empty="no pass@k in this run (set eval.pass_k > 0)"),
        _section("Diversity and collapse", collapse_charts([run]) + warnings_table(run),
                 empty="no collapse/ metrics in this run"),
        _section("Every metric", metrics_table(run)),
        _section("Example traces", examples(run), empty="no samples yet"),
        _section("Resolved config", f"<pre>{_e(run.config_text)}</pre>"),
        "</main>",
    ]
    return page(f"selftaught report: {run.name}", "\n".join(sections))


def _section(title: str, content: str, note: str = "", empty: str = "") -> str:
    if content.startswith("<figure"):
        content = f'<div class="charts">{content}</div>'
    if not content.strip():
        if not empty:
            return ""
        content = f'<p class="none">{_e(empty)}</p>'
    note = f"<p>{_e(note)}</p>" if note else ""
    return f"<section><h2>{_e(title)}</h2>{note}{content}</section>"


def _header(run: Run) -> str:
    c, h = run.config, run.history

    def kind(key: str) -> str:
        v = c.get(key, "?")
        return _e(v.get("type", "?") if isinstance(v, dict) else v)

    meta = (f"{kind('method')} on {kind('task')} &middot; model {_e(c.get('model', '?'))} &middot; "
            f"{max((m['iteration'] for m in h), default=0)} of {_e(c.get('iterations', '?'))} iterations done &middot; {_e(run.root)}")
    cards = []
    if h:
        acc = run.series("eval/acc")
        if acc:
            best = max(acc, key=lambda p: p[1])
            cards += [("start (iteration 0)", f"{acc[0][1]:.1%}"), (f"latest (iteration {acc[-1][0]})", f"{acc[-1][1]:.1%}"),
                      (f"best (iteration {best[0]})", f"{best[1]:.1%}")]
        cards += [("samples generated", f"{run.total('gen/samples'):,.0f}"), ("wall time", f"{run.wall_time() / 60:.1f} min")]
        stop = next((m["gate/stop"] for m in h if m.get("gate/stop")), "")
        if stop:
            cards.append(("stopped", _e(stop)))
    cards_html = "".join(f'<div class="card"><b>{v}</b><span>{_e(k)}</span></div>' for k, v in cards)
    return (f'<header><h1>{_e(run.name)}</h1><div class="meta">{meta}</div>'
            f'<div class="cards">{cards_html}</div></header>')


def accuracy_charts(runs: list[Run]) -> str:
    """Overall accuracy, then per group: one chart with a line per group (one run),
    or one chart per group with a line per run (comparing runs)."""
    overall = [svg.Series(r.name if len(runs) > 1 else "eval/acc", r.series("eval/acc"), r.acc_band()) for r in runs]
    charts = [svg.line_chart("eval/acc (all held-out problems)", overall, y_label="accuracy", percent=True,
                             marks=_marks(runs, ["eval/acc"], generic=False))]
    groups = list(dict.fromkeys(g for r in runs for g in r.groups()))
    if len(runs) == 1:
        r = runs[0]
        lines = [svg.Series(g, r.series(f"eval/acc/{g}"), r.acc_band(g)) for g in groups]
        if lines:
            charts.append(svg.line_chart("eval/acc per group", lines, y_label="accuracy", percent=True,
                                         note="click a legend entry to hide or show its line"))
    else:
        for g in groups:
            lines = [svg.Series(r.name, r.series(f"eval/acc/{g}"), r.acc_band(g)) for r in runs]
            charts.append(svg.line_chart(f"eval/acc/{g}", lines, y_label="accuracy", percent=True))
    return f'<div class="charts">{"".join(charts)}</div>'


def samples_chart(run: Run) -> str:
    h = [m for m in run.history if "gen/samples" in m]
    if not h:
        return ""
    xs = [m["iteration"] for m in h]
    bars = [(label, [m.get(key) if is_number(m.get(key)) else None for m in h])
            for key, label in (("gen/samples", "generated"), ("select/kept", "kept"),
                               ("select/kept_rationalized", "kept after rationalization (hint)"))]
    return svg.bar_chart("samples generated / kept per iteration", xs, bars, y_label="samples")


def lines_chart(runs: list[Run], keys: list[str], title: str, percent: bool = False, marks=()) -> str:
    def name(r: Run, k: str) -> str:  # the metric for one run; the run (and metric) when comparing
        return k if len(runs) == 1 else r.name if len(keys) == 1 else f"{r.name} {k}"

    series = [svg.Series(name(r, k), r.series(k)) for r in runs for k in keys]
    if not any(s.points for s in series):
        return ""
    return svg.line_chart(title, series, percent=percent, marks=marks)


def pass_k_charts(runs: list[Run]) -> str:
    keys = list(dict.fromkeys(k for r in runs for k in r.keys("eval/pass@")))
    gaps = [k for k in keys if k.endswith("_gap")]
    rest = [k for k in keys if k not in gaps]
    charts = [lines_chart(runs, rest, "pass@k and sampled pass@1", percent=True),
              lines_chart(runs, gaps, "pass@k - pass@1 gap (room left for self-improvement)")]
    return f'<div class="charts">{"".join(c for c in charts if c)}</div>' if any(charts) else ""


def warnings_of(m: dict) -> list[tuple[str, str, str]]:
    """Collapse-detector warnings of one iteration as (severity, metric, message), whatever
    shape the detector wrote them in (list of dicts, strings, a count, a flag)."""
    out = []
    for key, v in m.items():
        if not key.startswith("collapse/") or "warn" not in key:
            continue
        items = v if isinstance(v, (list, tuple)) else [v]
        for w in items:
            if isinstance(w, dict):
                out.append((str(w.get("severity", "")), str(w.get("metric", "")), str(w.get("message") or w)))
            elif isinstance(w, str) and w.strip():
                out.append(("", "", w))
            elif w is True or (is_number(w) and w > 0):
                out.append(("", "", f"{key} = {w}"))
    return out


def _marks(runs: list[Run], metrics: list[str], generic: bool = True) -> list[tuple[int, str]]:
    """Warning marks for a chart of ``metrics``: warnings about them (and, if ``generic``,
    those about no metric in particular)."""
    if len(runs) != 1:
        return []
    return [(m["iteration"], f"[{sev}] {msg}" if sev and not msg.startswith("[") else msg)
            for m in runs[0].history for sev, metric, msg in warnings_of(m) if metric in metrics or (generic and not metric)]


def collapse_charts(runs: list[Run]) -> str:
    """One chart per collapse metric, its gen/ and eval/ variants together; warnings marked."""
    families: dict[str, list[str]] = {}
    for k in dict.fromkeys(k for r in runs for k in r.keys("collapse/")):
        if "warn" not in k:
            families.setdefault(re.sub(r"^collapse/(gen|eval)/", "collapse/", k), []).append(k)
    charts = [lines_chart(runs, keys, family, marks=_marks(runs, keys)) for family, keys in families.items()]
    charts = [c for c in charts if c]
    return f'<div class="charts">{"".join(charts)}</div>' if charts else ""


def warnings_table(run: Run) -> str:
    rows = [(m["iteration"], w) for m in run.history for w in warnings_of(m)]
    if not rows:
        return "<p>No collapse warnings.</p>" if run.keys("collapse/") else ""
    body = "".join(f'<tr><td>{k}</td><td class="text">{_e(sev)}</td><td class="text">{_e(metric)}</td>'
                   f'<td class="text warn">&#9888; {_e(msg)}</td></tr>' for k, (sev, metric, msg) in rows)
    return ('<h3 class="warn">Collapse warnings</h3><table><tr><th>iteration</th><th class="text">severity</th>'
            f'<th class="text">metric</th><th class="text">warning</th></tr>{body}</table>')


def _stages(run: Run) -> list[str]:
    found = [k[len("time/"):-2] for k in run.keys("time/") if k.endswith("_s")]
    return sorted(found, key=lambda s: (STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER), s))


def time_chart(run: Run) -> str:
    stages = _stages(run)
    if not stages:
        return ""
    xs = [m["iteration"] for m in run.history]
    bars = [(s, [m.get(f"time/{s}_s") if is_number(m.get(f"time/{s}_s")) else None for m in run.history]) for s in stages]
    return svg.bar_chart("wall time per stage", xs, bars, stacked=True, y_label="seconds")


def metrics_table(run: Run) -> str:
    keys = sorted({k for m in run.history for k in m} - {"iteration", "model"})
    if not keys:
        return ""
    head = "".join(f"<th>{m['iteration']}</th>" for m in run.history)
    rows = []
    for k in keys:
        cells = "".join(f"<td>{_e(_cell(m.get(k)))}</td>" for m in run.history)
        rows.append(f'<tr><th class="text">{_e(k)}</th>{cells}</tr>')
    return (f'<details><summary>{len(keys)} metrics by iteration</summary><div class="scroll"><table>'
            f'<tr><th class="text">metric \\ iteration</th>{head}</tr>{"".join(rows)}</table></div></details>')


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def pick_examples(rows: list[dict], k: int, n_kept: int = 3, n_rejected: int = 3) -> list[dict]:
    """A few kept traces (one rationalized if any) and rejected ones with different reasons."""
    rng = random.Random(f"report/{k}")
    kept = [r for r in rows if r.get("kept")]
    rat = [r for r in kept if r.get("phase") == "rationalize"]
    plain = [r for r in kept if r.get("phase") != "rationalize"]
    chosen = rng.sample(rat, min(1, len(rat)))
    chosen += rng.sample(plain, min(n_kept - len(chosen), len(plain)))
    rejected = [r for r in rows if not r.get("kept")]
    rng.shuffle(rejected)
    by_reason: dict[str, dict] = {}
    for r in rejected:  # one per reason first, so the page shows the different ways traces fail
        by_reason.setdefault(str(r.get("select_reason") or r.get("verify_reason")), r)
    picks = list(by_reason.values())[:n_rejected]
    picks += [r for r in rejected if r not in picks][: n_rejected - len(picks)]
    return chosen + picks


def _clip(text) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"\u2026 [{len(text) - MAX_TEXT} more characters]"


def _prompt_html(row: dict) -> str:
    """The prompt, escaped, with the hint (if any) marked where it appears."""
    prompt, hint = _e(_clip(row.get("prompt"))), row.get("hint")
    if hint:
        before, sep, after = prompt.rpartition(_e(hint))
        if sep:
            return f'{before}<mark class="hint" title="hint">{sep}</mark>{after}'
    return prompt


def trace_html(row: dict) -> str:
    kept = bool(row.get("kept"))
    status = "kept" if kept else "rejected"
    badges = [f'<span class="badge {status}">{status}</span>', f'<span class="badge">{_e(row.get("phase", ""))}</span>']
    if row.get("hint"):
        badges.append(f'<span class="badge hint">hint given: {_e(_clip(row["hint"]))}</span>')
    verdict = "correct" if row.get("correct") else "wrong"
    steps = "" if row.get("steps_ok") is None else f" &middot; steps {'ok' if row['steps_ok'] else 'wrong'}"
    return (f'<div class="trace {status}"><div class="head">problem <b>{_e(row.get("problem_id"))}</b> '
            f'&middot; group {_e(row.get("group", ""))}</div>{"".join(badges)}'
            f'<div>prompt:</div><pre>{_prompt_html(row)}</pre><div>completion:</div><pre>{_e(_clip(row.get("completion")))}</pre>'
            f'<div class="why">answer <b>{_e(row.get("answer"))}</b> &middot; {verdict}{steps} &middot; verifier: '
            f'{_e(row.get("verify_reason", ""))}<br>selection: {_e(row.get("select_reason", ""))}</div></div>')


def examples(run: Run) -> str:
    ks = [m["iteration"] for m in run.history if run.path(m["iteration"], "samples").is_file()]
    ks = ks[-MAX_EXAMPLE_ITERATIONS:]  # bounds the rebuild time of long runs
    out = []
    for i, k in enumerate(ks):
        picks = pick_examples(run.rows(k, "samples"), k)
        if not picks:
            continue
        is_open = " open" if i == len(ks) - 1 else ""
        out.append(f'<details{is_open}><summary>iteration {k}: {sum(bool(r.get("kept")) for r in picks)} kept, '
                   f'{sum(not r.get("kept") for r in picks)} rejected</summary>'
                   f'<div class="traces">{"".join(trace_html(r) for r in picks)}</div></details>')
    return "".join(out)
