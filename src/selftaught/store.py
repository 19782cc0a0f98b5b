"""The run directory: one folder per run, every file written atomically.

    runs/<name>/
      config.yaml         resolved config, written once at start, never edited
      run.lock            held by the one process working on the run
      iter_000/           iteration 0: the starting model, evaluated only
      iter_001/
        samples.parquet   every completion, its score and its selection decision
        train.parquet     what the trainer saw
        checkpoint/       the model after this iteration
        eval.parquet      held-out completions and scores
        metrics.json      everything this iteration measured
        <stage>.done      JSON: the stage's metrics and wall time, written last
      metrics.jsonl       one line per iteration, rebuilt from the metrics.json files

Every file is written to a temporary name and renamed into place, so a crash
never leaves a half-written file under a final name. A stage counts as finished
only when its ``.done`` marker exists; a stage without one is re-run from its
inputs, and stages are idempotent (same inputs and seed, same outputs), so
re-running never doubles anything.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class RunDirError(RuntimeError):
    """The run directory is not in a state we can work with; the message says why and what to do."""


def fault_point(point: str) -> None:
    """Fault injection for the crash tests: ``SELFTAUGHT_FAULT=iter_001/select.done``
    kills this process with SIGKILL just before that file is renamed into place
    (the worst moment: the work is done, nothing says so). Inert otherwise."""
    if os.environ.get("SELFTAUGHT_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_rename(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    fault_point(f"{final.parent.name}/{final.name}")
    os.replace(tmp, final)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    _fsync_rename(tmp, path)


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")


def write_parquet(path: Path, rows: list[dict]) -> None:
    # pyarrow takes the columns from the first row only; a column some later rows
    # add (a method's extra provenance) would silently vanish, so use the union.
    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows]) if rows else pa.table({})
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp)
    _fsync_rename(tmp, path)


def read_parquet(path: Path) -> list[dict]:
    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # a corrupt or foreign file must never be silently skipped
        raise RunDirError(f"{path}: cannot read as Parquet ({e}). Delete it and its stage's .done marker to redo the stage.") from None


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunDirError(f"{path}: not valid JSON ({e}). Delete it to redo the stage that wrote it.") from None


class RunStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- life cycle -----------------------------------------------------------------
    def check(self, config_yaml: str, same=None) -> bool:
        """Read-only: may a run with this config start or resume here? True if resuming.
        An existing run must have the same config (resuming with other settings would
        mix two experiments); a directory that is not a run is never written into.
        ``same(saved, current)`` decides sameness (default: equal text)."""
        cfg_path = self.root / "config.yaml"
        same = same or str.__eq__
        if cfg_path.exists():
            if not same(cfg_path.read_text(), config_yaml):
                raise RunDirError(
                    f"{self.root} already holds a run with a different config ({cfg_path}).\n"
                    "Resume it with `selftaught run " + str(self.root) + "`, or pick another `name=`.")
            return True
        if self.root.exists() and any(p for p in self.root.iterdir() if p.name != "run.lock"):
            raise RunDirError(f"{self.root} exists but has no config.yaml: it is not a selftaught run; refusing to write into it")
        return False

    def create_or_check(self, config_yaml: str, same=None) -> bool:
        """``check``, then write config.yaml on a new run. True if resuming."""
        if self.check(config_yaml, same):
            return True
        self.root.mkdir(parents=True, exist_ok=True)
        write_text(self.root / "config.yaml", config_yaml)
        return False

    @contextmanager
    def lock(self):
        """One process per run directory: a second one is refused, not interleaved."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                raise RunDirError(f"{self.root} is in use by pid {other}; wait for it to finish or stop it first") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield self
        finally:
            os.close(fd)  # closing releases the flock; a killed process releases it too

    # --- iterations and stages ------------------------------------------------------------
    def iter_dir(self, k: int) -> Path:
        d = self.root / f"iter_{k:03d}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def done(self, k: int, stage: str) -> dict | None:
        """The stage's marker (its metrics), or None if it has not finished."""
        p = self.root / f"iter_{k:03d}" / f"{stage}.done"
        return read_json(p) if p.exists() else None

    def mark_done(self, k: int, stage: str, metrics: dict) -> None:
        write_json(self.iter_dir(k) / f"{stage}.done", metrics)

    def rows(self, k: int, name: str) -> list[dict]:
        return read_parquet(self.root / f"iter_{k:03d}" / f"{name}.parquet")

    def write_rows(self, k: int, name: str, rows: list[dict]) -> None:
        write_parquet(self.iter_dir(k) / f"{name}.parquet", rows)

    def iterations(self) -> list[int]:
        return sorted(int(p.name[5:]) for p in self.root.glob("iter_[0-9][0-9][0-9]") if p.is_dir())

    # --- metrics -------------------------------------------------------------------------
    def write_metrics(self, k: int, metrics: dict) -> None:
        """Write iter_k/metrics.json, then rebuild metrics.jsonl from every finished
        iteration: rebuilding (not appending) is what makes a crash between the two
        writes harmless -- no line is ever lost or doubled."""
        write_json(self.iter_dir(k) / "metrics.json", {"iteration": k, **metrics})
        lines = [json.dumps(m, sort_keys=True) for m in self.metrics()]
        write_text(self.root / "metrics.jsonl", "".join(line + "\n" for line in lines))

    def metrics(self) -> list[dict]:
        out = []
        for k in self.iterations():
            p = self.root / f"iter_{k:03d}" / "metrics.json"
            if p.exists():
                out.append(read_json(p))
        return out

    def checkpoint(self, k: int) -> Path:
        return self.root / f"iter_{k:03d}" / "checkpoint"
