"""`backend: rules`: labelling rules written by someone who knows the domain, as a cheap, transparent teacher.

A rules file (YAML) lists rules; each names a dimension, a label, a confidence and a condition on the
rendered user (what every teacher reads): keywords anywhere or in one field, a numeric range of a
field, or a field's value among a list. All conditions of a rule must hold. Per dimension the firing
rule with the highest confidence answers (ties: the first listed), its rationale naming the rule
and the evidence; where no rule fires the teacher abstains (`unknown`). It goes through the same
cache, answers table and aggregation as every other teacher.

    rules:
      - {dimension: gender, label: female, confidence: 0.7, when: {keywords: ["my husband", "mom of"]}}
      - {dimension: age_group, label: 55_plus, confidence: 0.8, when: {field: age, min: 55}}
      - {dimension: occupation, label: student, confidence: 0.6, when: {field: bio, keywords: [student, campus]}}

Fields are the `name: value` lines of the rendered user (`render.render_user`, numbers and codes
already said in words where the taxonomy's `fields` say how: `income: $80,000 a year` still has the
number 80000), so a rule sees a field only when it fits the teacher's `max_user_tokens`.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from confprofile.errors import InputError
from confprofile.files import read_yaml
from confprofile.prompts import format_answer
from confprofile.taxonomy import UNKNOWN, Taxonomy
from confprofile.teachers.base import TEACHERS, ReplyCallback, Teacher, TeacherConfig, TeacherReply, TeacherRequest

_THOUSANDS = r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # 1,250,000 or 80,000.50
_NUMBER = re.compile(rf"{_THOUSANDS}|-?\d+(?:[.,]\d+)?")  # or 71, 1.5, 1,5


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keywords: list[str] = Field(default_factory=list, description="Any of these words or phrases (case-insensitive, whole words).")
    field: str | None = Field(None, description="Look only at this field's value (a `name: value` line of the rendered user).")
    min: float | None = Field(None, description="The field's first number is at least this.")
    max: float | None = Field(None, description="The field's first number is below this.")
    equals: list[str] = Field(default_factory=list, description="The field's value is one of these (case-insensitive).")


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dimension: str
    label: str
    confidence: float = Field(0.7, gt=0.0, le=1.0)
    when: Condition
    name: str | None = Field(None, description="Shown in the rationale; default: the rule's position.")


def field_values(user_text: str) -> dict[str, str]:
    """{field name (lower case): value} of the rendered user's `name: value` lines."""
    values = {}
    for line in user_text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name and not line.startswith("- ") and value.strip():
            values.setdefault(field_key(name), value.strip())
    return values


def field_key(name: str) -> str:
    """A field name as rules and rendered lines both match it: `Body type` and `body_type` are one field
    (a taxonomy's `fields` may render a key under a name in words)."""
    return "_".join(name.strip().lower().replace("_", " ").split())


def number_value(text: str) -> float:
    """A matched number: `80,000` (thousands) is 80000, `1,5` (decimal comma) 1.5."""
    if re.fullmatch(_THOUSANDS, text):
        return float(text.replace(",", ""))
    return float(text.replace(",", "."))


def evidence(condition: Condition, user_text: str, fields: dict[str, str]) -> str | None:
    """What makes the condition hold (for the rationale), or None when it does not."""
    text = fields.get(field_key(condition.field)) if condition.field else user_text
    if text is None:
        return None
    found = []
    if condition.keywords:
        hits = [k for k in condition.keywords if re.search(rf"(?<!\w){re.escape(k)}(?!\w)", text, re.IGNORECASE)]
        if not hits:
            return None
        found.append(f"mentions {', '.join(repr(h) for h in hits[:3])}")
    if condition.min is not None or condition.max is not None:
        number = _NUMBER.search(text)
        value = number_value(number.group()) if number else None
        if value is None or (condition.min is not None and value < condition.min) or (condition.max is not None and value >= condition.max):
            return None
        found.append(f"{condition.field or 'value'} {number.group()}")
    if condition.equals:
        if text.strip().lower() not in {v.lower() for v in condition.equals}:
            return None
        found.append(f"{condition.field} is {text.strip()!r}")
    return "; ".join(found) if found else None


def load_rules(source, taxonomy: Taxonomy, where: str | Path | None = None) -> list[Rule]:
    """Rules from a YAML path or an inline list; labels normalised; InputError names the rule and field."""
    path = Path(source) if isinstance(source, (str, Path)) else None
    raw = read_yaml(path) if path else source
    entries = raw.get("rules") if isinstance(raw, dict) else raw
    where = path or where
    if not isinstance(entries, list) or not entries:
        raise InputError(where, None, "rules", "expected a non-empty list of rules")
    rules = []
    for i, entry in enumerate(entries):
        try:
            rule = Rule.model_validate(entry)
        except ValidationError as exc:
            raise InputError.from_validation(where, exc, prefix=f"rules.{i}") from None
        if rule.dimension not in taxonomy.dimension_names:
            raise InputError(where, None, f"rules.{i}.dimension", f"{rule.dimension!r} is not a dimension of {taxonomy.name!r}")
        label = taxonomy.normalize(rule.dimension, rule.label)
        if label in (None, UNKNOWN):
            raise InputError(where, None, f"rules.{i}.label", f"{rule.label!r} is not a label of {rule.dimension}")
        when = rule.when
        if not (when.keywords or when.equals or when.min is not None or when.max is not None):
            raise InputError(where, None, f"rules.{i}.when", "needs keywords, equals, min or max")
        rules.append(rule.model_copy(update={"label": label, "name": rule.name or f"rule {i + 1}"}))
    return rules


@TEACHERS.register("rules")
class RulesTeacher(Teacher):
    """`params.rules`: a rules YAML path or an inline list (see the module docstring)."""

    def __init__(self, config: TeacherConfig, taxonomy: Taxonomy):
        super().__init__(config, taxonomy)
        if "rules" not in config.params:
            raise InputError(None, None, f"teachers.{config.name}.params.rules", "the rules teacher needs a rules file or list")
        self.rules = load_rules(config.params["rules"], taxonomy, where=f"teacher {config.name}")

    def identity(self) -> dict:
        return {**super().identity(), "rules": [rule.model_dump() for rule in self.rules]}  # an edited file is a new teacher

    def profile(self, user_text: str) -> dict[str, dict]:
        fields = field_values(user_text)
        profile = {dim: {"label": UNKNOWN, "confidence": 0.0, "rationale": "no rule fired"} for dim in self.taxonomy.dimension_names}
        for rule in self.rules:
            current = profile[rule.dimension]
            if rule.confidence <= current["confidence"]:
                continue
            found = evidence(rule.when, user_text, fields)
            if found is not None:
                profile[rule.dimension] = {"label": rule.label, "confidence": rule.confidence, "rationale": f"{rule.name}: {found}"}
        return profile

    def answer(self, requests: list[TeacherRequest], on_reply: ReplyCallback) -> None:
        for request in requests:
            on_reply(request, TeacherReply(format_answer(self.profile(request.user_text))))
