"""Read a run directory for the report, compare and inspect commands -- read only:
nothing here creates or writes anything under the run (unlike ``RunStore.iter_dir``)."""

from __future__ import annotations

from collections import Counter
from functools import cached_property
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from selftaught.evaluate import wilson
from selftaught.store import RunDirError, RunStore, read_parquet

# What the example traces and the inspect tables show of a sample row.
TRACE_COLUMNS = ("sample_id", "problem_id", "group", "iteration", "phase", "prompt", "hint", "completion",
                 "answer", "reward", "correct", "verify_reason", "steps_ok", "kept", "select_reason")


def group_key(g: str):
    return (0, int(g)) if str(g).isdigit() else (1, str(g))


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Run:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / "config.yaml").is_file():
            raise RunDirError(f"{self.root}: not a selftaught run (no config.yaml)")

    @cached_property
    def config_text(self) -> str:
        return (self.root / "config.yaml").read_text()

    @cached_property
    def config(self) -> dict:
        try:
            tree = yaml.safe_load(self.config_text)
        except yaml.YAMLError as e:
            raise RunDirError(f"{self.root / 'config.yaml'}: not valid YAML ({e})") from None
        return tree if isinstance(tree, dict) else {}

    @cached_property
    def name(self) -> str:  # assignable: compare renames runs whose names clash
        return str(self.config.get("name") or self.root.name)

    @cached_property
    def history(self) -> list[dict]:
        """One dict per finished iteration: metrics.jsonl, else the iter_*/metrics.json files."""
        path = self.root / "metrics.jsonl"
        if not path.is_file():
            return RunStore(self.root).metrics()
        from selftaught.tasks._files import DataFileError, read_records

        try:
            rows = read_records(path)
        except DataFileError as e:  # one JSONL reader for the project; the report's own error class
            raise RunDirError(str(e)) from None
        out = []
        for i, m in rows:
            if "iteration" not in m:
                raise RunDirError(f"{path}, line {i}: expected an object with an `iteration` field")
            out.append(m)
        return sorted(out, key=lambda m: m["iteration"])

    def series(self, key: str) -> list[tuple[int, float]]:
        return [(m["iteration"], m[key]) for m in self.history if is_number(m.get(key))]

    def keys(self, prefix: str) -> list[str]:
        """Metric names under ``prefix`` in first-seen order."""
        return list(dict.fromkeys(k for m in self.history for k in m if k.startswith(prefix)))

    def groups(self) -> list[str]:
        return sorted({k[len("eval/acc/"):] for k in self.keys("eval/acc/")}, key=group_key)

    # --- record files ---------------------------------------------------------------------
    def path(self, k: int, name: str) -> Path:
        return self.root / f"iter_{k:03d}" / f"{name}.parquet"

    def rows(self, k: int, name: str, columns=TRACE_COLUMNS, filters=None) -> list[dict]:
        """Rows of iter_k/<name>.parquet ([] if absent), only the ``columns`` it has."""
        path = self.path(k, name)
        if not path.is_file():
            return []
        if columns is None:
            return read_parquet(path)
        try:
            have = set(pq.read_schema(path).names)
            cols = [c for c in columns if c in have]
            if filters and not all(f[0] in have for f in filters):
                return []
            return pq.read_table(path, columns=cols, filters=filters).to_pylist()
        except Exception as e:
            raise RunDirError(f"{path}: cannot read as Parquet ({e})") from None

    @cached_property
    def eval_n(self) -> dict[int, Counter]:
        """Held-out problems per group (greedy ``eval`` rows) in each iteration's eval.parquet."""
        out = {}
        for m in self.history:
            k = m["iteration"]
            rows = self.rows(k, "eval", columns=("group", "phase"))
            out[k] = Counter(str(r.get("group", "")) for r in rows if r.get("phase", "eval") == "eval")
        return out

    def acc_band(self, group: str | None = None) -> list[tuple[int, float, float]]:
        """95% Wilson interval of eval/acc (or eval/acc/<group>) at each iteration with a known n."""
        key = "eval/acc" if group is None else f"eval/acc/{group}"
        out = []
        for m in self.history:
            k, p = m["iteration"], m.get(key)
            if not is_number(p):
                continue
            counts = self.eval_n.get(k, Counter())
            n = sum(counts.values()) if group is None else counts.get(group, 0)
            if group is None and is_number(m.get("eval/acc_n")):
                n = int(m["eval/acc_n"])
            if n:
                out.append((k, *wilson(p, n)))
        return out

    def wall_time(self) -> float:
        return sum(v for _, v in self.time_per_iteration())

    def time_per_iteration(self) -> list[tuple[int, float]]:
        """Seconds of every timed stage (``time/<stage>_s``) of each iteration, summed."""
        return [(m["iteration"], sum(v for k, v in m.items() if k.startswith("time/") and is_number(v)))
                for m in self.history]

    def total(self, key: str) -> float:
        return sum(v for _, v in self.series(key))
