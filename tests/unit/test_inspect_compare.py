"""``selftaught compare`` and ``selftaught inspect`` on hand-made run directories."""

import re

from report_runs import HOSTILE, make_run
from rich.console import Console

from selftaught import cli
from selftaught.report import compare, inspect


def _console() -> Console:
    return Console(record=True, width=200, color_system=None)


def test_compare_summary_numbers(tmp_path):
    a = make_run(tmp_path / "a", name="hint-on", accs=(0.3, 0.6, 0.5))
    b = make_run(tmp_path / "b", name="hint-off", accs=(0.3, 0.4, 0.55), samples=80)
    sa, sb = (compare.summary(r) for r in compare.load_runs([a, b]))
    assert (sa["final"], sa["best"], sa["best_iteration"]) == (0.5, 0.6, 1)
    assert (sb["final"], sb["best"], sb["best_iteration"]) == (0.55, 0.55, 2)
    # cost: every timed stage of every iteration; samples generated over the run
    assert sa["wall_s"] == 2.0 + 2 * (2.0 + 10.0 + 30.0 + 0.5) and sa["samples"] == 200 and sb["samples"] == 160
    assert sa["final_ci"][0] < 0.5 < sa["final_ci"][1]


def test_compare_writes_overlaid_plots_and_prints_table(tmp_path):
    a = make_run(tmp_path / "a", name="hint-on")
    b = make_run(tmp_path / "b", name="hint-off")
    out = tmp_path / "cmp.html"
    con = _console()
    assert compare.main(type("A", (), {"run_dirs": [a, b], "out": out})(), con) == 0
    text = con.export_text()
    assert "hint-on" in text and "hint-off" in text and "70.0%" in text
    page = out.read_text()
    overall = page.split('aria-label="eval/acc (all held-out problems)"')[1].split("</figure>")[0]
    assert overall.count('<path class="line"') == 2 and overall.count('<path class="band"') == 2
    assert re.findall(r'class="key" data-series="([^"]+)"', overall) == ["hint-on", "hint-off"]
    for title in ("eval/acc/1", "eval/acc/2", "samples generated", "wall time per iteration (all stages)"):
        assert f'aria-label="{title}"' in page, title


def test_compare_renames_runs_with_the_same_name(tmp_path):
    runs = compare.load_runs([make_run(tmp_path / "x", name="same"), make_run(tmp_path / "y", name="same")])
    assert [r.name for r in runs] == ["x", "y"]


def test_inspect_problem_history(tmp_path):
    run = make_run(tmp_path / "r")
    rows = inspect.problem_history(inspect.Run(run), "p2")
    assert [(r["iteration"], r["phase"]) for r in rows] == [(1, "sample"), (1, "rationalize"), (2, "sample"), (2, "rationalize")]
    kept = inspect.problem_history(inspect.Run(run), "p2", kept=True)
    assert [r["phase"] for r in kept] == ["rationalize", "rationalize"]
    held_out = inspect.problem_history(inspect.Run(run), "e1-0")
    assert [r["iteration"] for r in held_out] == [0, 0, 1, 1, 2, 2]  # greedy and pass@k rows of every iteration


def test_inspect_prints_model_text_verbatim(tmp_path):
    run = make_run(tmp_path / "r")
    con = _console()
    args = type("A", (), dict(run_dir=run, problem="p2", iteration=1, kept=False, rejected=False, limit=None, full=False))()
    assert inspect.main(args, con) == 0
    text = con.export_text()
    assert HOSTILE in text and "[bold red]fake[/]" in text  # printed as text, not interpreted as markup
    assert "55+55|110" in text and "hint given" not in text  # the hint is shown once, where the prompt has it
    assert "rationalized with hint" in text and "rejected: no answer line" in text


def test_inspect_iteration_sample_and_filters(tmp_path):
    run = inspect.Run(make_run(tmp_path / "r"))
    k, rows, matched = inspect.iteration_rows(run, None, kept=False, limit=1)
    assert k == 2 and matched == 2 and len(rows) == 1 and not rows[0]["kept"]
    k, rows, matched = inspect.iteration_rows(run, 0, kept=None, limit=100)
    assert k == 0 and matched == 22 and all(r["phase"].startswith("eval") for r in rows)  # no samples: held-out rows


def test_cli_commands(tmp_path, capsys):
    run = make_run(tmp_path / "r")
    assert cli.main(["report", str(run)]) == 0 and (run / "report.html").is_file()
    assert cli.main(["report", str(run), "--out", str(tmp_path / "elsewhere.html")]) == 0
    assert (tmp_path / "elsewhere.html").is_file()
    assert cli.main(["compare", str(run), str(make_run(tmp_path / "s", name="other")), "--out", str(tmp_path / "c.html")]) == 0
    assert (tmp_path / "c.html").is_file()
    assert cli.main(["inspect", str(run), "--problem", "p1", "--kept"]) == 0
    assert cli.main(["inspect", str(run), "--problem", "nope"]) == 2
    assert cli.main(["inspect", str(run), "--iteration", "9"]) == 2
    assert cli.main(["report", str(tmp_path)]) == 2  # not a run: a clear error, no traceback
    assert "not a selftaught run" in capsys.readouterr().err
