"""report.html from hand-made run directories: plots, escaping, missing metrics, the loop hook."""

import re
from types import SimpleNamespace

import pytest
from report_runs import HOSTILE, make_run

from selftaught.evaluate import wilson
from selftaught.report import after_each_iteration
from selftaught.report.html import build_report, pick_examples, warnings_of
from selftaught.report.rundata import Run
from selftaught.store import RunStore

COLLAPSE = {
    1: {"collapse/gen/distinct_3": 0.8, "collapse/eval/distinct_3": 0.7, "collapse/unit": "chars", "collapse/warnings": []},
    2: {"collapse/gen/distinct_3": 0.4, "collapse/eval/distinct_3": 0.3,
        "collapse/warnings": [{"rule": "diversity_falling", "metric": "collapse/gen/distinct_3", "severity": "high",
                               "iterations": [1, 2], "values": [0.8, 0.4], "message": "[high] distinct_3 fell <fast>"}]},
}


def _lines(page: str) -> list[str]:
    """The ``d`` of every plotted line that joins at least two points."""
    return [d for d in re.findall(r'<path class="line" d="([^"]+)"', page) if " L" in d]


def test_report_has_every_plot(tmp_path):
    run = make_run(tmp_path / "r", extra=COLLAPSE)
    page = build_report(run).read_text()
    assert (run / "report.html").is_file()
    titles = re.findall(r'<svg class="plot"[^>]*aria-label="([^"]+)"', page)
    for t in ("eval/acc (all held-out problems)", "eval/acc per group", "samples generated / kept per iteration",
              "pass@k and sampled pass@1", "wall time per stage", "collapse/distinct_3"):
        assert t in titles, t
    # overall + 2 groups (3 iterations each), then pass@4, pass@1, gap, gen/eval distinct_3 (iterations 1-2)
    assert [d.count(" L") for d in _lines(page)] == [2, 2, 2, 1, 1, 1, 1, 1]
    assert page.count('<path class="band"') == 3  # overall and both groups have a confidence band
    assert "<pre>name: toy" in page  # the resolved config


def test_bars_count_each_value_once(tmp_path):
    page = build_report(make_run(tmp_path / "r")).read_text()
    samples = page.split('aria-label="samples generated / kept per iteration"')[1].split("</svg>")[0]
    times = page.split('aria-label="wall time per stage"')[1].split("</svg>")[0]
    assert samples.count("<rect") == 2 * 3  # 2 iterations x generated/kept/rationalized
    assert times.count("<rect") == 1 + 2 * 4  # iteration 0: evaluate; 1 and 2: generate, verify, train, evaluate


def test_model_text_is_escaped(tmp_path):
    page = build_report(make_run(tmp_path / "r")).read_text()
    assert HOSTILE not in page and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert page.count("<script") == 1  # ours, the legend toggle
    assert "<img" not in page and "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'Content-Security-Policy" content="default-src \'none\'' in page  # nothing can be fetched


def test_hints_are_shown_as_such(tmp_path):
    page = build_report(make_run(tmp_path / "r")).read_text()
    assert '55+55|<mark class="hint" title="hint">110</mark>' in page
    assert "hint given: 110" in page


def test_missing_optional_metrics(tmp_path):
    page = build_report(make_run(tmp_path / "r", minimal=True)).read_text()
    assert "eval/acc (all held-out problems)" in page
    assert "no pass@k in this run" in page and "no collapse/ metrics in this run" in page
    assert "samples generated / kept" not in page and "no samples yet" in page


def test_run_that_has_only_started(tmp_path):
    root = tmp_path / "new"
    root.mkdir()
    (root / "config.yaml").write_text("name: new\n")
    page = build_report(root).read_text()
    assert "<h1>new</h1>" in page and "0 of ? iterations done" in page


def test_collapse_warnings_marked(tmp_path):
    page = build_report(make_run(tmp_path / "r", extra=COLLAPSE)).read_text()
    chart = page.split('aria-label="collapse/distinct_3"')[1].split("</svg>")[0]
    assert chart.count('<g class="mark">') == 1 and "distinct_3 fell &lt;fast&gt;" in chart
    assert "Collapse warnings" in page
    assert warnings_of({"collapse/warnings": "x"}) == [("", "", "x")]
    assert warnings_of({"collapse/warnings": 0, "eval/acc": 1}) == []


def test_confidence_band_counts_greedy_eval_rows_only(tmp_path):
    run = Run(make_run(tmp_path / "r"))
    assert run.eval_n[1] == {"1": 10, "2": 10}  # the eval_k rows are not held-out problems
    k, lo, hi = run.acc_band("1")[1]
    assert (k, lo, hi) == (1, *wilson(0.8, 10))
    assert run.acc_band()[0][1:] == wilson(0.3, 20)  # overall n from eval/acc_n


def test_report_is_a_pure_function_of_the_files(tmp_path):
    run = make_run(tmp_path / "r")
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    first = build_report(run).read_bytes()
    assert build_report(run).read_bytes() == first
    after = sorted(p.relative_to(run) for p in run.rglob("*"))
    assert after == sorted([*before, (run / "report.html").relative_to(run)])  # nothing else written


def test_examples_show_kept_rationalized_and_rejected():
    rows = [{"kept": True, "phase": "sample"}] * 5 + [{"kept": True, "phase": "rationalize"}] + \
           [{"kept": False, "select_reason": r} for r in ("a", "a", "b", "c", "d")]
    picks = pick_examples(rows, 1)
    assert sum(r["kept"] for r in picks) == 3 and any(r.get("phase") == "rationalize" for r in picks)
    assert sorted(r["select_reason"] for r in picks if not r["kept"]) in (["a", "b", "c"], ["a", "b", "d"],
                                                                           ["a", "c", "d"], ["b", "c", "d"])


def test_hook_rebuilds_report_and_never_kills_the_run(tmp_path):
    cfg = SimpleNamespace(name="toy", iterations=2, report_to=[], model_dump=lambda mode: {})
    seen = []
    run = make_run(tmp_path / "r")
    hook = after_each_iteration(cfg, RunStore(run), lambda store, m: seen.append(m["iteration"]))
    hook(RunStore(run), {"iteration": 1})
    assert (run / "report.html").is_file() and seen == [1]

    broken = tmp_path / "broken"  # no config.yaml: the report cannot be built
    broken.mkdir()
    hook = after_each_iteration(cfg, RunStore(broken), lambda store, m: seen.append(m["iteration"]))
    with pytest.warns(UserWarning, match="could not rebuild"):
        hook(RunStore(broken), {"iteration": 2})
    assert seen == [1, 2] and not (broken / "report.html").exists()
