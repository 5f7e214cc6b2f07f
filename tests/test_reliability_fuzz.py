"""Parser fuzz: >= 1,000 garbage and mutated teacher outputs through `parse_answer`.

Every output, however broken, gives one ParsedAnswer per dimension with an allowed status, a finite
confidence in [0, 1] and a label that is a taxonomy label, `unknown`, or None (then the status says
why). Hypothesis runs derandomized, so the examples are the same on every run.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confprofile.prompts import PARSE_STATUSES, format_answer, parse_answer
from confprofile.taxonomy import UNKNOWN, Taxonomy

TAX = Taxonomy.builtin("profilebench")
LABELS = {dim.name: {*dim.label_names, UNKNOWN} for dim in TAX.dimensions}


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))


EXAMPLES = {"text": 300, "mutated": 600, "json": 200}  # 1,100 in all; the report quotes this sum

JUNK = st.sampled_from([
    "}", "{", "]", "[", '"', "'", ",", ":", "```", "```json\n", "\\", "\x00", "NaN", "Infinity", "-Infinity", "null",
    "1e999", "-1e999", "9" * 400, "{{{{{{", "]]]]", '{"a": [1, {"b": ', "\u202e", "🙂", "<user_data>", "</user_data>",
    '"label": ', '"confidence": ', "Rationale:", "\n\n", "percent", "%", "ignore the above",
])


def check(parsed, text) -> None:
    """The invariants every parse must hold."""
    assert list(parsed) == TAX.dimension_names, text
    for dim, answer in parsed.items():
        assert answer.status in PARSE_STATUSES and answer.status != "error", (text, answer)  # error: request failures only
        assert isinstance(answer.confidence, float) and math.isfinite(answer.confidence) and 0.0 <= answer.confidence <= 1.0, (text, answer)
        assert isinstance(answer.rationale, str)
        if answer.label is None:
            assert answer.status in {"missing", "invalid"}, (text, answer)
        else:
            assert answer.label in LABELS[dim], (text, answer)
            assert answer.status in {"ok", "normalized", "abstain"}, (text, answer)
            assert (answer.label == UNKNOWN) == (answer.status == "abstain"), (text, answer)


@st.composite
def valid_answers(draw) -> str:
    """A well-formed answer in the canonical format (format_answer), sometimes missing dimensions."""
    profile = {}
    for dim in TAX.dimensions:
        if draw(st.integers(0, 9)) == 0:
            continue
        profile[dim.name] = {"label": draw(st.sampled_from(sorted(LABELS[dim.name]))),
                             "confidence": draw(st.floats(0, 1)), "rationale": draw(st.text(max_size=30))}
    rationale = draw(st.one_of(st.none(), st.text(max_size=40)))
    return format_answer(profile, rationale)


CONFIDENCE_JUNK = ['1e999', '-1e999', 'NaN', 'Infinity', '-Infinity', '"NaN"', '"inf"', '1' + '0' * 500, '-7', '250',
                   '"120%"', '"very very high"', 'null', 'true', '[0.5]', '{"x": 1}', '"0.8.8"', '0x1F', '"½"']


@st.composite
def mutated_answers(draw) -> str:
    """A valid answer after 1-4 random mutations: truncation, inserted garbage, swapped quotes, deleted
    braces, junk confidences (huge, NaN, infinite, typed wrong), nested wrappers, duplicated text."""
    text = draw(valid_answers())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "insert", "quotes", "braces", "confidence", "nest", "duplicate", "fence", "delete"]))
        at = draw(st.integers(0, len(text)))
        if kind == "truncate":
            text = text[:at]
        elif kind == "insert":
            text = text[:at] + draw(st.one_of(JUNK, st.text(max_size=20))) + text[at:]
        elif kind == "quotes":
            text = text.replace('"', draw(st.sampled_from(["'", "“", "`", ""])))
        elif kind == "braces":
            text = text.replace(draw(st.sampled_from(["{", "}", "[", "]", ":", ","])), "", draw(st.integers(1, 3)))
        elif kind == "confidence":
            junk = draw(st.sampled_from(CONFIDENCE_JUNK))
            text = text.replace('"confidence": ', '"confidence": ' + junk + " , \"x\": ", draw(st.integers(1, 3)))
        elif kind == "nest":
            text = draw(st.sampled_from(['{"profile": %s}', "[%s, %s]", '{"a": {"b": {"c": %s}}}', "```json\n%s\n```", "%s%s"])).replace("%s", text)
        elif kind == "duplicate":
            text = text[:at] + text + text[at:]
        elif kind == "fence":
            text = "Sure! Here is the profile:\n```\n" + text + "\n``` hope it helps {"
        else:
            end = draw(st.integers(at, min(len(text), at + 40)))
            text = text[:at] + text[end:]
    return text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=15)
    | st.sampled_from(sorted({label for labels in LABELS.values() for label in labels}) + TAX.dimension_names),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.one_of(st.sampled_from(TAX.dimension_names + ["label", "confidence", "rationale", "profile"]), st.text(max_size=8)),
        children, max_size=5),
    max_leaves=25,
)


@fuzz(EXAMPLES["text"])
@given(st.one_of(st.text(max_size=400), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_text_never_raises(text):
    check(parse_answer(text, TAX), text)


@fuzz(EXAMPLES["mutated"])
@given(mutated_answers())
def test_mutated_valid_answers_parse_or_are_marked(text):
    check(parse_answer(text, TAX), text)


@fuzz(EXAMPLES["json"])
@given(json_values)
def test_json_shaped_junk_never_raises(obj):
    text = json.dumps(obj, allow_nan=True)
    check(parse_answer(text, TAX), text)


@fuzz(100)
@given(valid_answers())
def test_unmutated_answers_round_trip(text):
    """The control group: a well-formed answer parses back to exactly what was written."""
    parsed = parse_answer(text, TAX)
    check(parsed, text)
    body = json.loads(text.split("\n", 1)[1] if text.startswith("Rationale:") else text)
    for dim in TAX.dimension_names:
        if dim in body:
            assert parsed[dim].label == body[dim]["label"]
            assert parsed[dim].confidence == min(max(body[dim]["confidence"], 0.0), 1.0)
        else:
            assert parsed[dim].status == "missing"


def test_one_huge_number_spoils_only_its_own_dimension():
    """A 500-digit confidence (overflows float) must not take the other dimensions down with it."""
    good = {dim: {"label": UNKNOWN, "confidence": 0.5, "rationale": ""} for dim in TAX.dimension_names}
    text = format_answer(good).replace('"confidence": 0.5', '"confidence": 1' + "0" * 500, 1)
    parsed = parse_answer(text, TAX)
    check(parsed, text)
    first, *rest = TAX.dimension_names
    assert all(parsed[dim].status == "abstain" for dim in rest), {d: parsed[d].status for d in rest}
    assert parsed[first].label in (UNKNOWN, None)
