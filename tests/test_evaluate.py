"""Metrics: hand-computed cases, sklearn cross-checks, hypothesis properties, files and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, roc_auc_score

from confprofile.errors import InputError
from confprofile.evaluate import (
    auroc,
    brier,
    compare,
    ece,
    evaluate,
    load_predictions,
    print_comparison,
    print_metrics,
    reliability_bins,
)
from confprofile.taxonomy import Taxonomy

TAX = Taxonomy.builtin("profilebench")
DIMS = TAX.dimension_names


def _preds(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "dimension", "label", "confidence"])


# ---- pure metric functions, by hand ---------------------------------------------------------------


def test_ece_by_hand_last_bin_closed():
    # bin 1 ([1/15, 2/15)): confidences .1, .1, accuracy .5 -> |.5 - .1| * 2/4 = .2
    # bin 14 ([14/15, 1]): .95 and 1.0, accuracy 1 -> |1 - .975| * 2/4 = .0125
    assert ece([0.1, 0.1, 0.95, 1.0], [0, 1, 1, 1]) == pytest.approx(0.2125)
    bins = reliability_bins([0.1, 0.1, 0.95, 1.0], [0, 1, 1, 1])
    assert len(bins) == 15 and bins[14]["count"] == 2 and bins[14]["hi"] == 1.0
    assert bins[1] == {"lo": 1 / 15, "hi": 2 / 15, "count": 2, "confidence": pytest.approx(0.1), "accuracy": 0.5}
    assert bins[0]["count"] == 0 and bins[0]["confidence"] is None
    assert ece([], []) is None and brier([], []) is None


def test_brier_and_auroc_by_hand():
    assert brier([0.9, 0.8, 0.8, 0.3], [1, 1, 0, 0]) == pytest.approx((0.01 + 0.04 + 0.64 + 0.09) / 4)
    # pairs (correct, wrong): .9>.8, .9>.3, .8=.8 (half), .8>.3 -> 3.5 / 4
    assert auroc([0.9, 0.8, 0.8, 0.3], [1, 1, 0, 0]) == pytest.approx(0.875)
    assert auroc([0.2, 0.9], [1, 1]) is None and auroc([0.2, 0.9], [0, 0]) is None


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]), st.booleans()), min_size=2, max_size=40))
def test_auroc_matches_sklearn(pairs):
    conf, hit = zip(*pairs)
    if len(set(hit)) < 2:
        assert auroc(conf, hit) is None
    else:
        assert auroc(conf, hit) == pytest.approx(roc_auc_score(hit, conf))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(1, 12), st.integers(0, 12)), min_size=1, max_size=12))
def test_ece_of_perfectly_calibrated_groups_is_zero(groups):
    # a group of m answers at confidence j/m with exactly j correct: every bin's accuracy equals its mean confidence
    conf, hit = [], []
    for m, j in groups:
        j = min(j, m)
        conf += [j / m] * m
        hit += [1] * j + [0] * (m - j)
    assert ece(conf, hit) == pytest.approx(0.0, abs=1e-9)


# ---- evaluate, by hand ------------------------------------------------------------------------------


def test_evaluate_by_hand():
    gold = {"a": {"gender": "male", "age_group": "25_34"}, "b": {"gender": "female"}, "c": {"gender": "female"}}
    preds = _preds([
        ("a", "gender", "male", 0.9),      # correct
        ("b", "gender", "male", 0.7),      # wrong
        ("c", "gender", "unknown", 0.5),   # abstains
        ("z", "gender", "female", 0.7),    # user not in gold: answered and wrong
        ("b", "age_group", "18-24", 0.6),  # b has no age gold: not scored
        ("a", "height", "tall", 1.0),      # dimension outside the taxonomy: ignored
    ])
    m = evaluate(gold, preds, TAX)
    g = m["dimensions"]["gender"]
    assert (g["n_gold"], g["n_answered"]) == (3, 3)
    assert g["precision"] == pytest.approx(1 / 3) and g["recall"] == pytest.approx(1 / 3)
    assert g["f1"] == pytest.approx(1 / 3) and g["coverage"] == pytest.approx(2 / 3)
    # class F1 on gold users: male P=1/2 R=1 -> 2/3; female P=0 (never predicted on gold users) R=0 -> 0
    assert g["macro_f1"] == pytest.approx(1 / 3)
    # answered: (.9, hit) bin 13, (.7, miss) x2 bin 10 -> 0.1/3 + 0.7*2/3
    assert g["ece"] == pytest.approx(0.5) and g["brier"] == pytest.approx((0.01 + 0.49 + 0.49) / 3)
    assert g["auroc"] == 1.0
    assert g["confusion"] == {"labels": ["male", "female"], "predicted": ["male", "female", "unknown"],
                              "matrix": [[1, 0, 0], [1, 0, 1]]}
    age = m["dimensions"]["age_group"]
    assert (age["n_gold"], age["n_answered"], age["f1"], age["coverage"]) == (1, 0, 0.0, 0.0)
    assert m["dimensions"]["occupation"]["f1"] is None  # no gold at all: left out of the means
    assert m["headline_f1"] == pytest.approx((1 / 3 + 0) / 2)
    assert m["n_users"] == 3 and m["ece"] == pytest.approx(0.5)


def test_invalid_labels_are_wrong_answers_and_nulls_abstain():
    gold = {"a": {"gender": "male"}, "b": {"gender": "female"}}
    m = evaluate(gold, _preds([("a", "gender", "robot", 0.9), ("b", "gender", None, np.nan)]), TAX)["dimensions"]["gender"]
    assert (m["n_answered"], m["precision"], m["coverage"]) == (1, 0.0, 0.5)
    assert m["confusion"]["predicted"][-1] == "invalid" and m["confusion"]["matrix"] == [[0, 0, 0, 1], [0, 0, 1, 0]]


def test_duplicate_predictions_are_an_error():
    with pytest.raises(ValueError, match="duplicate"):
        evaluate({"a": {"gender": "male"}}, _preds([("a", "gender", "male", 1), ("a", "gender", "female", 1)]), TAX)


# ---- properties -------------------------------------------------------------------------------------

_gold = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=4),
    st.fixed_dictionaries({}, optional={d.name: st.sampled_from(d.label_names) for d in TAX.dimensions}),
    min_size=1, max_size=25,
)


def _perfect(gold) -> pd.DataFrame:
    return _preds([(u, d, lab, 0.8) for u, labels in gold.items() for d, lab in labels.items()])


@settings(max_examples=30, deadline=None, derandomize=True)
@given(_gold)
def test_perfect_predictions_score_one(gold):
    m = evaluate(gold, _perfect(gold), TAX)
    scored = [d for d in m["dimensions"].values() if d["n_gold"]]
    assert all(d["f1"] == 1.0 and d["macro_f1"] == 1.0 and d["coverage"] == 1.0 for d in scored)
    if scored:
        assert m["headline_f1"] == 1.0 and m["auroc"] is None and m["brier"] == pytest.approx(0.04)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(_gold, st.sampled_from(["unknown", None, "drop"]))
def test_all_abstain_gives_zero_recall_and_coverage(gold, how):
    preds = _perfect(gold)
    preds = preds.iloc[:0] if how == "drop" else preds.assign(label=how)
    m = evaluate(gold, preds, TAX)
    for d in m["dimensions"].values():
        assert d["n_answered"] == 0 and d["precision"] == 0.0 and d["ece"] is None
        if d["n_gold"]:
            assert d["recall"] == 0.0 and d["coverage"] == 0.0 and d["f1"] == 0.0


@settings(max_examples=25, deadline=None, derandomize=True)
@given(_gold, st.randoms(use_true_random=False))
def test_permutation_invariance(gold, rnd):
    rows = [(u, d, rnd.choice(TAX.dimension(d).label_names + ["unknown"]), rnd.random()) for u in gold for d in DIMS]
    rows.append(("stranger", "gender", "male", 0.4))
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    gold_shuffled = dict(sorted(gold.items(), key=lambda kv: rnd.random()))
    a = evaluate(gold, _preds(rows), TAX)
    b = evaluate(gold_shuffled, _preds(shuffled), TAX)
    assert _rounded(a) == _rounded(b)  # float sums may differ in the last bits with the order


def _rounded(obj):
    if isinstance(obj, float):
        return round(obj, 9)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def test_matches_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    labels = TAX.dimension("occupation").label_names
    users = [f"u{i}" for i in range(500)]
    gold_labels = rng.choice(labels, size=500)
    pred_labels = np.where(rng.random(500) < 0.5, gold_labels, rng.choice(labels + ["unknown"], size=500))
    gold = {u: {"occupation": g} for u, g in zip(users, gold_labels)}
    m = evaluate(gold, _preds(list(zip(users, ["occupation"] * 500, pred_labels, rng.random(500)))), TAX)
    d = m["dimensions"]["occupation"]
    present = sorted((set(gold_labels) | set(pred_labels)) - {"unknown"})
    assert d["macro_f1"] == pytest.approx(f1_score(gold_labels, pred_labels, labels=present, average="macro", zero_division=0))
    answered = pred_labels != "unknown"
    correct = (pred_labels == gold_labels) & answered
    assert d["precision"] == pytest.approx(correct.sum() / answered.sum())
    assert d["recall"] == pytest.approx(correct.mean())
    assert np.array(d["confusion"]["matrix"]).sum() == 500


# ---- compare, tables, files, CLI --------------------------------------------------------------------


def test_compare_and_tables():
    gold = {"a": {"gender": "male"}, "b": {"gender": "female"}}
    stages = {"perfect": _perfect(gold), "silent": _perfect(gold).assign(label="unknown")}
    df = compare(gold, stages, TAX)
    assert list(df["stage"]) == ["perfect", "silent"] and list(df["headline_f1"]) == [1.0, 0.0]
    assert {"macro_f1", "coverage", "ece", "brier", "auroc", "f1_gender", "f1_age_group"} <= set(df.columns)

    from rich.console import Console

    console = Console(record=True, width=200)
    print_comparison(df, console)
    print_metrics(evaluate(gold, stages["perfect"], TAX), console)
    text = console.export_text()
    assert "perfect" in text and "silent" in text and "gender" in text and "1.000" in text


def test_load_predictions_long_wide_and_parquet(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"user_id": "a", "labels": {"gender": {"label": "male", "confidence": 0.9}, "age_group": "25_34"}}\n'
                    '{"user_id": 2, "dimension": "gender", "label": null, "confidence": 0.1, "model": "m"}\n')
    df = load_predictions(path)
    assert df[["user_id", "dimension"]].values.tolist() == [["a", "gender"], ["a", "age_group"], ["2", "gender"]]
    assert df["label"].iloc[:2].tolist() == ["male", "25_34"] and pd.isna(df["label"].iloc[2])
    assert df["confidence"].iloc[0] == 0.9 and np.isnan(df["confidence"].iloc[1])
    df.to_parquet(tmp_path / "p.parquet")
    assert load_predictions(tmp_path / "p.parquet")[["user_id", "label"]].equals(df[["user_id", "label"]])


@pytest.mark.parametrize(
    ("content", "line", "field"),
    [
        ('{"user_id": "a", "dimension": "gender", "label": "male", "confidence": 1.5}', 2, "confidence"),
        ('{"user_id": "a", "labels": {"gender": {"label": "male", "confidence": "high"}}}', 2, "labels.gender.confidence"),
        ('{"user_id": "a", "labels": {"gender": 3}}', 2, "labels.gender.label"),
        ('{"user_id": "x", "dimension": "gender", "label": "male"}', 2, "user_id"),  # duplicate
        ('{"dimension": "gender", "label": "male"}', 2, "user_id"),
        ('{"user_id": "a"}', 2, None),
        ('{"user_id": "a", "dimension":', 2, None),
    ],
)
def test_load_predictions_bad_input(tmp_path, content, line, field):
    path = tmp_path / "p.jsonl"
    path.write_text('{"user_id": "x", "dimension": "gender", "label": "male", "confidence": 0.5}\n' + content + "\n")
    with pytest.raises(InputError) as info:
        load_predictions(path)
    assert (info.value.line, info.value.field) == (line, field)


def test_load_predictions_bad_files(tmp_path):
    for name, content in [("p.csv", "x"), ("p.jsonl", ""), ("p.parquet", "not parquet")]:
        (tmp_path / name).write_text(content)
        with pytest.raises(InputError):
            load_predictions(tmp_path / name)
    with pytest.raises(InputError, match="not found"):
        load_predictions(tmp_path / "none.parquet")


@pytest.fixture()
def files(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"user_id": "a", "labels": {"gender": "male"}}\n{"user_id": "b", "labels": {"gender": "female"}}\n')
    pred = tmp_path / "pred.jsonl"
    pred.write_text('{"user_id": "a", "dimension": "gender", "label": "male", "confidence": 0.9}\n')
    return gold, pred


def _main(monkeypatch, *args) -> int:
    from confprofile.cli import main

    monkeypatch.setattr(sys, "argv", ["confprofile", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code


def test_cli_json_and_out(monkeypatch, capsys, files, tmp_path):
    gold, pred = files
    assert _main(monkeypatch, "evaluate", "--gold", gold, "--pred", pred, "--json", "--out", tmp_path / "m.json") == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["dimensions"]["gender"]["recall"] == 0.5 and metrics["headline_f1"] == pytest.approx(2 / 3)
    assert json.loads((tmp_path / "m.json").read_text()) == metrics


def test_cli_bad_gold_is_one_line_exit_2(monkeypatch, capsys, files):
    gold, pred = files
    gold.write_text('{"user_id": "a", "labels": {"gender": "male"}}\n{"user_id": "a", "labels": {"gender": "male"}}\n')
    assert _main(monkeypatch, "evaluate", "--gold", gold, "--pred", pred) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {gold}:2: field 'user_id': duplicate user_id 'a' (first on line 1)"


def test_cli_subprocess_bad_predictions(files, tmp_path):
    gold, _ = files
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"user_id": "a", "dimension": "gender", "label": "\xff"}\n')
    result = subprocess.run([sys.executable, "-m", "confprofile", "evaluate", "--gold", str(gold), "--pred", str(bad)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert f"{bad}:1" in result.stderr and "UTF-8" in result.stderr
