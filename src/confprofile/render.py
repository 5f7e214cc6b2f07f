"""Rendering a user as compact prompt text within a token budget (`render_user`).

The budget is shared fairly: every non-empty source keeps at least a fragment, list sources take
turns adding one item at a time (so one long history cannot starve a short one), and within a list
the newest items survive. A list that is cut says so in its heading, with what the dropped items
would have told a reader: how many there are, their date range and their most common categories
(`list_summary`). Numbers and codes are said in words where the taxonomy's `fields` say how
(`verbalise`: `height: 71 inches`, `status: married`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from confprofile.data import UserRecord, is_empty

# Sources shown first, in this order; every other source follows alphabetically.
PREFERRED_ORDER = ("nickname", "bio", "location", "device")
# A list of objects that all carry one of these keys is sorted by it (oldest -> newest) before truncation.
TIME_KEYS = ("time", "timestamp", "date", "datetime", "ts", "created_at", "updated_at", "watched_at")
# Keys whose value leads a rendered object without a "key:" prefix.
TEXT_KEYS = ("title", "text", "content", "name", "query", "comment", "item")
# Keys of list items whose values are counted in the summary of a cut list.
CATEGORY_KEYS = ("genres", "genre", "categories", "category", "tags", "tag", "topics", "topic", "brand")
SUMMARY_TOP = 3  # categories named in a cut list's summary
SUMMARY_MIN_ITEMS = 10  # shorter lists lose little when cut, and keep their budget for items
ELLIPSIS = "…"


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
        lead = [_fmt(value[k]) for k in TEXT_KEYS if k in value and not is_empty(value[k])]
        rest = [f"{k}: {_fmt(v)}" for k, v in value.items() if k not in TEXT_KEYS and not is_empty(v)]
        return " | ".join(lead + rest)
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value if not is_empty(v))
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


def field_name(key: str, fields: Mapping[str, Any]) -> str:
    """The name a field is shown under: its `FieldFormat.name`, else the key itself."""
    return fields[key].name if key in fields and fields[key].name else key


def verbalise(key: str, value: Any, fields: Mapping[str, Any]) -> Any:
    """`value` of field `key` with every field the taxonomy describes said in words (`FieldFormat.say`),
    at any depth: an object's keys are looked up too, and a list's items share the list's key."""
    if isinstance(value, dict):
        return {field_name(k, fields): verbalise(k, v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [verbalise(key, item, fields) for item in value]
    return fields[key].say(value) if key in fields else value


def list_summary(items: list) -> str:
    """What a reader of a cut list would miss, for its heading: `; <first> to <last>; most common
    <key>: a 12, b 8` (date range of the items' time key, commonest values of a category key), or ""."""
    if len(items) < SUMMARY_MIN_ITEMS:
        return ""
    objects = [it for it in items if isinstance(it, dict)]
    parts = []
    for key in TIME_KEYS:
        times = [str(it[key]) for it in objects if it.get(key) is not None]
        if len(times) == len(items) and len(times) > 1:
            parts.append(f"{times[0]} to {times[-1]}")  # items are already oldest first
            break
    for key in CATEGORY_KEYS:
        values = [v for it in objects if key in it for v in (it[key] if isinstance(it[key], list) else [it[key]]) if not is_empty(v)]
        if len(values) > 1:
            top = Counter(str(v) for v in values).most_common(SUMMARY_TOP)
            parts.append(f"most common {key}: " + ", ".join(f"{name} {n}" for name, n in top))
            break
    return "".join(f"; {part}" for part in parts)


class _Section:
    """One source being filled: scalars are one line, lists one line per item, newest items first."""

    def __init__(self, name: str, value: Any):
        self.name = name
        self.is_list = isinstance(value, list)
        ordered = _chronological(value) if self.is_list else [value]
        items = [_fmt(v) for v in ordered]
        self.newest_first = [item for item in reversed(items) if item]
        self.summary = list_summary(ordered) if self.is_list else ""
        self.kept: list[str] = []  # rendered items, newest first
        self.open = True

    def heading(self, kept: int | None = None) -> str:
        total, kept = len(self.newest_first), len(self.kept) if kept is None else kept
        if self.is_list and kept < total:
            return f"{self.name} (newest {kept} of {total}{self.summary}):"
        return f"{self.name}:"

    def longest_heading(self) -> str:
        """The heading at its longest (a cut list), so that the budget always has room for it."""
        return self.heading(kept=len(self.newest_first) - 1) if self.is_list and self.newest_first else self.heading()

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
    def room() -> int:  # the budget left for items, with every heading at its longest; 1 per section: item prefixes
        return budget - sum(count(s.longest_heading()) + newline for s in sections) - len(sections)

    summarised = sorted((s for s in sections if s.summary), key=lambda s: -count(s.summary))
    for section in summarised:  # summaries take at most a quarter of the room (longest dropped first): items come first
        if 4 * sum(count(s.summary) for s in sections) <= room():
            break
        section.summary = ""
    left = room()
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


def render_user(user: UserRecord, max_tokens: int = 512, count_tokens: Callable[[str], int] | None = None,
                fields: Mapping[str, Any] | None = None) -> str:
    """A user's data as prompt text of at most `max_tokens` (by `count_tokens`, default `approx_tokens`).

    Sections follow PREFERRED_ORDER, then the other sources alphabetically; a scalar source is one line
    `name: value`, a list source a heading plus one `- item` line per item in chronological order, with
    `(newest k of n; <list_summary>)` in the heading when items were dropped. Nested objects render
    compactly (`title | tags: a, b | watch_seconds: 35`). `fields` (a taxonomy's `fields`) says numbers
    and codes in words. Deterministic for a given user, counter and fields.
    """
    count = count_tokens or approx_tokens
    names = _source_order(user.data)
    if not names:
        return _cut("(no data)", max_tokens, count)
    # said in words once, outside the shrink loop; without fields the data is used as stored
    sources = [(field_name(n, fields), verbalise(n, user.data[n], fields)) for n in names] if fields else [(n, user.data[n]) for n in names]
    budget = max_tokens
    for _ in range(4):  # a real tokenizer is not additive over lines: shrink until the whole fits
        sections = [_Section(name, value) for name, value in sources]
        _fill(sections, budget, count)
        text = "\n".join(line for s in sections for line in s.lines())
        over = count(text) - max_tokens
        if over <= 0:
            return text
        budget -= over
    return _cut(text, max_tokens, count)
