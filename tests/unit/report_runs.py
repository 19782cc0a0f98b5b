"""Hand-made run directories for the report, compare and inspect tests: the files a
run leaves behind (config.yaml, metrics.jsonl, iter_*/samples.parquet and
eval.parquet), written directly, so the tests need no model."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HOSTILE = "<script>alert('pwned')</script>"


def _eval_rows(k: int, acc: dict[str, float], n: int) -> list[dict]:
    rows = []
    for g, p in acc.items():
        for i in range(n):
            rows.append({"sample_id": f"{k}/eval/e{g}-{i}/0", "problem_id": f"e{g}-{i}", "group": g, "iteration": k,
                         "phase": "eval", "prompt": f"q{g}-{i}\n", "hint": None, "completion": "=1",
                         "answer": "1", "correct": i < round(p * n), "verify_reason": "ok"})
        # pass@k samples live in the same file and must not count towards n
        rows.append({"sample_id": f"{k}/eval_k/e{g}-0/0", "problem_id": f"e{g}-0", "group": g, "iteration": k,
                     "phase": "eval_k", "prompt": "q\n", "hint": None, "completion": "=1", "answer": "1",
                     "correct": True, "verify_reason": "ok"})
    return rows


def _sample_rows(k: int) -> list[dict]:
    base = {"iteration": k, "group": "2", "hint": None, "steps_ok": True, "reward": 1.0}
    return [
        {**base, "sample_id": f"{k}/sample/p1/0", "problem_id": "p1", "phase": "sample", "prompt": "12+34\n",
         "completion": "=46", "answer": "46", "correct": True, "verify_reason": "correct", "kept": True,
         "select_reason": "first correct"},
        {**base, "sample_id": f"{k}/sample/p2/0", "problem_id": "p2", "phase": "sample", "prompt": "55+55\n",
         "completion": HOSTILE + "\n[bold red]fake[/]", "answer": None, "correct": False, "reward": 0.0,
         "verify_reason": "no answer line", "kept": False, "select_reason": "rejected: no answer line"},
        {**base, "sample_id": f"{k}/rationalize/p2/0", "problem_id": "p2", "phase": "rationalize",
         "prompt": "55+55|110\n", "hint": "110", "completion": "=110", "answer": "110", "correct": True,
         "steps_ok": False, "verify_reason": "correct answer, wrong working", "kept": True,
         "select_reason": "rationalized with hint"},
        {**base, "sample_id": f"{k}/sample/p3/0", "problem_id": "p3", "phase": "sample", "prompt": "1+1\n",
         "completion": "=3", "answer": "3", "correct": False, "reward": 0.0,
         "verify_reason": "answer 3, expected 2", "kept": False, "select_reason": '"><img src=x onerror=alert(1)>'},
    ]


def make_run(root: Path, name: str = "toy", accs=(0.3, 0.5, 0.7), extra: dict | None = None,
             minimal: bool = False, samples: int = 100) -> Path:
    """A finished run of ``len(accs) - 1`` iterations. ``minimal``: only eval metrics
    (no samples, times, pass@k or collapse keys). ``extra``: {iteration: {key: value}}."""
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(f"name: {name}\niterations: {len(accs) - 1}\nmodel: builtin:tiny\n"
                                      "task:\n  type: arithmetic\nmethod:\n  type: star\n")
    lines = []
    for k, acc in enumerate(accs):
        groups = {"1": min(1.0, acc + 0.3), "2": max(0.0, acc - 0.3)}
        m = {"iteration": k, "eval/acc": acc, "eval/acc_n": 20, "model": f"m{k}",
             **{f"eval/acc/{g}": p for g, p in groups.items()}}
        d = root / f"iter_{k:03d}"
        d.mkdir()
        pq.write_table(pa.Table.from_pylist(_eval_rows(k, groups, 10)), d / "eval.parquet")
        if not minimal:
            m["time/evaluate_s"] = 2.0
            if k > 0:
                m.update({"gen/samples": samples, "select/kept": samples // 2, "select/kept_rationalized": 5,
                          "time/generate_s": 10.0, "time/train_s": 30.0, "time/verify_s": 0.5,
                          "eval/pass@4": min(1.0, acc + 0.2), "eval/pass@1_sampled": acc, "eval/pass@4_gap": 0.2})
                pq.write_table(pa.Table.from_pylist(_sample_rows(k)), d / "samples.parquet")
        m.update((extra or {}).get(k, {}))
        lines.append(json.dumps(m))
    (root / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return root
