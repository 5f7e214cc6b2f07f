"""User data: load users (JSONL, CSV, Parquet) and gold labels, and render a user into prompt text.

A user is an id plus free-form `data`: {source: value}, where a value is a string, a number, a list
(a history: videos, comments, searches...) or a nested object. Bad input raises `InputError` naming
the file, the 1-based line (the row number for Parquet) and the field.

Rendering (`render_user`) turns a user into compact text within a token budget. The budget is shared
fairly: every non-empty source keeps at least a fragment, list sources take turns adding one item at a
time (so one long history cannot starve a short one), and within a list the newest items survive.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from confprofile.errors import InputError

JSONL_SUFFIXES = {".jsonl", ".json", ".ndjson"}
TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}
# Sources shown first, in this order; every other source follows alphabetically.
PREFERRED_ORDER = ("nickname", "bio", "location", "device")
# A list of objects that all carry one of these keys is sorted by it (oldest -> newest) before truncation.
TIME_KEYS = ("time", "timestamp", "date", "datetime", "ts", "created_at", "updated_at", "watched_at")
# Keys whose value leads a rendered object without a "key:" prefix.
TEXT_KEYS = ("title", "text", "content", "name", "query", "comment", "item")
ELLIPSIS = "…"


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


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)


def _record_from_cells(path: Path, line: int, row: dict) -> UserRecord:
    """A CSV/Parquet row: `user_id` plus non-empty columns as sources, or a `data` object/JSON column."""
    user_id = _user_id(path, line, row.get("user_id"))
    data: dict[str, Any] = {}
    if "data" in row and not _is_empty(row["data"]):
        inner = _maybe_json(_plain(row["data"]))
        if not isinstance(inner, dict):
            raise InputError(path, line, "data", "must be a JSON object {source: value}")
        data.update(inner)
    for key, value in row.items():
        if key in ("user_id", "data"):
            continue
        value = _maybe_json(_plain(value))
        if not _is_empty(value):
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


# ---- token counting --------------------------------------------------------------------------------

_CJK = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff"
_PIECE = re.compile(rf"[{_CJK}]|\d|[^\W\d{_CJK}]+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """A tokenizer-free token estimate: each CJK character, digit and punctuation mark is one token,
    each other word one token per 4 characters (rounded, at least one). Measured against SmolLM2's
    tokenizer: ~1.0x on plain English, 0.93x (median) on ProfileBench users. Budgets that must be
    exact should pass `make_token_counter(tokenizer)`."""
    return sum(max(1, (len(piece) + 2) // 4) for piece in _PIECE.findall(text))


def make_token_counter(tokenizer) -> Callable[[str], int]:
    """An exact counter for a Hugging Face tokenizer (special tokens excluded)."""

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    return count


# ---- rendering -------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    """A value as compact one-line text: objects as `title | key: value`, lists comma-separated."""
    if isinstance(value, dict):
        lead = [_fmt(value[k]) for k in TEXT_KEYS if k in value and not _is_empty(value[k])]
        rest = [f"{k}: {_fmt(v)}" for k, v in value.items() if k not in TEXT_KEYS and not _is_empty(v)]
        return " | ".join(lead + rest)
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value if not _is_empty(v))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def _chronological(items: list) -> list:
    """Items oldest -> newest: sorted by a shared time key if every item is an object carrying one,
    else in the given order (lists are assumed to be stored oldest first)."""
    if not items or not all(isinstance(it, dict) for it in items):
        return items
    for key in TIME_KEYS:
        if all(key in it and it[key] is not None for it in items):
            try:
                return sorted(items, key=lambda it: it[key])  # stable: ties keep the given order
            except TypeError:
                return items
    return items


def _cut(text: str, max_tokens: int, count: Callable[[str], int]) -> str:
    """The longest prefix of `text` (plus an ellipsis) within `max_tokens`; "" if nothing fits."""
    if count(text) <= max_tokens:
        return text
    if count(ELLIPSIS) > max_tokens:
        return ""
    text = text[: 16 * max_tokens + 16]  # no token is longer than 16 characters: keeps the search short
    lo, hi = 0, len(text)  # invariant: prefix of length lo fits, length hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count(text[:mid].rstrip() + ELLIPSIS) <= max_tokens:
            lo = mid
        else:
            hi = mid
    best = text[:lo].rstrip()
    space = best.rfind(" ")
    if space > len(best) - 15 and space > 0:  # prefer a word boundary when one is near
        best = best[:space].rstrip()
    return best + ELLIPSIS


def _source_order(data: dict[str, Any]) -> list[str]:
    keys = [k for k in data if _fmt(data[k])]
    first = [k for k in PREFERRED_ORDER if k in keys]
    return first + sorted(k for k in keys if k not in PREFERRED_ORDER)


class _Section:
    """One source being filled: scalars are one line, lists one line per item, newest items first."""

    def __init__(self, name: str, value: Any):
        self.name = name
        self.is_list = isinstance(value, list)
        items = [_fmt(v) for v in _chronological(value)] if self.is_list else [_fmt(value)]
        self.newest_first = [item for item in reversed(items) if item]
        self.kept: list[str] = []  # rendered items, newest first
        self.open = True

    def heading(self) -> str:
        total = len(self.newest_first)
        if self.is_list and len(self.kept) < total:
            return f"{self.name} (newest {len(self.kept)} of {total}):"
        return f"{self.name}:"

    def next_item(self) -> str | None:
        return self.newest_first[len(self.kept)] if self.open and len(self.kept) < len(self.newest_first) else None

    def lines(self) -> list[str]:
        if not self.is_list:
            return [f"{self.name}: {self.kept[0]}" if self.kept else self.heading()]
        return [self.heading()] + [f"- {item}" for item in reversed(self.kept)]


def _fill(sections: list[_Section], budget: int, count: Callable[[str], int]) -> None:
    """Share `budget` round-robin: each round every open section adds its next-newest item.

    Items are cut to a fair share of the budget; round one (the newest item of every source) is
    max-min fair, so sources with short items leave room for long ones. A section whose next item
    does not fit stops, so what is kept is always the newest run of items.
    """
    newline = count("\n")
    worst = [s.name + (f" (newest {len(s.newest_first)} of {len(s.newest_first)}):" if s.is_list else ":") for s in sections]
    left = budget - sum(count(h) + newline for h in worst) - len(sections)  # 1 per section: item prefixes
    share = max(left // max(len(sections), 1), 1)
    order = sorted(range(len(sections)), key=lambda i: count(sections[i].next_item() or ""))
    for rank, i in enumerate(order):  # round one, max-min fair
        allowance = min(share * 2, max(left // (len(sections) - rank), 0))
        text = _cut(sections[i].next_item(), allowance, count)
        if text:
            sections[i].kept.append(text)
            left -= count(text) + newline
    while left > 0 and any(s.next_item() is not None for s in sections):
        for section in sections:
            item = section.next_item()
            if item is None:
                continue
            if count(item) > share:
                item = _cut(item, share, count)
            cost = count(item) + newline
            if not item or cost > left:
                section.open = False
                continue
            section.kept.append(item)
            left -= cost


def render_user(user: UserRecord, max_tokens: int = 512, count_tokens: Callable[[str], int] | None = None) -> str:
    """A user's data as prompt text of at most `max_tokens` (by `count_tokens`, default `approx_tokens`).

    Sections follow PREFERRED_ORDER, then the other sources alphabetically; a scalar source is one line
    `name: value`, a list source a heading plus one `- item` line per item in chronological order, with
    `(newest k of n)` in the heading when items were dropped. Nested objects render compactly
    (`title | tags: a, b | watch_seconds: 35`). Deterministic for a given user and counter.
    """
    count = count_tokens or approx_tokens
    names = _source_order(user.data)
    if not names:
        return _cut("(no data)", max_tokens, count)
    budget = max_tokens
    for _ in range(4):  # a real tokenizer is not additive over lines: shrink until the whole fits
        sections = [_Section(name, user.data[name]) for name in names]
        _fill(sections, budget, count)
        text = "\n".join(line for s in sections for line in s.lines())
        over = count(text) - max_tokens
        if over <= 0:
            return text
        budget -= over
    return _cut(text, max_tokens, count)
