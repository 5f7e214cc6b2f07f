"""MovieLens-100K folder -> `users.jsonl` + `gold.jsonl` + `taxonomy.yaml`.

The teachers see only what a rater did: the movies they rated (title, year, genres,
stars, date, newest first), a summary of those ratings and a coarse ZIP region.
Gender, age and occupation go to `gold.jsonl` only, so nothing a teacher reads can
leak the answer. The files are the GroupLens originals (`u.user`, `u.data`, `u.item`,
`u.genre`, `u.occupation`); `u.item` is latin-1, so every file is read as latin-1
(a superset of the ASCII the others use). No MovieLens data ships with confprofile.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from confprofile.errors import InputError
from confprofile.files import atomic_write_jsonl
from confprofile.taxonomy import Taxonomy

ENCODING = "latin-1"
AGE_BINS = [(17, "under_18"), (24, "18_24"), (34, "25_34"), (44, "35_44"), (54, "45_54")]
GENDERS = {"M": "male", "F": "female"}
OCCUPATION_RENAMES = {"none": "unemployed"}  # 'none' would read as an abstention
DEFAULT_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]
# First digit of a US ZIP code -> the states it covers (USPS national areas).
ZIP_AREAS = {
    "0": "CT, MA, ME, NH, NJ, PR, RI, VT", "1": "DE, NY, PA", "2": "DC, MD, NC, SC, VA, WV",
    "3": "AL, FL, GA, MS, TN", "4": "IN, KY, MI, OH", "5": "IA, MN, MT, ND, SD, WI", "6": "IL, KS, MO, NE",
    "7": "AR, LA, OK, TX", "8": "AZ, CO, ID, NM, NV, UT, WY", "9": "AK, CA, HI, OR, WA",
}
_YEAR_IN_TITLE = re.compile(r"\s*\((\d{4})\)\s*$")


@dataclass(frozen=True)
class Movie:
    title: str  # without the trailing "(year)"
    year: int | None
    genres: tuple[str, ...]


def age_group(age: int) -> str:
    for upper, label in AGE_BINS:
        if age <= upper:
            return label
    return "55_plus"


def zip_region(zip_code: str) -> str:
    """A coarse, non-identifying location: country and 3-digit ZIP prefix with its states."""
    zip_code = zip_code.strip().upper()
    if re.fullmatch(r"\d{5}(-\d{4})?", zip_code):
        return f"USA, ZIP {zip_code[:3]}xx ({ZIP_AREAS[zip_code[0]]})"
    if re.fullmatch(r"[A-Z]\d[A-Z]\s?\d?[A-Z]?\d?", zip_code):
        return f"Canada, postal area {zip_code[:3]}"
    return f"postal code {zip_code[:3]}..." if zip_code else "unknown"


def _lines(path: Path):
    """(line number, text) of the non-blank lines of a MovieLens file."""
    if not path.is_file():
        raise InputError(path, None, None, "file not found (expected a MovieLens-100K folder: u.user, u.data, u.item)")
    with open(path, encoding=ENCODING, newline="") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line


def _int(text: str, path: Path, line: int, field: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InputError(path, line, field, f"expected an integer, got {text!r}") from None


def read_genres(folder: Path) -> list[str]:
    path = folder / "u.genre"
    if not path.exists():
        return DEFAULT_GENRES
    genres: dict[int, str] = {}
    for number, line in _lines(path):
        name, _, index = line.rpartition("|")
        genres[_int(index, path, number, "index")] = name
    if sorted(genres) != list(range(len(genres))):
        raise InputError(path, None, "index", f"genre indices must be 0..{len(genres) - 1}")
    return [genres[i] for i in range(len(genres))]


def read_movies(folder: Path, genres: list[str]) -> dict[int, Movie]:
    path = folder / "u.item"
    movies: dict[int, Movie] = {}
    for number, line in _lines(path):
        fields = line.split("|")
        if len(fields) != 5 + len(genres):
            raise InputError(path, number, None, f"expected {5 + len(genres)} '|'-separated fields, got {len(fields)}")
        item = _int(fields[0], path, number, "movie id")
        flags = fields[5:]
        if any(flag not in {"0", "1"} for flag in flags):
            raise InputError(path, number, "genres", "genre flags must be 0 or 1")
        title, year = fields[1].strip(), None
        match = _YEAR_IN_TITLE.search(title)
        if match:
            title, year = title[: match.start()], int(match.group(1))
        elif re.search(r"\d{4}$", fields[2].strip()):  # release date like 01-Jan-1995
            year = int(fields[2].strip()[-4:])
        movies[item] = Movie(title, year, tuple(g for g, flag in zip(genres, flags) if flag == "1"))
    return movies


def read_occupations(folder: Path) -> set[str] | None:
    path = folder / "u.occupation"
    return {line.strip() for _, line in _lines(path)} if path.exists() else None


def read_users(folder: Path, taxonomy: Taxonomy) -> dict[int, tuple[str, dict[str, str]]]:
    """user id -> (zip code, gold labels)."""
    path, known = folder / "u.user", read_occupations(folder)
    users: dict[int, tuple[str, dict[str, str]]] = {}
    for number, line in _lines(path):
        fields = line.split("|")
        if len(fields) != 5:
            raise InputError(path, number, None, f"expected 5 '|'-separated fields (id|age|gender|occupation|zip), got {len(fields)}")
        user = _int(fields[0], path, number, "user id")
        if user in users:
            raise InputError(path, number, "user id", f"duplicate user id {user}")
        age = _int(fields[1], path, number, "age")
        gender = GENDERS.get(fields[2].strip().upper())
        if gender is None:
            raise InputError(path, number, "gender", f"expected M or F, got {fields[2]!r}")
        raw_occupation = fields[3].strip().lower()
        if known is not None and raw_occupation not in known:
            raise InputError(path, number, "occupation", f"{raw_occupation!r} is not listed in u.occupation")
        occupation = taxonomy.normalize("occupation", OCCUPATION_RENAMES.get(raw_occupation, raw_occupation))
        if occupation is None:
            raise InputError(path, number, "occupation", f"{raw_occupation!r} is not a label of the movielens taxonomy")
        users[user] = (fields[4], {"gender": gender, "age_group": age_group(age), "occupation": occupation})
    return users


def read_ratings(folder: Path, users: dict, movies: dict) -> dict[int, list[tuple[int, int, int]]]:
    """user id -> [(timestamp, movie id, stars)]."""
    path = folder / "u.data"
    ratings: dict[int, list[tuple[int, int, int]]] = {user: [] for user in users}
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 4:
            raise InputError(path, number, None, f"expected 4 tab-separated fields (user item rating timestamp), got {len(fields)}")
        user, item, stars, stamp = (_int(f, path, number, n) for f, n in zip(fields, ["user id", "item id", "rating", "timestamp"]))
        if user not in users:
            raise InputError(path, number, "user id", f"user {user} is not in u.user")
        if item not in movies:
            raise InputError(path, number, "item id", f"movie {item} is not in u.item")
        if not 1 <= stars <= 5:
            raise InputError(path, number, "rating", f"expected 1..5 stars, got {stars}")
        ratings[user].append((stamp, item, stars))
    return ratings


def _date(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d")


def user_data(zip_code: str, ratings: list[tuple[int, int, int]], movies: dict[int, Movie], max_ratings: int | None) -> dict:
    """The teacher-visible sources of one rater: summary, ratings (newest first, each with a `date`
    so `render_user` keeps the newest when it truncates), region."""
    ordered = sorted(ratings, key=lambda r: (-r[0], r[1]))
    shown = ordered if max_ratings is None else ordered[:max_ratings]
    rated = []
    for stamp, item, stars in shown:
        movie = movies[item]
        entry = {"title": movie.title, "year": movie.year, "genres": list(movie.genres), "rating": stars, "date": _date(stamp)}
        rated.append({k: v for k, v in entry.items() if v not in (None, [])})
    if ordered:
        genre_counts = Counter(g for _, item, _ in ordered for g in movies[item].genres if g != "unknown")
        top = ", ".join(f"{g} {100 * c / len(ordered):.0f}%" for g, c in genre_counts.most_common(5))
        mean = sum(r[2] for r in ordered) / len(ordered)
        summary = (f"{len(ordered)} ratings from {_date(ordered[-1][0])} to {_date(ordered[0][0])}; "
                   f"mean {mean:.2f}/5; most rated genres: {top or 'none'}")
    else:
        summary = "no ratings"
    return {"rating_summary": summary, "rated_movies": rated, "location": zip_region(zip_code)}


def load_movielens(folder: str | Path, max_ratings: int | None = None) -> tuple[list[dict], list[dict]]:
    """(users rows, gold rows) in the run-directory contracts, sorted by numeric user id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, None, None, "not a directory (expected a MovieLens-100K folder)")
    taxonomy = Taxonomy.builtin("movielens")
    movies = read_movies(folder, read_genres(folder))
    users = read_users(folder, taxonomy)
    ratings = read_ratings(folder, users, movies)
    user_rows, gold_rows = [], []
    for user in sorted(users):
        zip_code, labels = users[user]
        user_rows.append({"user_id": str(user), "data": user_data(zip_code, ratings[user], movies, max_ratings)})
        gold_rows.append({"user_id": str(user), "labels": labels})
    return user_rows, gold_rows


def import_movielens(folder: str | Path, out: str | Path, max_ratings: int | None = None) -> dict:
    """Write users.jsonl, gold.jsonl and taxonomy.yaml into `out`; return counts."""
    users, gold = load_movielens(folder, max_ratings)
    out = Path(out)
    atomic_write_jsonl(out / "users.jsonl", users)
    atomic_write_jsonl(out / "gold.jsonl", gold)
    Taxonomy.builtin("movielens").to_yaml(out / "taxonomy.yaml")
    return {"users": len(users), "ratings": sum(len(u["data"]["rated_movies"]) for u in users), "out": str(out)}
