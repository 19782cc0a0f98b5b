"""The one reader of the data files users hand us -- problem files (JSONL, gzipped
JSONL, Parquet) and completions to verify -- with one error class. Every problem
is reported as one paragraph naming the file, the line and the field, what was
expected and what was found; nothing is written before the whole file has been
read and checked."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterator

MAX_LINE_BYTES = 8 << 20  # a longer line is almost surely not one record
TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
              dict: "an object", type(None): "null"}


class DataError(ValueError):
    """Bad input data, phrased for the person who made the file."""


def describe(value) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, (bytes, bytearray)) else repr(value)
    return f"{TYPE_NAMES.get(type(value), type(value).__name__)} ({text[:60]}{'...' if len(text) > 60 else ''})"


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def lines(path: str | Path, example: str, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line; ``example`` is a valid line,
    quoted in errors so the user sees what was expected."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file. Expected a JSONL file, one JSON object per line, e.g. {example}")
    seen_any = False
    with _open(path) as f:
        n = 0
        while True:
            raw = f.readline(max_line_bytes + 1)
            if not raw:
                break
            n += 1
            if len(raw) > max_line_bytes:
                raise DataError(f"{path}, line {n}: the line is longer than {max_line_bytes:,} bytes, so it is not "
                                f"read. Each line should be one JSON object, e.g. {example}; a missing newline "
                                "between records also gives this.")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}, line {n}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}). "
                                "Save the file as UTF-8; JSON text must be UTF-8.") from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}, line {n}: not valid JSON ({e.msg} at column {e.colno}). Each line must be "
                                f"one complete JSON object, e.g. {example}") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}, line {n}: expected a JSON object such as {example}, got {describe(obj)}.")
            seen_any = True
            yield n, obj
    if not seen_any:
        raise DataError(f"{path}: the file is empty (no JSON lines). Expected one JSON object per line, e.g. {example}")


def records(path: str | Path, example: str = '{"question": "...", "answer": "..."}') -> list[tuple[int, dict]]:
    """(line or row number, record) for every record of a .jsonl[.gz] or .parquet file
    (a Parquet row counts as a line, from 1)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p}: no such data file")
    if p.suffix != ".parquet":
        try:
            return list(lines(p, example))
        except (OSError, EOFError) as e:  # a truncated or foreign .gz
            raise DataError(f"{p}: cannot read: {e}") from None
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(p).to_pylist()
    except Exception as e:
        raise DataError(f"{p}: not a readable Parquet file: {e}") from None
    return [(i + 1, r) for i, r in enumerate(rows)]


def get(path, n: int, rec: dict, name: str, required: bool = True):
    """``rec[name]`` for a user-named field (dotted names reach into nested objects):
    a string or number, or None when absent and not ``required``."""
    value = rec
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value or value[part] is None:
            if not required:
                return None
            have = ", ".join(sorted(rec)[:12])
            raise DataError(f"{path}, line {n}: missing field `{name}` (fields present: {have})")
        value = value[part]
    if isinstance(value, (dict, list)):
        raise DataError(f"{path}, line {n}: field `{name}` must be a string or number, got {type(value).__name__}")
    return value


def field(path, n: int, obj: dict, name: str, types: tuple, example: str, required: bool = True, label: str = ""):
    """``obj[name]`` checked against ``types``; a clear error otherwise. ``label`` is
    the dotted path of ``obj`` in the line (``problem``), for the message."""
    full = f"{label}.{name}" if label else name
    if name not in obj:
        if not required:
            return None
        have = ", ".join(f"`{k}`" for k in list(obj)[:8]) or "none"
        raise DataError(f"{path}, line {n}: field `{full}` is missing (fields present: {have}). Expected a line like {example}")
    value = obj[name]
    if type(value) not in types:  # exact types: true is not an integer here
        want = " or ".join(TYPE_NAMES.get(t, t.__name__) for t in types)
        raise DataError(f"{path}, line {n}, field `{full}`: expected {want}, got {describe(value)}. "
                        f"A valid line looks like {example}")
    return value


def str_list(path, n: int, obj: dict, name: str, example: str) -> list[str]:
    value = field(path, n, obj, name, (list,), example)
    for i, item in enumerate(value):
        if type(item) is not str:
            raise DataError(f"{path}, line {n}, field `{name}`[{i}]: expected a string (one test statement), "
                            f"got {describe(item)}. A valid line looks like {example}")
    return value


class UniqueIds:
    """Remembers ids and the line they came from; a repeat is an error."""

    def __init__(self, path) -> None:
        self.path, self.first = path, {}

    def add(self, n: int, name: str, value: str) -> None:
        if value in self.first:
            raise DataError(f"{self.path}, line {n}, field `{name}`: duplicate id {value!r} (first seen on line "
                            f"{self.first[value]}). Ids must be unique within a file.")
        self.first[value] = n
