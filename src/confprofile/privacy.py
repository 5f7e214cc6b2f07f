"""Optional PII redaction before user data reaches a teacher (`privacy.redact: true`, `label --redact`).

Emails, phone numbers, long ID-like digit runs (ID cards, bank cards) and IP addresses are
replaced by typed placeholders, so a remote endpoint never sees them while the profile signal
(interests, wording) survives. Patterns are conservative: prices ("$12.99"), years ("2024"),
durations ("35s") and short counts are left alone.
"""

from __future__ import annotations

import re

_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("[EMAIL]", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("[IP]", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
    # ID-like: 12+ digits, optionally grouped by spaces or dashes (card and national ID numbers)
    ("[ID]", re.compile(r"\b\d(?:[ -]?\d){11,}[\dXx]?\b")),
    # phones: optional +country code, then 7+ digits with separators; at least 7 digits in all
    ("[PHONE]", re.compile(r"(?<![\w.])\+?\d{1,3}?[ .-]?\(?\d{2,4}\)?(?:[ .-]?\d{2,4}){2,3}(?!\w|\.\d)")),
]


# dates and timestamps (2024-05-12, 2024/5/12 10:30:00) are kept: they order histories and are no PII alone
_DATE = re.compile(r"\b(?:19|20)\d\d([-/.])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
                   r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?!\d)")


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def redact_text(text: str) -> str:
    """`text` with emails, IPs, ID-like numbers and phone numbers replaced by placeholders."""
    pieces, last = [], 0
    for date in _DATE.finditer(text):
        pieces += [_redact_span(text[last : date.start()]), date.group(0)]
        last = date.end()
    return "".join(pieces) + _redact_span(text[last:])


def _redact_span(text: str) -> str:
    for placeholder, pattern in _PATTERNS:
        if placeholder == "[PHONE]":
            text = pattern.sub(lambda m: placeholder if _digits(m.group(0)) >= 7 else m.group(0), text)
        else:
            text = pattern.sub(placeholder, text)
    return text


def redact_value(value):
    """Redact every string inside a (nested) user data value."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int) and not isinstance(value, bool):  # a phone or ID stored as a JSON number
        text = str(value)
        return value if redact_text(text) == text else redact_text(text)
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    return value
