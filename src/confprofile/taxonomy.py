"""The label space: dimensions (gender, age_group, ...) and their labels.

Every stage speaks in canonical label names from a `Taxonomy`. Model output is
mapped onto them by `Taxonomy.normalize`, which never maps silently: a string
that is neither a label, an alias nor a close fuzzy match is invalid (None).
`unknown` is always a valid answer and means "abstain".
"""

from __future__ import annotations

import difflib
import re
from functools import cached_property
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from confprofile.errors import InputError

UNKNOWN = "unknown"
UNKNOWN_ALIASES = {"unknown", "none", "n/a", "na", "unsure", "not sure", "cannot tell", "can't tell", "undetermined", "null", "?"}
FUZZY_CUTOFF = 0.85
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def canonical_text(text: str) -> str:
    """Lower case, spaces/hyphens/slashes to underscores, other punctuation dropped."""
    text = text.strip().lower()
    text = re.sub(r"[\s\-/]+", "_", text)
    text = re.sub(r"[^a-z0-9_+]", "", text)
    return re.sub(r"_+", "_", text).strip("_")


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    aliases: list[str] = Field(default_factory=list, description="Other spellings a teacher may answer with (mapped to `name`).")
    examples: list[str] = Field(default_factory=list, description=(
        "Typical words, interests or items of users with this label, in the data's own terms (\"rates action and "
        "war films\", \"mentions lesson plans\"): the embedding teacher adds each to the label's prototype, "
        "the LLM prompts list the first few."))

    @field_validator("name")
    @classmethod
    def _snake_case(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"label name {name!r} must be snake_case (a-z, 0-9, _)")
        if name == UNKNOWN:
            raise ValueError("'unknown' is implicit in every dimension; do not list it")
        return name


class Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    labels: list[Label]

    @field_validator("name")
    @classmethod
    def _snake_case(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"dimension name {name!r} must be snake_case (a-z, 0-9, _)")
        return name

    @model_validator(mode="after")
    def _unique_labels(self) -> "Dimension":
        if len(self.labels) < 2:
            raise ValueError(f"dimension {self.name!r} needs at least two labels")
        names = self.label_names
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"dimension {self.name!r} lists label(s) {twice} more than once")
        seen: dict[str, str] = {}
        for label in self.labels:
            for key in [label.name, *map(canonical_text, label.aliases)]:
                if key in seen and seen[key] != label.name:
                    raise ValueError(f"dimension {self.name!r}: {key!r} names both {seen[key]!r} and {label.name!r}")
                seen[key] = label.name
        return self

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @cached_property
    def _lookup(self) -> dict[str, str]:
        table = {}
        for label in self.labels:
            table[canonical_text(label.name)] = label.name
            for alias in label.aliases:
                table[canonical_text(alias)] = label.name
        return table

    def normalize(self, raw: object) -> str | None:
        """Canonical label, `unknown`, or None when `raw` is not recognisably a label."""
        if raw is None:
            return None
        text = str(raw)
        if text.strip().lower() in UNKNOWN_ALIASES:
            return UNKNOWN
        key = canonical_text(text)
        if not key:
            return None
        if key == UNKNOWN:
            return UNKNOWN
        if key in self._lookup:
            return self._lookup[key]
        close = difflib.get_close_matches(key, list(self._lookup), n=2, cutoff=FUZZY_CUTOFF)
        if len(close) == 1 or (len(close) == 2 and self._lookup[close[0]] == self._lookup[close[1]]):
            return self._lookup[close[0]]
        return None


class FieldFormat(BaseModel):
    """How to say one field of the users' data in words, so that an LLM reads what a person would:
    `height: 71` becomes `height: 71 inches`, `income: 80000` `income: $80,000 a year`, `status: 2`
    `status: married`. Applied wherever a user is rendered (teachers, students, rules)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field("", description="The field's name in words (`body type` for `body_type`); default: the key.")
    unit: str = Field("", description="Written after a number: `inches`, `km`, `stars`.")
    format: str = Field("", description="A Python format string for a number, e.g. `${:,} a year`; wins over `unit`.")
    codes: dict[str, str] = Field(default_factory=dict, description="Coded values in words: {\"1\": single, \"2\": married}.")

    @field_validator("format")
    @classmethod
    def _formats_a_number(cls, format: str) -> str:
        try:
            format.format(1234.5)
        except (ValueError, IndexError, KeyError) as exc:
            raise ValueError(f"format {format!r} must format one number, as in '${{:,}} a year' ({exc})") from None
        return format

    def say(self, value: object) -> object:
        """The value in words (unchanged when no rule applies to it)."""
        if isinstance(value, bool) or value is None:
            return value
        key = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        if key in self.codes:
            return self.codes[key]
        number = value if isinstance(value, int | float) else _number(value)
        if number is None:
            return value
        if self.format:
            return self.format.format(int(number) if float(number).is_integer() else number)
        return f"{key} {self.unit}" if self.unit else value


def _number(text: object) -> float | None:
    try:
        return float(str(text))
    except ValueError:
        return None


class Taxonomy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "custom"
    description: str = ""
    dimensions: list[Dimension]
    fields: dict[str, FieldFormat] = Field(default_factory=dict, description=(
        "How to verbalise the users' fields, by key (at any depth: a key of a list item counts too); see FieldFormat."))

    @model_validator(mode="after")
    def _unique_dimensions(self) -> "Taxonomy":
        names = [d.name for d in self.dimensions]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"duplicate dimension(s): {sorted(duplicates)}")
        if not names:
            raise ValueError("a taxonomy needs at least one dimension")
        return self

    @property
    def dimension_names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def dimension(self, name: str) -> Dimension:
        for dim in self.dimensions:
            if dim.name == name:
                return dim
        raise KeyError(f"no dimension {name!r} in taxonomy {self.name!r}")

    def normalize(self, dimension: str, raw: object) -> str | None:
        return self.dimension(dimension).normalize(raw)

    # ---- files -------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> "Taxonomy":
        from confprofile.files import read_yaml_model

        return read_yaml_model(Path(path), cls, "'dimensions'")

    @classmethod
    def builtin(cls, name: str = "profilebench") -> "Taxonomy":
        """A taxonomy shipped in the package (`profilebench`, `movielens`)."""
        with resources.as_file(resources.files("confprofile") / "taxonomies" / f"{name}.yaml") as path:
            if not path.exists():
                raise KeyError(f"no built-in taxonomy {name!r}")
            return cls.from_yaml(path)

    @classmethod
    def load(cls, spec: str | Path) -> "Taxonomy":
        """A YAML path, or the name of a built-in taxonomy."""
        path = Path(spec)
        if path.suffix in {".yaml", ".yml"} or path.exists():
            return cls.from_yaml(path)
        try:
            return cls.builtin(str(spec))
        except KeyError:
            names = sorted(p.name.removesuffix(".yaml") for p in (resources.files("confprofile") / "taxonomies").iterdir())
            raise InputError(spec, None, "taxonomy", f"neither a YAML file nor a built-in taxonomy ({', '.join(names)})") from None

    def to_yaml(self, path: str | Path) -> None:
        from confprofile.files import atomic_write_text

        atomic_write_text(path, yaml.safe_dump(self.model_dump(), sort_keys=False, allow_unicode=True))
