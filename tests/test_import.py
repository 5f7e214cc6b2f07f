"""MovieLens-100K and CSV/Parquet importers: formats, gold/user separation, errors naming file/line/field."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from confprofile.importers.csv_import import convert, import_table
from confprofile.cli.data import import_app
from confprofile.importers.movielens import age_group, import_movielens, load_movielens, zip_region
from confprofile.errors import InputError
from confprofile.taxonomy import Taxonomy

GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES)


def _stamp(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp())


def write_movielens(folder: Path, extra_user_line: str | None = None, extra_data_line: str | None = None) -> Path:
    """A three-user MovieLens-100K folder in the original formats (u.item in latin-1)."""
    folder.mkdir(parents=True, exist_ok=True)
    users = ["1|24|M|technician|85711", "2|53|F|other|94043", "3|17|F|none|T8H1N"]
    if extra_user_line:
        users.append(extra_user_line)
    (folder / "u.user").write_text("\n".join(users) + "\n", encoding="latin-1")
    kids = "Children's"
    items = [
        f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{_flags('Animation', kids, 'Comedy')}",
        f"2|Misérables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Miserables|{_flags('Drama', 'Musical')}",
        f"3|unknown||||{_flags('unknown')}",
    ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    data = [f"1\t1\t5\t{_stamp('1997-10-01')}", f"1\t2\t3\t{_stamp('1998-03-15')}", f"2\t2\t4\t{_stamp('1997-12-24')}",
            f"3\t3\t2\t{_stamp('1998-01-02')}", f"3\t1\t4\t{_stamp('1998-01-05')}"]
    if extra_data_line:
        data.append(extra_data_line)
    (folder / "u.data").write_text("\n".join(data) + "\n", encoding="latin-1")
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n", encoding="latin-1")
    occupations = ["administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
                   "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
                   "retired", "salesman", "scientist", "student", "technician", "writer"]
    (folder / "u.occupation").write_text("\n".join(occupations) + "\n", encoding="latin-1")
    return folder


def test_movielens_users_and_gold(tmp_path):
    folder = write_movielens(tmp_path / "ml-100k")
    summary = import_movielens(folder, tmp_path / "out")
    assert summary["users"] == 3 and summary["ratings"] == 5
    users = [json.loads(line) for line in (tmp_path / "out/users.jsonl").read_text(encoding="utf-8").splitlines()]
    gold = [json.loads(line) for line in (tmp_path / "out/gold.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [u["user_id"] for u in users] == ["1", "2", "3"]
    # newest first, latin-1 title decoded, year split off and re-attached, genres spelled out
    assert users[0]["data"]["rated_movies"] == [
        {"title": "Misérables, Les", "year": 1995, "genres": ["Drama", "Musical"], "rating": 3, "date": "1998-03-15"},
        {"title": "Toy Story", "year": 1995, "genres": ["Animation", "Children's", "Comedy"], "rating": 5, "date": "1997-10-01"},
    ]
    assert users[0]["data"]["rating_summary"].startswith("2 ratings from 1997-10-01 to 1998-03-15; mean 4.00/5")
    assert users[0]["data"]["location"] == "USA, ZIP 857xx (AZ, CO, ID, NM, NV, UT, WY)"
    assert users[2]["data"]["location"] == "Canada, postal area T8H"
    assert users[2]["data"]["rated_movies"][1] == {"title": "unknown", "genres": ["unknown"], "rating": 2, "date": "1998-01-02"}
    assert gold == [
        {"user_id": "1", "labels": {"gender": "male", "age_group": "18_24", "occupation": "technician"}},
        {"user_id": "2", "labels": {"gender": "female", "age_group": "45_54", "occupation": "other"}},
        {"user_id": "3", "labels": {"gender": "female", "age_group": "under_18", "occupation": "unemployed"}},
    ]
    taxonomy = Taxonomy.from_yaml(tmp_path / "out/taxonomy.yaml")
    assert taxonomy.name == "movielens" and len(taxonomy.dimension("occupation").labels) == 21
    for row in gold:  # every gold label is a label of the shipped taxonomy
        for dim, label in row["labels"].items():
            assert label in taxonomy.dimension(dim).label_names


def test_movielens_gold_never_in_user_data(tmp_path):
    users, gold = load_movielens(write_movielens(tmp_path / "ml"))
    for user, labels in zip(users, gold):
        text = json.dumps(user["data"]).lower()
        raw_age = {"1": "24", "2": "53", "3": "17"}[user["user_id"]]
        assert f'"{raw_age}"' not in text and f" {raw_age} " not in text
        for word in ["technician", "other", "none", "unemployed", "male", "female", '"m"', '"f"', "85711", "94043"]:
            assert word not in text, (word, user["user_id"])
        assert set(user) == {"user_id", "data"} and set(labels) == {"user_id", "labels"}


def test_movielens_output_loads_and_renders_newest_first(tmp_path):
    from confprofile.data import load_users
    from confprofile.render import render_user

    import_movielens(write_movielens(tmp_path / "ml"), tmp_path / "out")
    user = load_users(tmp_path / "out/users.jsonl")[0]
    full = render_user(user, 400)
    assert "Misérables, Les | year: 1995" in full and "Toy Story" in full
    tight = render_user(user, 75)  # room for one rating: the renderer must keep the newest
    assert "rated_movies (newest 1 of 2)" in tight and "Misérables" in tight and "Toy Story" not in tight


def test_movielens_max_ratings_and_bins(tmp_path):
    users, _ = load_movielens(write_movielens(tmp_path / "ml"), max_ratings=1)
    assert [m["title"] for m in users[0]["data"]["rated_movies"]] == ["Misérables, Les"]
    assert users[0]["data"]["rating_summary"].startswith("2 ratings")  # the summary still covers all ratings
    assert [age_group(a) for a in [7, 17, 18, 24, 25, 34, 35, 44, 45, 54, 55, 73]] == [
        "under_18", "under_18", "18_24", "18_24", "25_34", "25_34", "35_44", "35_44", "45_54", "45_54", "55_plus", "55_plus"]
    assert zip_region("02139") == "USA, ZIP 021xx (CT, MA, ME, NH, NJ, PR, RI, VT)"


@pytest.mark.parametrize(
    "user_line, data_line, file, line, field",
    [
        ("4|abc|M|writer|12345", None, "u.user", 4, "age"),
        ("4|30|X|writer|12345", None, "u.user", 4, "gender"),
        ("4|30|M|astronaut|12345", None, "u.user", 4, "occupation"),
        ("1|30|M|writer|12345", None, "u.user", 4, "user id"),
        ("4|30|M", None, "u.user", 4, None),
        (None, "9\t1\t5\t881250949", "u.data", 6, "user id"),
        (None, "1\t99\t5\t881250949", "u.data", 6, "item id"),
        (None, "1\t1\t7\t881250949", "u.data", 6, "rating"),
    ],
)
def test_movielens_bad_rows_name_file_line_field(tmp_path, user_line, data_line, file, line, field):
    folder = write_movielens(tmp_path / "ml", user_line, data_line)
    with pytest.raises(InputError) as err:
        load_movielens(folder)
    assert Path(err.value.path).name == file and err.value.line == line and err.value.field == field


def test_movielens_missing_folder_or_file(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        load_movielens(tmp_path / "nope")
    folder = write_movielens(tmp_path / "ml")
    (folder / "u.data").unlink()
    with pytest.raises(InputError, match="u.data: file not found"):
        load_movielens(folder)


# ---- CSV / Parquet ------------------------------------------------------------------------------

MAPPING = """\
id: customer
taxonomy: profilebench
sources:
  bio: about
  purchases: {column: orders, list: true, separator: ";"}
  searches: {column: queries, list: true}
gold:
  gender: sex
  age_group: {column: age_code, map: {2: 18_24, 3: 25_34}}
"""

CSV = """\
customer,about,orders,queries,sex,age_code
c1,"Nurse, mum of two",nappies; coffee ;,how to sleep|night shifts,F,3
c2,,gaming mouse,,M,2
c3,retired teacher,,gardening,,
"""


def _write(tmp_path: Path, csv_text: str = CSV, mapping: str = MAPPING) -> tuple[Path, Path]:
    (tmp_path / "users.csv").write_text(csv_text, encoding="utf-8")
    (tmp_path / "mapping.yaml").write_text(mapping, encoding="utf-8")
    return tmp_path / "users.csv", tmp_path / "mapping.yaml"


def test_csv_import_sources_lists_and_gold(tmp_path):
    table, mapping = _write(tmp_path)
    users, gold, taxonomy = convert(table, mapping)
    assert users == [
        {"user_id": "c1", "data": {"bio": "Nurse, mum of two", "purchases": ["nappies", "coffee"],
                                   "searches": ["how to sleep", "night shifts"]}},
        {"user_id": "c2", "data": {"purchases": ["gaming mouse"]}},  # empty cells are left out
        {"user_id": "c3", "data": {"bio": "retired teacher", "searches": ["gardening"]}},
    ]
    assert gold == [{"user_id": "c1", "labels": {"gender": "female", "age_group": "25_34"}},
                    {"user_id": "c2", "labels": {"gender": "male", "age_group": "18_24"}}]
    assert taxonomy.name == "profilebench"
    for user in users:  # gold columns never reach user data
        assert "sex" not in user["data"] and "age_code" not in user["data"]


def test_parquet_matches_csv(tmp_path):
    table, mapping = _write(tmp_path)
    rows = [
        {"customer": "c1", "about": "Nurse, mum of two", "orders": "nappies; coffee ;", "queries": "how to sleep|night shifts", "sex": "F", "age_code": 3},
        {"customer": "c2", "about": None, "orders": "gaming mouse", "queries": None, "sex": "M", "age_code": 2},
        {"customer": "c3", "about": "retired teacher", "orders": None, "queries": "gardening", "sex": None, "age_code": None},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "users.parquet")
    assert convert(tmp_path / "users.parquet", mapping)[:2] == convert(table, mapping)[:2]


def test_csv_cli_writes_run_inputs(tmp_path):
    table, mapping = _write(tmp_path)
    result = CliRunner().invoke(import_app, ["csv", str(table), "--mapping", str(mapping), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "3 users (2 with gold labels)" in result.output
    assert len((tmp_path / "run/users.jsonl").read_text().splitlines()) == 3
    assert Taxonomy.from_yaml(tmp_path / "run/taxonomy.yaml").name == "profilebench"


def test_movielens_cli(tmp_path):
    folder = write_movielens(tmp_path / "ml")
    result = CliRunner().invoke(import_app, ["movielens", str(folder), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "3 users (5 ratings)" in result.output
    assert (tmp_path / "run/gold.jsonl").exists() and (tmp_path / "run/taxonomy.yaml").exists()


@pytest.mark.parametrize(
    "mapping, field, message",
    [
        (MAPPING.replace("about", "biography"), "sources.bio.column", "column 'biography' is not in users.csv"),
        (MAPPING.replace("id: customer", "id: cust"), "id", "column 'cust' is not in"),
        (MAPPING.replace("gender: sex", "hobby: sex"), "gold.hobby", "no dimension 'hobby'"),
        (MAPPING.replace("taxonomy: profilebench", "taxonomy: nosuch"), "taxonomy", "neither a YAML file nor a built-in taxonomy"),
        (MAPPING.replace("  bio: about", "  bio: about\n  leak: sex"), "sources", "must not also be user data"),
        (MAPPING + "colour: red\n", "colour", "Extra inputs"),
        ("id: customer\ntaxonomy: profilebench\n", "sources", "Field required"),
    ],
)
def test_mapping_errors_name_the_field(tmp_path, mapping, field, message):
    table, mapping_path = _write(tmp_path, mapping=mapping)
    with pytest.raises(InputError, match=message) as err:
        convert(table, mapping_path)
    assert Path(err.value.path).name == "mapping.yaml" and err.value.field == field


@pytest.mark.parametrize(
    "bad_row, field, message",
    [
        ("c1,dup,,,F,3", "customer", "duplicate user id 'c1' \\(first on line 2\\)"),
        (",no id,,,F,3", "customer", "empty user id"),
        ("c9,x,,,robot,3", "sex", "'robot' is not a label of 'gender'"),
        ("c9,x,,,F,3,extra", None, "more fields"),
    ],
)
def test_bad_rows_name_file_line_field(tmp_path, bad_row, field, message):
    table, mapping = _write(tmp_path, csv_text=CSV + bad_row + "\n")
    with pytest.raises(InputError, match=message) as err:
        convert(table, mapping)
    assert Path(err.value.path).name == "users.csv" and err.value.line == 5 and err.value.field == field


def test_csv_encoding_error_and_taxonomy_file_beside_mapping(tmp_path):
    table, mapping = _write(tmp_path, mapping=MAPPING.replace("taxonomy: profilebench", "taxonomy: tax.yaml"))
    Taxonomy.builtin("profilebench").to_yaml(tmp_path / "tax.yaml")
    assert len(convert(table, mapping)[0]) == 3
    table.write_bytes(CSV.encode() + "c4,Caf\xe9 owner,,,F,3\n".encode("latin-1"))
    with pytest.raises(InputError, match="not valid utf-8") as err:
        import_table(table, mapping, tmp_path / "out")
    assert err.value.line == 5 and not (tmp_path / "out/users.jsonl").exists()
