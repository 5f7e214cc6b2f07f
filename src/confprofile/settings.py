"""Stage configs are dataclasses with help text per field (TRL style). `from_section` builds one from
a config section, its nested configs included, and names the section's field when a key is unknown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

from confprofile.errors import InputError


def check_fields(cls: type, values: Mapping, section: str) -> None:
    """Raise an InputError naming `section.<field>` for the first key of `values` that `cls` lacks."""
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(None, None, f"{section}.{unknown[0]}", f"unknown field; fields: {', '.join(known)}")


def from_section(cls: type, values: Mapping, section: str, nested: Mapping[str, type] | None = None):
    """`cls(**values)` after checking the keys; `nested` names the fields that hold a config (or a
    list of configs) of their own, built from their dicts the same way."""
    check_fields(cls, values, section)
    values = dict(values)
    for name, kind in (nested or {}).items():
        if isinstance(values.get(name), Mapping):
            values[name] = from_section(kind, values[name], f"{section}.{name}")
        elif isinstance(values.get(name), list):
            values[name] = [from_section(kind, item, f"{section}.{name}") for item in values[name]]
    return cls(**values)
