"""User data: load users (JSONL, CSV, Parquet) and gold labels (rendering a user as text: `render`).

A user is an id plus free-form `data`: {source: value}, where a value is a string, a number, a list
(a history: videos, comments, searches...) or a nested object. Bad input raises `InputError` naming
the file, the 1-based line (the row number for Parquet) and the field.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from confprofile.errors import InputError

JSONL_SUFFIXES = {".jsonl", ".json", ".ndjson"}
TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}


class UserRecord(BaseModel):
    """One user: a non-empty id and free-form data {source: value}."""

    user_id: str = Field(min_length=1)
    data: dict[str, Any]


# ---- loading -------------------------------------------------------------------------------------


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (1-based line number, object) for each non-blank line; InputError on any bad line."""
    path = Path(path)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise InputError(path, None, None, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, None, None, "is a directory, expected a file") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(path, number, None, f"not valid UTF-8 ({exc.reason} at byte {exc.start} of the line)") from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                hint = " (expected one JSON object per line)" if number == 1 and text.lstrip().startswith("[") else ""
                raise InputError(path, number, None, f"invalid JSON: {exc.msg} at column {exc.colno}{hint}") from None
            if not isinstance(obj, dict):
                raise InputError(path, number, None, f"expected a JSON object, got {type(obj).__name__}")
            yield number, obj


def _user_id(path: Path, line: int, value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError(path, line, "user_id", "missing user_id")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(path, line, "user_id", f"must be a string or an integer, got {type(value).__name__}")
    return str(value).strip()


def _check_unique(path: Path, line: int, user_id: str, seen: dict[str, int]) -> None:
    if user_id in seen:
        raise InputError(path, line, "user_id", f"duplicate user_id {user_id!r} (first on line {seen[user_id]})")
    seen[user_id] = line


def _record_from_object(path: Path, line: int, row: dict) -> UserRecord:
    """`{"user_id", "data": {...}}`; any other top-level keys are extra sources (flat rows work too)."""
    if "user_id" not in row:
        raise InputError(path, line, "user_id", "missing user_id")
    user_id = _user_id(path, line, row["user_id"])
    data = row.get("data", {})
    if not isinstance(data, dict):
        raise InputError(path, line, "data", f"must be an object {{source: value}}, got {type(data).__name__}")
    data = dict(data)
    for key, value in row.items():
        if key in ("user_id", "data"):
            continue
        if key in data:
            raise InputError(path, line, key, "given both at the top level and inside 'data'")
        data[key] = value
    return UserRecord(user_id=user_id, data=data)


def _maybe_json(value: Any) -> Any:
    """Table cells holding a JSON list/object are parsed; everything else is kept as is."""
    if isinstance(value, str) and value[:1] in "[{" and value.rstrip()[-1:] in "]}":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _plain(value: Any) -> Any:
    """Arrow values as JSON-friendly Python: dates to ISO strings, null struct fields dropped."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)


def _record_from_cells(path: Path, line: int, row: dict) -> UserRecord:
    """A CSV/Parquet row: `user_id` plus non-empty columns as sources, or a `data` object/JSON column."""
    user_id = _user_id(path, line, row.get("user_id"))
    data: dict[str, Any] = {}
    if "data" in row and not is_empty(row["data"]):
        inner = _maybe_json(_plain(row["data"]))
        if not isinstance(inner, dict):
            raise InputError(path, line, "data", "must be a JSON object {source: value}")
        data.update(inner)
    for key, value in row.items():
        if key in ("user_id", "data"):
            continue
        value = _maybe_json(_plain(value))
        if not is_empty(value):
            data[key] = value
    return UserRecord(user_id=user_id, data=data)


def _read_csv_rows(path: Path) -> Iterator[tuple[int, dict]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(path, line, None, f"not valid UTF-8 ({exc.reason})") from None
    if not text.strip():
        raise InputError(path, None, None, "empty file")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if "user_id" not in (reader.fieldnames or []):
        raise InputError(path, 1, "user_id", "missing column 'user_id' in the header")
    start = 2
    for row in reader:
        if None in row:
            raise InputError(path, start, None, "more cells than header columns")
        yield start, row
        start = reader.line_num + 1


def _read_parquet_rows(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(path, None, None, f"not a readable Parquet file ({exc})") from None
    if "user_id" not in table.schema_arrow.names:
        raise InputError(path, None, "user_id", "missing column 'user_id'")
    index = 0
    for batch in table.iter_batches(batch_size=4096):  # streamed: a file of any size in bounded memory
        for row in batch.to_pylist():
            index += 1
            yield index, row


def iter_users(path: str | Path, check_unique: bool = True) -> Iterator[UserRecord]:
    """Users one by one from .jsonl/.json/.ndjson (JSON Lines), .csv or .parquet; InputError on any bad row.

    Table formats: a `user_id` column; every other non-empty column is a source (cells that hold a
    JSON list/object are parsed), or a `data` column with an object (struct or JSON text). JSON Lines
    and Parquet are streamed. A repeated user_id is an error naming both lines; that check keeps every
    id in memory, so a streaming caller of a huge file turns it off and checks ids its own way.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in JSONL_SUFFIXES | TABLE_SUFFIXES:
        raise InputError(path, None, None, f"unknown file type {suffix or '(none)'}; use .jsonl, .csv or .parquet")
    if not path.exists():
        raise InputError(path, None, None, "file not found")
    if suffix in JSONL_SUFFIXES:
        rows, make = read_jsonl(path), _record_from_object
    else:
        rows = _read_csv_rows(path) if suffix == ".csv" else _read_parquet_rows(path)
        make = _record_from_cells
    seen: dict[str, int] = {}
    any_user = False
    for line, row in rows:
        user = make(path, line, row)
        if check_unique:
            _check_unique(path, line, user.user_id, seen)
        any_user = True
        yield user
    if not any_user:
        raise InputError(path, None, None, "empty file: no users")


def iter_user_chunks(paths: Sequence[str | Path], chunk_users: int) -> Iterator[list[UserRecord]]:
    """The users of several files in order, `chunk_users` at a time (the last chunk may be shorter), in
    memory bounded by the chunk: ids are not checked for repeats here (see `profiles.join_parts`)."""
    chunk: list[UserRecord] = []
    for path in paths:
        for user in iter_users(path, check_unique=False):
            chunk.append(user)
            if len(chunk) == chunk_users:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def load_users(path: str | Path) -> list[UserRecord]:
    """Every user of a file (see `iter_users` for the formats)."""
    return list(iter_users(path))


def load_gold(path: str | Path, taxonomy=None) -> dict[str, dict[str, str]]:
    """Gold labels {user_id: {dimension: label}} from gold.jsonl. For EVALUATION ONLY:
    label-free stages (label, aggregate, distill, rl, predict) must never call this.

    With a `taxonomy`, labels are normalised to canonical names; an unknown dimension or a label the
    taxonomy does not recognise is an InputError. A null or `unknown` gold label means "no gold for
    this dimension" and is left out.
    """
    from confprofile.taxonomy import UNKNOWN

    path = Path(path)
    gold: dict[str, dict[str, str]] = {}
    seen: dict[str, int] = {}
    for line, row in read_jsonl(path):
        if "user_id" not in row:
            raise InputError(path, line, "user_id", "missing user_id")
        user_id = _user_id(path, line, row["user_id"])
        _check_unique(path, line, user_id, seen)
        labels = row.get("labels")
        if not isinstance(labels, dict):
            raise InputError(path, line, "labels", f"must be an object {{dimension: label}}, got {type(labels).__name__}")
        clean: dict[str, str] = {}
        for dim, raw in labels.items():
            field = f"labels.{dim}"
            if raw is None:
                continue
            if not isinstance(raw, str):
                raise InputError(path, line, field, f"label must be a string, got {type(raw).__name__}")
            label = raw
            if taxonomy is not None:
                if dim not in taxonomy.dimension_names:
                    raise InputError(path, line, field, f"dimension not in taxonomy {taxonomy.name!r}")
                label = taxonomy.normalize(dim, raw)
                if label is None:
                    raise InputError(path, line, field, f"{raw!r} is not a label of {dim} "
                                     f"({', '.join(taxonomy.dimension(dim).label_names)})")
            if label != UNKNOWN:
                clean[dim] = label
        gold[user_id] = clean
    if not gold:
        raise InputError(path, None, None, "empty file: no gold labels")
    return gold
