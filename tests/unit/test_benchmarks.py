"""The benchmark scripts' own bookkeeping (benchmarks/ is not a package: imported by path)."""

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.append(str(BENCH))  # appended: never shadows an installed module

import methods  # noqa: E402


def test_methods_refuses_to_merge_arms_run_with_other_overrides():
    old = json.loads((BENCH / "results" / "methods.json").read_text())  # the 150-step table
    assert "trainer.steps=150" in old["common_overrides"]
    assert "other common overrides" in methods.unmergeable(old)
    same = {"common_overrides": methods.COMMON, "methods": {"star": {}}}
    assert methods.unmergeable(same) is None and methods.unmergeable({}) is None
    assert methods.unmergeable({"common_overrides": ["x"], "smollm2": {"star": {}}}) is None  # no tiny arms to mislabel


def test_prm_labels_ranking_is_the_auc_on_unseen_correct_traces_per_group():
    import prm_labels

    def t(sid, group, score, ok, correct=True, phase="sample"):
        return {"sample_id": sid, "group": group, "phase": phase, "correct": correct, "prm_score": score,
                "steps_ok": ok}

    samples = [t("a", "5", 0.9, True), t("b", "5", 0.4, True), t("c", "5", 0.5, False),  # right 0.9, 0.4 vs wrong 0.5
               t("seen", "5", 0.0, True),  # labeled: the PRM trained on it
               t("w", "5", 0.99, False, correct=False),  # incorrect: the filter never decides on it
               t("r", "5", 0.0, False, phase=prm_labels.ROLLOUT),
               t("d", "2", 0.7, True)]
    out = prm_labels.ranking([{"trace_id": "seen"}], samples)
    assert out == {"2": {"right": 1, "wrong": 0, "auc": None}, "5": {"right": 2, "wrong": 1, "auc": 0.5}}
    samples[1]["prm_score"] = 0.6  # both right traces above the wrong one
    assert prm_labels.ranking([{"trace_id": "seen"}], samples)["5"]["auc"] == 1.0


def test_the_readme_names_only_arms_and_results_that_exist():
    import re

    import prm

    readme = (BENCH.parent / "README.md").read_text()
    named = set()
    for m in re.finditer(r"benchmarks/prm\.py((?: [^`\n]*)?)`", readme.replace("\n", " ")):
        args = m.group(1).split()
        if "--arms" in args:
            for a in args[args.index("--arms") + 1:]:
                if a.startswith(("-", "[")):
                    break
                named.add(a)
    assert named and {"star_prm_checker", "star_valid"} <= named
    assert named <= set(prm.ARMS), named - set(prm.ARMS)
    cited = set(re.findall(r"benchmarks/results/([\w.{},-]+\.json)", readme.replace("\n", " ")))
    missing = []
    for name in cited:
        expand = re.match(r"(.*)\{([\w,]+)\}(.*)", name)
        for n in ([expand[1] + x + expand[3] for x in expand[2].split(",")] if expand else [name]):
            if not (BENCH / "results" / n).is_file():
                missing.append(n)
    assert cited and not missing, missing


def test_base_run_json_reads_the_last_json_line_and_names_a_failure(tmp_path):
    import pytest

    import _base

    ok = _base.run_json([sys.executable, "-c", "import os; print('{\"a\": 1}'); print('noise'); "
                         "print('{\"pythonpath\": \"' + os.environ['PYTHONPATH'] + '\"}')"], tmp_path, "abc")
    assert ok == {"pythonpath": str(tmp_path / "src")}  # the last JSON line, with the tree's src on the path
    with pytest.raises(RuntimeError, match=r"base abc failed \(exit 3\):\n.*boom"):
        _base.run_json([sys.executable, "-c", "import sys; print('{}'); sys.stderr.write('boom'); sys.exit(3)"],
                       tmp_path, "abc")  # a JSON line is no success when the exit status says otherwise


def test_prm_labels_has_no_label_rules_for_a_checker_run():
    import prm_labels
    from selftaught.tasks.arithmetic import Arithmetic, Config

    labels = [{"trace_id": "t", "step": 2, "soft": 0.0, "source": "checker", "exact": False}]
    samples = [{"sample_id": "t", "phase": "sample", "correct": True, "completion": "1+1+0=2,0\n1+1+0=3,0\n=32"}]
    assert prm_labels.iteration(Arithmetic(Config()), labels, samples) == {}
