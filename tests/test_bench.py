"""Synthetic ProfileBench generator, keyword and majority-class baselines, `confprofile generate`."""

from __future__ import annotations

import json
import statistics
from collections import Counter

import pytest

from confprofile.bench import profilebench as pb
from confprofile.bench.compose import word_count
from confprofile.baselines import COLUMNS, keyword_predictions, majority_class_predictions
from confprofile.taxonomy import UNKNOWN, Taxonomy

N = 2000


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return Taxonomy.builtin("profilebench")


@pytest.fixture(scope="session")
def big_split():
    return pb.generate_with_signals(N, seed=0, difficulty=0.5)


def _shares(gold, dim) -> dict[str, float]:
    counts = Counter(row["labels"][dim] for row in gold)
    return {label: count / len(gold) for label, count in counts.items()}


def test_deterministic_per_seed_and_prefix_stable():
    users_a, gold_a = pb.generate(40, seed=7, difficulty=0.4)
    users_b, gold_b = pb.generate(40, seed=7, difficulty=0.4)
    assert json.dumps(users_a) == json.dumps(users_b) and gold_a == gold_b
    users_c, _ = pb.generate(15, seed=7, difficulty=0.4)
    assert users_c == users_a[:15]  # user i does not depend on how many users are generated
    users_d, _ = pb.generate(40, seed=8, difficulty=0.4)
    assert [u["data"] for u in users_d] != [u["data"] for u in users_a]


def test_difficulty_changes_the_accounts_not_the_people():
    users_easy, gold_easy = pb.generate(30, seed=3, difficulty=0.1)
    users_hard, gold_hard = pb.generate(30, seed=3, difficulty=0.9)
    assert gold_easy == gold_hard
    assert [u["data"] for u in users_easy] != [u["data"] for u in users_hard]


def test_different_seeds_give_disjoint_ids():
    ids = {seed: {u["user_id"] for u in pb.generate(100, seed=seed)[0]} for seed in (1, 2, 12)}
    assert all(len(v) == 100 for v in ids.values())
    assert not ids[1] & ids[2] and not ids[1] & ids[12] and not ids[2] & ids[12]


def test_gold_is_complete_and_valid(big_split, taxonomy):
    users, gold, _ = big_split
    assert [u["user_id"] for u in users] == [g["user_id"] for g in gold]
    for row in gold:
        assert set(row["labels"]) == set(taxonomy.dimension_names)
        for dim, label in row["labels"].items():
            assert label != UNKNOWN and label in taxonomy.dimension(dim).label_names


def test_generator_tables_use_taxonomy_labels(taxonomy):
    assert list(pb.DIMENSIONS) == taxonomy.dimension_names
    assert list(pb.AGE_GROUPS) == taxonomy.dimension("age_group").label_names
    assert set(pb.EDUCATION_BY_OCCUPATION) == set(taxonomy.dimension("occupation").label_names)
    assert set(pb.SPEND_EDUCATION) == set(taxonomy.dimension("education").label_names)


def test_marginals_match_the_joint_distribution(big_split):
    _, gold, _ = big_split
    age = _shares(gold, "age_group")
    total = sum(pb.AGE_GROUPS.values())
    for label, weight in pb.AGE_GROUPS.items():
        assert age[label] == pytest.approx(weight / total, abs=0.03)
    assert _shares(gold, "gender")["female"] == pytest.approx(0.5, abs=0.04)
    # occupation marginal computed exactly from the tables: sum over age and gender
    expected: Counter[str] = Counter()
    for age_group, age_weight in pb.AGE_GROUPS.items():
        for gender in ("male", "female"):
            weights = [w * pb.OCCUPATION_GENDER_SKEW.get(occ, {}).get(gender, 1.0)
                       for occ, w in zip(pb._OCCS, pb.OCCUPATION_BY_AGE[age_group])]
            for occ, w in zip(pb._OCCS, weights):
                expected[occ] += age_weight / total * 0.5 * w / sum(weights)
    occupation = _shares(gold, "occupation")
    for occ, share in expected.items():
        assert occupation.get(occ, 0.0) == pytest.approx(share, abs=0.03), occ
    consumption = _shares(gold, "consumption_level")
    assert 0.25 < consumption["low"] < 0.5 and 0.3 < consumption["medium"] < 0.55 and 0.1 < consumption["high"] < 0.3
    education = _shares(gold, "education")
    assert education["postgraduate"] < education["bachelor"] and education["postgraduate"] > 0.03
    life = _shares(gold, "life_stage")
    assert min(life.values()) > 0.04


def test_joint_constraints(big_split):
    _, gold, _ = big_split
    rows = [g["labels"] for g in gold]
    minors = [r for r in rows if r["age_group"] == "under_18"]
    assert minors and all(r["education"] == "high_school_or_below" for r in minors)
    assert all(r["occupation"] != "retired" and not r["life_stage"].startswith(("parent", "married")) for r in minors)
    assert all(r["age_group"] in ("45_54", "55_plus") for r in rows if r["occupation"] == "retired")
    students = [r for r in rows if r["occupation"] == "student"]
    assert sum(r["age_group"] in ("under_18", "18_24") for r in students) / len(students) > 0.85
    parents = [r for r in rows if r["life_stage"].startswith("parent")]
    assert sum(r["age_group"] in ("25_34", "35_44", "45_54") for r in parents) / len(parents) > 0.6
    homemakers = Counter(r["gender"] for r in rows if r["occupation"] == "homemaker")
    assert homemakers["female"] > 3 * homemakers["male"] and homemakers["male"] > 0  # skewed, not exclusive
    high = Counter(r["occupation"] for r in rows if r["consumption_level"] == "high")
    low = Counter(r["occupation"] for r in rows if r["consumption_level"] == "low")
    assert high["finance"] + high["it_internet"] > high["service_retail"] + high["student"]
    assert low["student"] > low["finance"]


def test_text_length_and_sources(big_split):
    users, _, _ = big_split
    words = [word_count(u["data"]) for u in users[:500]]
    assert 150 <= statistics.median(words) <= 400
    assert max(words) < 600
    sources = Counter(key for u in users[:500] for key in u["data"])
    for key in ("nickname", "bio", "watched", "comments", "searches", "purchases", "follows", "likes", "gifts"):
        assert sources[key] > 100, key
    video = users[0]["data"]["watched"][0]
    assert set(video) == {"title", "tags", "watch_seconds"}


def test_labels_are_rarely_spelled_out(big_split, taxonomy):
    """Most users never write their own label's name: the data must be inferred, not looked up."""
    users, gold, _ = big_split
    spelled = 0
    for user, row in zip(users[:500], gold[:500]):
        text = json.dumps(user["data"]).lower()
        spelled += sum(row["labels"][dim].replace("_", " ") in text for dim in ("occupation", "life_stage", "age_group"))
    assert spelled / (500 * 3) < 0.1


def test_difficulty_shifts_the_signal_mix():
    def mix(difficulty):
        _, _, signals = pb.generate_with_signals(300, seed=5, difficulty=difficulty)
        strengths = Counter(s for row in signals for s in row["strength"].values())
        misleading = sum(bool(row["misleading"]) for row in signals) / len(signals)
        return strengths["none"] / (300 * 6), strengths["explicit"] / (300 * 6), misleading

    easy, hard = mix(0.1), mix(0.9)
    assert hard[0] > easy[0] + 0.15  # more users whose data says nothing
    assert hard[1] < easy[1] - 0.1  # fewer explicit statements
    assert hard[2] > easy[2]  # more misleading accounts


def test_invalid_difficulty_is_rejected():
    with pytest.raises(ValueError):
        pb.generate(3, seed=0, difficulty=1.5)


def test_keyword_baseline_hand_cases(taxonomy):
    users = [
        {"user_id": "a", "data": {"bio": "retired teacher", "device": "it works fine"}},
        {"user_id": "b", "data": {"bio": "I work in IT", "comments": ["married", "Married, no kids"]}},
        {"user_id": "c", "data": {}},
    ]
    pred = keyword_predictions(users, taxonomy)
    assert list(pred.columns) == COLUMNS and len(pred) == 3 * 6 and set(pred["model"]) == {"keyword"}
    get = {(r.user_id, r.dimension): r for r in pred.itertuples()}
    tie = get[("a", "occupation")]  # "teacher" (education) and "retired" tie: taxonomy order wins
    assert tie.label == "education" and tie.confidence == pytest.approx(0.5)
    assert get[("b", "occupation")].label == "it_internet"  # capital IT counts, the pronoun "it" does not
    assert get[("b", "life_stage")].label == "married_no_children" and get[("b", "life_stage")].confidence == 1.0
    assert all(get[("c", dim)].label == UNKNOWN and get[("c", dim)].confidence == 0.0 for dim in taxonomy.dimension_names)


def test_keyword_baseline_accepts_user_records(taxonomy):
    from confprofile.data import UserRecord

    users, _ = pb.generate(5, seed=3)
    as_dicts = keyword_predictions(users, taxonomy)
    as_records = keyword_predictions([UserRecord(**u) for u in users], taxonomy)
    assert as_dicts.equals(as_records)


def test_keyword_baseline_stays_well_below_perfect(taxonomy):
    from confprofile.evaluate import evaluate

    users, gold = pb.generate(500, seed=2, difficulty=0.5)
    metrics = evaluate({g["user_id"]: g["labels"] for g in gold}, keyword_predictions(users, taxonomy), taxonomy)
    assert 0.08 < metrics["headline_f1"] < 0.5  # measured ~0.22: informative, far from a lookup table
    assert all(m["f1"] < 0.7 for m in metrics["dimensions"].values())


def test_majority_class_reference(taxonomy):
    train = [{"user_id": "t1", "labels": {"gender": "female", "age_group": "18_24"}},
             {"user_id": "t2", "labels": {"gender": "female", "age_group": "55_plus"}},
             {"user_id": "t3", "labels": {"gender": "male", "age_group": "18_24"}}]
    pred = majority_class_predictions(train, ["x", "y"], taxonomy)
    assert list(pred.columns) == COLUMNS and len(pred) == 2 * 6
    gender = pred[pred["dimension"] == "gender"]
    assert set(gender["label"]) == {"female"} and gender["confidence"].iloc[0] == pytest.approx(2 / 3)
    assert set(pred[pred["dimension"] == "occupation"]["label"]) == {UNKNOWN}  # no training labels
    assert set(pred["model"]) == {"majority_class (uses gold)"}


def test_generate_cli_writes_parsable_files(tmp_path, taxonomy):
    from typer.testing import CliRunner

    from confprofile.cli import app
    from confprofile.data import load_gold, load_users

    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["generate", "--users", "30", "--seed", "4", "--out", str(out), "--difficulty", "0.6"])
    assert result.exit_code == 0, result.output
    users = load_users(out / "users.jsonl")
    gold = load_gold(out / "gold.jsonl")
    assert len(users) == 30 and set(gold) == {u.user_id for u in users}
    assert users[0].user_id == "u4_000000"
    assert Taxonomy.from_yaml(out / "taxonomy.yaml").dimension_names == taxonomy.dimension_names
    card = (out / "dataset_card.md").read_text(encoding="utf-8")
    assert "seed 4" in card and "difficulty 0.6" in card and "age_group" in card
    signals = [json.loads(line) for line in (out / "signals.jsonl").read_text().splitlines()]
    assert len(signals) == 30 and set(signals[0]["strength"]) == set(taxonomy.dimension_names)
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files
    bad = CliRunner().invoke(app, ["generate", "--users", "3", "--out", str(out), "--difficulty", "2"])
    assert bad.exit_code != 0
