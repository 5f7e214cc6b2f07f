"""The rules teacher: keywords, numeric ranges and field values -> a label at the rule's confidence,
abstaining where no rule fires, through the same cache and answers table as every teacher."""

from __future__ import annotations

import pytest

from confprofile.data import UserRecord
from confprofile.errors import InputError
from confprofile.label import label_users
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TeacherConfig, build_teacher

RULES = [
    {"dimension": "gender", "label": "female", "confidence": 0.7, "when": {"keywords": ["my husband", "mom of"]}},
    {"dimension": "age_group", "label": "55_plus", "confidence": 0.8, "when": {"field": "age", "min": 55}},
    {"dimension": "age_group", "label": "18_24", "confidence": 0.6, "when": {"field": "age", "min": 18, "max": 25}},
    {"dimension": "occupation", "label": "student", "confidence": 0.6, "when": {"field": "status", "equals": ["Student", "undergrad"]}},
]
USERS = [
    UserRecord(user_id="a", data={"bio": "Mom of two, I love my husband", "age": 61, "status": "retired"}),
    UserRecord(user_id="b", data={"bio": "momentum trader", "age": 21, "status": "student"}),  # "mom" only inside a word
    UserRecord(user_id="c", data={"bio": "hello"}),
]


def teacher_config(rules=RULES) -> TeacherConfig:
    return TeacherConfig(name="rules", backend="rules", temperature=0.0, params={"rules": rules})


def test_rules_fire_on_keywords_ranges_and_values_and_abstain_otherwise(tmp_path):
    answers = label_users(USERS, Taxonomy.builtin(), [teacher_config()], tmp_path / "cache.sqlite", show_progress=False)
    got = {(r.user_id, r.dimension): (r.label, r.confidence, r.parse_status) for r in answers.itertuples()}
    assert got["a", "gender"][:2] == ("female", 0.7) and got["a", "age_group"][:2] == ("55_plus", 0.8)
    assert got["b", "gender"][2] == "abstain" and got["b", "age_group"][:2] == ("18_24", 0.6)
    assert got["b", "occupation"][:2] == ("student", 0.6) and got["a", "occupation"][2] == "abstain"
    assert all(got["c", d][2] == "abstain" for d in Taxonomy.builtin().dimension_names)
    rationale = answers[(answers.user_id == "a") & (answers.dimension == "gender")].rationale.iloc[0]
    assert "rule 1" in rationale and "mom of" in rationale
    again = label_users(USERS, Taxonomy.builtin(), [teacher_config()], tmp_path / "cache.sqlite", show_progress=False)
    assert again.equals(answers)  # answered from the cache


def test_edited_rules_are_a_new_teacher_for_the_cache():
    edited = [dict(RULES[0], confidence=0.9), *RULES[1:]]
    taxonomy = Taxonomy.builtin()
    assert build_teacher(teacher_config(), taxonomy).identity() != build_teacher(teacher_config(edited), taxonomy).identity()


@pytest.mark.parametrize("rule, field", [
    ({"dimension": "shoe_size", "label": "x", "when": {"keywords": ["a"]}}, "rules.0.dimension"),
    ({"dimension": "gender", "label": "robot", "when": {"keywords": ["a"]}}, "rules.0.label"),
    ({"dimension": "gender", "label": "male", "when": {"field": "bio"}}, "rules.0.when"),
    ({"dimension": "gender", "label": "male", "confidence": 2, "when": {"keywords": ["a"]}}, "rules.0.confidence"),
])
def test_a_bad_rule_names_its_field(rule, field, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(__import__("json").dumps({"rules": [rule]}))
    with pytest.raises(InputError) as err:
        build_teacher(TeacherConfig(name="rules", backend="rules", params={"rules": str(path)}), Taxonomy.builtin())
    assert err.value.field == field and str(path) in str(err.value)


def test_rules_read_fields_said_in_words(tmp_path):
    """With the taxonomy's `fields`, rules see `yearly income: $80,000 a year`: the field still matches by
    its key and the number is 80000 (a thousands separator, not a decimal comma)."""
    raw = Taxonomy.builtin().model_dump()
    raw["fields"] = {"income": {"name": "yearly income", "format": "${:,} a year"}}
    taxonomy = Taxonomy.model_validate(raw)
    rules = [{"dimension": "consumption_level", "label": "high", "confidence": 0.7, "when": {"field": "yearly_income", "min": 50000}}]
    users = [UserRecord(user_id="rich", data={"income": 80000}), UserRecord(user_id="poor", data={"income": 900})]
    answers = label_users(users, taxonomy, [teacher_config(rules)], tmp_path / "cache.sqlite", show_progress=False)
    got = answers[answers.dimension == "consumption_level"].set_index("user_id")
    assert got.loc["rich", "label"] == "high" and "80,000" in got.loc["rich", "rationale"]
    assert got.loc["poor", "parse_status"] == "abstain"
