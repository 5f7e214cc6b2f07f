"""User and gold loading (every bad-input case names file, line and field), and prompt rendering."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confprofile.data import UserRecord, load_gold, load_users, read_jsonl
from confprofile.render import approx_tokens, make_token_counter, render_user
from confprofile.errors import InputError
from confprofile.taxonomy import Taxonomy


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _error(fn, *args) -> InputError:
    with pytest.raises(InputError) as info:
        fn(*args)
    return info.value


GOOD = '{"user_id": "a", "data": {"bio": "hi"}}\n'


# ---- load_users: JSONL -----------------------------------------------------------------------------


def test_jsonl_loads_nested_data_and_skips_blank_lines(tmp_path):
    path = _write(tmp_path, "u.jsonl", GOOD + "\n" + '{"user_id": 7, "data": {"videos": [{"title": "x", "tags": ["a"]}]}}\n')
    users = load_users(path)
    assert [u.user_id for u in users] == ["a", "7"]
    assert users[1].data["videos"][0]["tags"] == ["a"]
    assert [line for line, _ in read_jsonl(path)] == [1, 3]


def test_flat_rows_become_sources(tmp_path):
    users = load_users(_write(tmp_path, "u.jsonl", '{"user_id": "a", "bio": "hi", "data": {"city": "x"}}\n'))
    assert users[0].data == {"city": "x", "bio": "hi"}


@pytest.mark.parametrize(
    ("content", "line", "field", "words"),
    [
        (GOOD + '{"user_id": "b", "data": {\n', 2, None, "invalid JSON"),
        (GOOD + '["b", {}]\n', 2, None, "expected a JSON object"),
        (GOOD + '{"user_id": "b", "data": ["x"]}\n', 2, "data", "must be an object"),
        (GOOD + '{"user_id": ["b"], "data": {}}\n', 2, "user_id", "string or an integer"),
        (GOOD + '{"user_id": true, "data": {}}\n', 2, "user_id", "string or an integer"),
        (GOOD + '{"data": {"bio": "x"}}\n', 2, "user_id", "missing user_id"),
        (GOOD + '{"user_id": "  ", "data": {}}\n', 2, "user_id", "missing user_id"),
        (GOOD + GOOD.replace("hi", "yo") + GOOD, 2, "user_id", "duplicate user_id 'a' (first on line 1)"),
        (GOOD + '{"user_id": "b", "bio": "x", "data": {"bio": "y"}}\n', 2, "bio", "both"),
    ],
)
def test_jsonl_bad_input_names_line_and_field(tmp_path, content, line, field, words):
    path = _write(tmp_path, "users.jsonl", content)
    err = _error(load_users, path)
    assert (err.line, err.field) == (line, field)
    assert words in err.message
    text = str(err)
    assert text.startswith(f"{path}:{line}") and "\n" not in text
    if field:
        assert f"field '{field}'" in text


def test_invalid_utf8_names_the_line(tmp_path):
    path = _write(tmp_path, "users.jsonl", GOOD.encode() + b'{"user_id": "b", "data": {"bio": "\xff\xfe"}}\n')
    err = _error(load_users, path)
    assert err.line == 2 and "UTF-8" in err.message


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_file(tmp_path, content):
    err = _error(load_users, _write(tmp_path, "users.jsonl", content))
    assert "empty" in err.message


def test_missing_file_and_unknown_extension(tmp_path):
    assert "not found" in _error(load_users, tmp_path / "nope.jsonl").message
    assert "unknown file type" in _error(load_users, _write(tmp_path, "users.txt", GOOD)).message


# ---- load_users: CSV and Parquet ---------------------------------------------------------------------


def test_csv_round_trip(tmp_path):
    content = ('user_id,bio,videos,searches\n'
               'a,"likes hiking, cooking","[{""title"": ""v1"", ""tags"": [""x""]}]",\n'
               'b,"two\nlines",,"[""q1"", ""q2""]"\n'
               '3,[not json,,\n')
    users = load_users(_write(tmp_path, "users.csv", content))
    assert [u.user_id for u in users] == ["a", "b", "3"]
    assert users[0].data == {"bio": "likes hiking, cooking", "videos": [{"title": "v1", "tags": ["x"]}]}
    assert users[1].data == {"bio": "two\nlines", "searches": ["q1", "q2"]}
    assert users[2].data == {"bio": "[not json"}  # kept as text, empty cells dropped


def test_csv_bad_input(tmp_path):
    err = _error(load_users, _write(tmp_path, "a.csv", "id,bio\n1,x\n"))
    assert (err.line, err.field) == (1, "user_id")
    # the duplicate sits after a quoted cell spanning two physical lines: line 4
    err = _error(load_users, _write(tmp_path, "b.csv", 'user_id,bio\na,"x\ny"\na,z\n'))
    assert (err.line, err.field) == (4, "user_id") and "duplicate" in err.message
    err = _error(load_users, _write(tmp_path, "c.csv", "user_id,bio\na,x\n,y\n"))
    assert (err.line, err.field) == (3, "user_id")
    err = _error(load_users, _write(tmp_path, "d.csv", b"user_id,bio\na,x\nb,\xc3\x28\n"))
    assert err.line == 3 and "UTF-8" in err.message
    assert "empty" in _error(load_users, _write(tmp_path, "e.csv", "")).message
    assert "empty" in _error(load_users, _write(tmp_path, "f.csv", "user_id,bio\n")).message


def test_parquet_columns_round_trip(tmp_path):
    table = pa.table({
        "user_id": ["a", "b"],
        "bio": ["hello", None],
        "videos": [[{"title": "v1", "watch_seconds": 3}], []],
        "tags": ['["x", "y"]', ""],
    })
    path = tmp_path / "users.parquet"
    pq.write_table(table, path)
    users = load_users(path)
    assert users[0].data == {"bio": "hello", "videos": [{"title": "v1", "watch_seconds": 3}], "tags": ["x", "y"]}
    assert users[1].data == {}


def test_parquet_data_column_struct_and_json(tmp_path):
    struct = pa.table({"user_id": [1, 2], "data": [{"bio": "x", "city": None}, {"bio": "y", "city": "z"}]})
    pq.write_table(struct, tmp_path / "s.parquet")
    assert [u.data for u in load_users(tmp_path / "s.parquet")] == [{"bio": "x"}, {"bio": "y", "city": "z"}]
    text = pa.table({"user_id": ["a", "b"], "data": ['{"bio": "x"}', '"oops"']})
    pq.write_table(text, tmp_path / "t.parquet")
    err = _error(load_users, tmp_path / "t.parquet")
    assert (err.line, err.field) == (2, "data")


def test_parquet_bad_input(tmp_path):
    pq.write_table(pa.table({"uid": ["a"]}), tmp_path / "a.parquet")
    assert _error(load_users, tmp_path / "a.parquet").field == "user_id"
    pq.write_table(pa.table({"user_id": ["a", "b", "a"]}), tmp_path / "b.parquet")
    err = _error(load_users, tmp_path / "b.parquet")
    assert (err.line, err.field) == (3, "user_id")
    assert "Parquet" in _error(load_users, _write(tmp_path, "c.parquet", b"not parquet")).message


# ---- load_gold ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def taxonomy():
    return Taxonomy.builtin("profilebench")


def test_gold_normalises_with_taxonomy(tmp_path, taxonomy):
    path = _write(tmp_path, "gold.jsonl", '{"user_id": "a", "labels": {"gender": "Male", "age_group": "25-34", "education": "unknown"}}\n'
                                         '{"user_id": "b", "labels": {"gender": null}}\n')
    assert load_gold(path, taxonomy) == {"a": {"gender": "male", "age_group": "25_34"}, "b": {}}
    assert load_gold(path)["a"]["gender"] == "Male"  # without a taxonomy labels are kept verbatim


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ('{"user_id": "b", "labels": {"gender": "robot"}}', "labels.gender", "not a label of gender"),
        ('{"user_id": "b", "labels": {"height": "tall"}}', "labels.height", "not in taxonomy"),
        ('{"user_id": "b", "labels": {"gender": 1}}', "labels.gender", "must be a string"),
        ('{"user_id": "b", "labels": ["male"]}', "labels", "must be an object"),
        ('{"labels": {"gender": "male"}}', "user_id", "missing"),
        ('{"user_id": "a", "labels": {"gender": "male"}}', "user_id", "duplicate"),
        ('{"user_id": "b", "labels": {', None, "invalid JSON"),
    ],
)
def test_gold_bad_input(tmp_path, taxonomy, row, field, words):
    path = _write(tmp_path, "gold.jsonl", '{"user_id": "a", "labels": {"gender": "female"}}\n' + row + "\n")
    err = _error(load_gold, path, taxonomy)
    assert (err.line, err.field) == (2, field) and words in err.message


def test_gold_empty_missing_and_bad_utf8(tmp_path, taxonomy):
    assert "empty" in _error(load_gold, _write(tmp_path, "g.jsonl", ""), taxonomy).message
    assert "not found" in _error(load_gold, tmp_path / "none.jsonl", taxonomy).message
    assert _error(load_gold, _write(tmp_path, "h.jsonl", b'{"user_id": "\xff"}\n'), taxonomy).line == 1


# ---- rendering --------------------------------------------------------------------------------------


def _user(**data) -> UserRecord:
    return UserRecord(user_id="u", data=data)


BIG = _user(
    bio="I love hiking and cooking; mother of two. " * 40,
    nickname="Mom123",
    videos=[{"title": f"video {i}", "tags": ["kids", "cartoon"], "watch_seconds": i} for i in range(300)],
    searches=["kids shoes", "cheap flights"],
    location={"city": "Chengdu", "province": "Sichuan"},
    comments=[f"comment number {i} " * 3 for i in range(50)],
    device="iPhone 13",
)


def test_section_order_and_formatting():
    text = render_user(_user(zeta="z", alpha=["a1"], device="d", bio="b", nickname="n", location={"city": "c", "zip": 1}))
    assert text.splitlines() == ["nickname: n", "bio: b", "location: city: c | zip: 1", "device: d", "alpha:", "- a1", "zeta: z"]


def _items(lines: list[str], source: str):
    start = next(i for i, line in enumerate(lines) if line.startswith(source))
    for line in lines[start + 1:]:
        if not line.startswith("- "):
            return
        yield line


@pytest.mark.parametrize("budget", [48, 96, 160, 256, 512, 1024])
def test_budget_respected_and_every_source_kept(budget):
    text = render_user(BIG, budget)
    assert approx_tokens(text) <= budget
    lines = text.splitlines()
    for source in BIG.data:
        assert any(line.startswith(source) for line in lines), source
    if budget < 64:  # seven headings alone take most of a tiny budget
        return
    kept = {name: sum(1 for _ in _items(lines, name)) for name in ("searches", "videos", "comments")}
    assert kept["searches"] >= min(2, kept["videos"], kept["comments"]) >= 1  # long lists don't starve short ones
    assert "- cheap flights" in lines and ("- kids shoes" in lines or budget < 128)
    assert "nickname: Mom123" in lines and "device: iPhone 13" in lines
    assert sum(line.startswith("- comment") for line in lines) >= 1
    assert any("video 299" in line for line in lines)  # the newest item survives
    assert "video 0 " not in text


def test_newest_items_survive_by_time_field():
    items = [{"text": f"event {i}", "time": f"2024-01-{i + 1:02d}"} for i in range(28)]
    random.Random(0).shuffle(items)
    text = render_user(_user(events=items), 40)
    assert "event 27" in text and "event 0 " not in text
    kept = [int(line.split()[2]) for line in text.splitlines()[1:]]
    assert kept == sorted(kept) and kept[-1] == 27  # chronological, newest run
    assert text.splitlines()[0].startswith(f"events (newest {len(kept)} of 28)")


def test_long_string_cut_with_ellipsis():
    text = render_user(_user(bio="word " * 2000), 50)
    assert text.endswith("…") and approx_tokens(text) <= 50


def test_deterministic_and_independent_of_source_order():
    reordered = UserRecord(user_id="u", data=dict(reversed(list(BIG.data.items()))))
    assert render_user(BIG, 200) == render_user(BIG, 200) == render_user(reordered, 200)


def test_custom_counter_and_make_token_counter():
    class FakeTokenizer:  # one token per character, plus special tokens the counter must not count
        def encode(self, text, add_special_tokens=True):
            return [0] * (len(text) + (2 if add_special_tokens else 0))

    count = make_token_counter(FakeTokenizer())
    assert count("abc") == 3
    text = render_user(BIG, 300, count)
    assert len(text) <= 300 and "nickname: Mom123" in text


def test_empty_user_and_approx_tokens():
    assert render_user(_user(bio="", videos=[])) == "(no data)"
    assert approx_tokens("") == 0
    assert approx_tokens("hello world") == 2
    assert approx_tokens("internationalization!") == 6  # 20 letters -> 5, plus the "!"
    assert approx_tokens("你好") == 2
    assert approx_tokens("born 1990") == 5  # digits count one each, as in Llama-style tokenizers


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
_value = st.one_of(_text, st.integers(), st.lists(_text, max_size=30),
                   st.lists(st.fixed_dictionaries({"title": _text, "n": st.integers()}), max_size=30),
                   st.dictionaries(st.sampled_from(["a", "b"]), _text, max_size=2))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.dictionaries(st.sampled_from(["bio", "nickname", "videos", "likes", "x", "y_z"]), _value, max_size=6),
       budget=st.integers(1, 400), chars=st.booleans())
def test_never_over_budget(data, budget, chars):
    count = (lambda s: len(s) // 3 + s.count("\n")) if chars else approx_tokens  # a non-additive counter too
    text = render_user(UserRecord(user_id="u", data=data), budget, count)
    assert count(text) <= budget
    assert text == render_user(UserRecord(user_id="u", data=data), budget, count)


def test_users_jsonl_written_by_json_dumps_round_trips(tmp_path):
    rows = [{"user_id": f"u{i}", "data": {"bio": f"b{i}", "likes": list(range(i))}} for i in range(5)]
    path = _write(tmp_path, "u.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert [u.model_dump() for u in load_users(path)] == rows


# ---- fields said in words, and what a cut list would have told ----------------------------------------


def test_fields_are_said_in_words_at_any_depth():
    taxonomy = Taxonomy.model_validate({"name": "dating", "dimensions": [{"name": "sex", "labels": [{"name": "m"}, {"name": "f"}]}],
                                        "fields": {"height": {"unit": "inches"}, "income": {"format": "${:,} a year"},
                                                   "status": {"codes": {"1": "single", "2": "married"}},
                                                   "body_type": {"name": "body type"}, "rating": {"unit": "stars"}}})
    user = _user(height=71, income=80000.0, status=2, body_type="athletic", reviews=[{"title": "Heat", "rating": 4}], note="tall")
    text = render_user(user, 200, fields=taxonomy.fields)
    for line in ("height: 71 inches", "income: $80,000 a year", "status: married", "body type: athletic", "- Heat | rating: 4 stars", "note: tall"):
        assert line in text.splitlines(), (line, text)
    assert render_user(user, 200) != text and "height: 71" in render_user(user, 200).splitlines()  # without fields: as stored
    with pytest.raises(ValueError, match="must format one number"):
        Taxonomy.model_validate({**taxonomy.model_dump(), "fields": {"income": {"format": "{:d} {}"}}})


def test_a_cut_list_says_its_date_range_and_commonest_categories_within_the_budget():
    movies = [{"title": f"Movie {i}", "genres": ["drama"] + (["comedy"] if i % 2 else []), "date": f"2020-01-{i + 1:02d}"}
              for i in range(30)]
    user = _user(bio="film fan", rated=movies)
    for budget in (30, 60, 120, 400):
        text = render_user(user, budget)
        assert approx_tokens(text) <= budget
    heading = next(line for line in render_user(user, 200).splitlines() if line.startswith("rated ("))
    assert "of 30; 2020-01-01 to 2020-01-30; most common genres: drama 30, comedy 15" in heading
    assert "most common" not in render_user(user, 60)  # a tight budget keeps items, not summaries
    assert render_user(_user(rated=movies[:3]), 400).splitlines()[0] == "rated:"  # nothing cut: no summary
