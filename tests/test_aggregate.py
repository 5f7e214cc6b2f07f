"""Stage 1b: voting, Dawid-Skene, calibration and class balance on hand-made and simulated answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confprofile.aggregate import (
    AGGREGATORS,
    CALIBRATORS,
    ConfidenceCalibration,
    DawidSkene,
    aggregate,
    encode,
    run_aggregation,
    teacher_predictions,
)
from confprofile.aggregate.base import ABSTAIN, MISSING, decide
from confprofile.taxonomy import Taxonomy
from teacher_simulator import SimTeacher, ece, simulate

METHODS = ["majority", "weighted", "dawid_skene"]


def table(rows):
    """Answers from (user, teacher, sample, label, confidence, rationale) tuples, dimension `gender`."""
    df = pd.DataFrame(rows, columns=["user_id", "teacher", "sample", "label", "confidence", "rationale"])
    df.insert(3, "dimension", "gender")
    df["parse_status"] = np.where(df["label"].isna(), "invalid", "ok")
    df["label_probs"] = None
    return df


HAND = table([
    ("u1", "a", 0, "female", 0.9, "mentions her husband"),
    ("u1", "b", 0, "female", 0.6, "likes makeup videos"),
    ("u1", "c", 0, "male", 0.7, "plays football"),
    ("u2", "a", 0, "male", 0.3, "weak cue"),
    ("u2", "b", 0, "male", 0.2, "weaker cue"),
    ("u2", "c", 0, "female", 0.95, "says 'as a mother'"),
    ("u3", "a", 0, "unknown", 0.0, ""),  # every answer abstains or is missing
    ("u3", "b", 0, None, 0.0, ""),
    ("u4", "a", 0, "male", 0.8, "s0"),  # teacher a's 3 samples share one vote
    ("u4", "a", 1, "male", 0.8, "s1"),
    ("u4", "a", 2, "male", 0.8, "s2"),
    ("u4", "b", 0, "female", 0.6, "b says"),
    ("u4", "c", 0, "female", 0.6, "c says"),
])


def labels_of(df):
    return dict(zip(df["user_id"], df["label"]))


def test_hand_made_majority_and_weighted():
    majority = labels_of(AGGREGATORS.get("majority")().fit_predict(HAND))
    weighted = labels_of(AGGREGATORS.get("weighted")().fit_predict(HAND))
    assert majority == {"u1": "female", "u2": "male", "u3": "unknown", "u4": "female"}
    # u2: two hesitant "male" (0.3 + 0.2) lose to one confident "female" (0.95)
    assert weighted == {"u1": "female", "u2": "female", "u3": "unknown", "u4": "female"}
    proba = AGGREGATORS.get("weighted")().fit_predict_proba(HAND)["gender"]
    assert list(proba.columns) == ["female", "male"]
    assert proba.loc["u3"].isna().all() and np.allclose(proba.drop(index="u3").sum(axis=1), 1)


def test_stage_output_columns_rationales_and_abstention():
    out = aggregate(HAND, method="weighted", calibrate=[], keep_threshold=0.6).set_index("user_id")
    assert list(out.reset_index().columns) == ["user_id", "dimension", "label", "confidence", "votes", "kept",
                                               "rationale", "method", "used_labels"]
    assert out.loc["u1", "rationale"] == "mentions her husband | likes makeup videos"  # agreeing ones, most confident first
    assert json.loads(out.loc["u1", "votes"]) == {"female": 1.5, "male": 0.7}
    assert out.loc["u3", "label"] == "unknown" and out.loc["u3", "confidence"] == 0 and not out.loc["u3", "kept"]
    assert out.loc["u3", "votes"] == "{}"
    assert out["kept"].tolist() == (out["confidence"] >= 0.6).tolist()
    assert not out["used_labels"].any() and set(out["method"]) == {"weighted"}


def test_taxonomy_fixes_label_order_and_drops_foreign_labels():
    tax = Taxonomy.builtin("profilebench")
    df = HAND.copy()
    df.loc[0, "label"] = "robot"  # not a gender label: treated as missing, not as a class
    enc = encode(df, tax)
    assert enc.dims["gender"].labels == ["male", "female"]
    assert (enc.dims["gender"].label == -2).sum() == 2  # the null one and "robot"


def test_teacher_predictions_majority_of_samples():
    preds = teacher_predictions(HAND)
    assert set(preds) == {"a", "b", "c"}
    a = preds["a"].set_index("user_id")
    assert list(preds["a"].columns) == ["user_id", "dimension", "label", "confidence", "rationale", "model"]
    assert a.loc["u4", "label"] == "male" and a.loc["u4", "confidence"] == pytest.approx(0.8)
    assert a.loc["u3", "label"] == "unknown" and (preds["a"]["model"] == "a").all()


# ---- properties --------------------------------------------------------------
answer_rows = st.lists(
    st.tuples(st.sampled_from(["u1", "u2", "u3", "u4"]), st.sampled_from(["t1", "t2", "t3"]), st.integers(0, 1),
              st.sampled_from(["x", "y", "z", "unknown", None]), st.floats(0, 1)),
    min_size=1, max_size=30,
)


@settings(max_examples=15, deadline=None)
@given(rows=answer_rows, seed=st.integers(0, 1000))
def test_row_permutation_does_not_change_the_result(rows, seed):
    df = table([(*r, "") for r in rows]).drop_duplicates(["user_id", "teacher", "sample"])
    shuffled = df.sample(frac=1.0, random_state=seed)
    for method in METHODS:
        a = aggregate(df, method=method).sort_values("user_id").reset_index(drop=True)
        b = aggregate(shuffled, method=method).sort_values("user_id").reset_index(drop=True)
        assert a["label"].tolist() == b["label"].tolist(), method
        assert np.allclose(a["confidence"], b["confidence"], atol=1e-6), method


@settings(max_examples=25, deadline=None)
@given(rows=answer_rows, label=st.sampled_from(["x", "y", "z"]), confs=st.lists(st.floats(0, 1), min_size=1, max_size=4))
def test_unanimous_vote_wins_at_any_confidence(rows, label, confs):
    others = [r for r in rows if r[0] != "u9"]
    mine = [("u9", f"t{i + 1}", 0, label, c) for i, c in enumerate(confs)]
    df = table([(*r, "") for r in others + mine]).drop_duplicates(["user_id", "teacher", "sample"])
    for method, options in [("majority", {}), ("weighted", {}), ("weighted", {"weights": "log_odds"})]:
        out = AGGREGATORS.get(method)(**options).fit_predict(df)
        assert labels_of(out)["u9"] == label, (method, options)
    # Dawid-Skene may learn that a teacher's "x" means "y"; in a table where every user is unanimous it must not.
    unanimous = table([(f"u{i}", f"t{j}", 0, ["x", "y", "z"][i % 3], c, "") for i in range(6) for j, c in enumerate(confs)])
    assert AGGREGATORS.get("dawid_skene")().fit_predict(unanimous)["label"].tolist() == [["x", "y", "z"][i % 3] for i in range(6)]


def test_encoding_shortcuts_do_not_change_the_votes():
    """Row order must not change a posterior: encoding groups rows by dimension in table order and Dawid-Skene
    groups its count matrix by user (a teacher's repeated samples repeat entries); one sample per teacher
    skips the vote-sharing count."""
    dims = {"occupation": 5, "gender": 2}  # blocks out of alphabetical order: found, not assumed
    teachers = [SimTeacher(f"t{i}", 0.6 + 0.05 * i, abstain=0.1, missing=0.05, samples=2 if i == 0 else 1) for i in range(4)]
    answers, _ = simulate(300, dims, teachers, seed=3)
    by_user = answers.sort_values(["user_id", "teacher", "sample"], kind="stable")
    one_sample = answers[answers["sample"] == 0]
    layouts = [[answers, answers.sample(frac=1.0, random_state=0), by_user], [one_sample, one_sample.drop(columns="sample")]]
    for method in METHODS:
        for variants in layouts:
            results = [AGGREGATORS.get(method)().fit_predict_proba(v) for v in variants]
            for other in results[1:]:
                for dim in dims:
                    pd.testing.assert_frame_equal(results[0][dim], other[dim].loc[results[0][dim].index], atol=1e-9)


def test_encode_groups_rows_by_dimension_and_clamps_confidence():
    """Each dimension's arrays point back to their own rows of the table, in table order; confidence is clamped
    to [0, 1] (NaN -> 0) and zeroed for answers that cannot vote (null or foreign labels)."""
    answers, _ = simulate(40, {"occupation": 4, "gender": 2}, [SimTeacher("a"), SimTeacher("b", samples=2)], seed=5)
    answers = answers.sample(frac=1.0, random_state=1).reset_index(drop=True)
    answers.loc[:5, "confidence"] = [np.nan, -0.5, 1.5, np.inf, 0.25, 0.75]
    answers.loc[6, "label"] = None
    enc = encode(answers)
    for name, part in enc.dims.items():
        rows = answers.iloc[part.row]
        assert (rows["dimension"] == name).all() and (np.diff(part.row) > 0).all()
        assert (enc.users[part.user] == rows["user_id"].to_numpy()).all()
        assert (np.array(enc.teachers)[part.teacher] == rows["teacher"].to_numpy()).all()
        expected = np.where(part.label == MISSING, 0.0, np.clip(np.nan_to_num(rows["confidence"].to_numpy(), nan=0.0), 0, 1))
        np.testing.assert_array_equal(part.conf, expected)
        named = np.array(part.labels + ["unknown"], dtype=object)[np.where(part.label == ABSTAIN, -1, part.label)]
        voting = part.label >= 0
        assert (named[voting] == rows["label"].to_numpy()[voting]).all()
    assert sum(len(part.row) for part in enc.dims.values()) == len(answers)
    null_label = enc.dims[answers.loc[6, "dimension"]]
    assert null_label.label[np.flatnonzero(null_label.row == 6)[0]] == MISSING


def test_decide_is_the_rounded_argmax_and_skips_nan():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((500, 5)), 2)  # many exact ties
    scores[::7, 3] = scores[::7, 1] + 1e-12  # float noise below the rounding
    np.testing.assert_array_equal(decide(scores), np.argmax(np.round(scores, 9), axis=1))
    with_nan = np.array([[np.nan, np.nan], [np.nan, 0.2], [0.1, np.nan], [-np.inf, -np.inf]])
    assert decide(with_nan).tolist() == [0, 1, 0, 0]
    assert decide(np.zeros((3, 0))).tolist() == [0, 0, 0]


def test_dawid_skene_count_matrix_matches_a_coo_build():
    """The count matrix built by one counting pass equals scipy's COO build from the same soft counts."""
    import scipy.sparse as sp

    from confprofile.aggregate.dawid_skene import soft_count_matrix

    teachers = [SimTeacher("s", samples=3, scores=2.0), SimTeacher("h", accuracy=0.7, abstain=0.1, missing=0.1, samples=2)]
    answers, _ = simulate(200, {"a": 3}, teachers, seed=2)
    enc = encode(answers.sample(frac=1.0, random_state=0))
    part, n, k, w = enc.dims["a"], enc.n_users, enc.dims["a"].k, len(enc.teachers)
    single, dist = part.single, part.dist
    assert single.any() and dist.any()
    conf = np.maximum(part.conf[single], 1e-6)
    mean = np.bincount(part.teacher[single], conf, w) / np.maximum(np.bincount(part.teacher[single], minlength=w), 1)
    rows = np.concatenate([part.user[single], np.repeat(part.user[dist], k)])
    cols = np.concatenate([part.teacher[single].astype(int) * k + part.label[single],
                           np.repeat(part.teacher[dist].astype(int) * k, k) + np.tile(np.arange(k), dist.sum())])
    vals = np.concatenate([conf / mean[part.teacher[single]] * part.weight[single], (part.weight[dist, None] * part.probs[dist]).ravel()])
    expected = sp.coo_matrix((vals, (rows, cols)), shape=(n, w * k)).toarray()
    np.testing.assert_allclose(sp.csr_matrix(soft_count_matrix(part, n, w), shape=(n, w * k)).toarray(), expected, atol=1e-12)


def test_softmax_matches_scipy_in_and_out_of_exps_range():
    """Logits within exp()'s range need no shift; wide ones (150 confident teachers) need the row maxima."""
    from scipy.special import logsumexp, softmax

    from confprofile.aggregate.voting import softmax_inplace

    rng = np.random.default_rng(0)
    for spread in (5.0, 2000.0):  # the second spans more than exp() can take unshifted
        logits = rng.normal(0, spread, (50, 4))
        expected, log_marginal = softmax(logits, axis=1), logsumexp(logits, axis=1)
        np.testing.assert_allclose(softmax_inplace(logits), log_marginal, rtol=1e-12)
        np.testing.assert_allclose(logits, expected, atol=1e-12)
    crowd = table([("u1", f"t{i}", 0, "female", 0.999, "") for i in range(150)] + [("u2", "t0", 0, "male", 0.6, "")])
    for method in METHODS:  # u1's log-odds evidence spans ~1000 nats
        post = AGGREGATORS.get(method)().fit_predict_proba(crowd)["gender"]
        assert np.isfinite(post.to_numpy()).all() and post.loc["u1", "female"] > 0.99


# ---- simulated teachers --------------------------------------------------------
def test_dawid_skene_recovers_known_confusion_matrices():
    confusions = [
        np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]),
        np.array([[0.6, 0.3, 0.1], [0.05, 0.9, 0.05], [0.1, 0.1, 0.8]]),
        np.array([[0.7, 0.1, 0.2], [0.2, 0.7, 0.1], [0.05, 0.05, 0.9]]),
        np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.25, 0.25, 0.5]]),
    ]
    teachers = [SimTeacher(f"t{i}", accuracy=0.7, confusion={"d": c}) for i, c in enumerate(confusions)]
    answers, truth = simulate(4000, {"d": 3}, teachers, seed=3)
    model = DawidSkene(n_iter=50, tol=1e-6)
    pred = model.fit_predict(answers)
    learnt = model.confusions_["d"]
    assert np.abs(learnt - np.stack(confusions)).max() < 0.06
    acc = (pred.merge(truth, on=["user_id", "dimension"]).eval("label_x == label_y")).mean()
    majority = AGGREGATORS.get("majority")().fit_predict(answers)
    acc_mv = (majority.merge(truth, on=["user_id", "dimension"]).eval("label_x == label_y")).mean()
    assert acc > acc_mv


@pytest.fixture(scope="module")
def overconfident():
    # Peers of similar strength: the consensus of the others is a fair judge (see ConfidenceCalibration).
    teachers = [
        SimTeacher("t80", 0.8, overconfidence=2.5, bias=1.0),
        SimTeacher("t75", 0.75, overconfidence=2.0, bias=1.5),
        SimTeacher("t70", 0.7, overconfidence=2.0, bias=1.0),
        SimTeacher("t65", 0.65, overconfidence=3.0, bias=2.0, samples=2, abstain=0.1, missing=0.05),
    ]
    return simulate(3000, {"g": 2, "occ": 5}, teachers, seed=7)


@pytest.mark.parametrize("method", ["isotonic", "temperature"])
def test_confidence_calibration_lowers_ece_of_overconfident_teachers(overconfident, method):
    answers, truth = overconfident
    joined = answers.merge(truth, on=["user_id", "dimension"], suffixes=("", "_true"))
    correct = (joined["label"] == joined["label_true"]).to_numpy()
    raw, calibrated = encode(joined), ConfidenceCalibration(method=method).fit_transform(encode(joined))
    for dim in ("g", "occ"):
        before, after = raw.dims[dim], calibrated.dims[dim]
        eces = []
        for t in range(4):
            m = before.voting & (before.teacher == t)
            rows = before.row[m]
            eces.append((ece(before.conf[m], correct[rows]), ece(after.conf[m], correct[rows])))
            assert eces[-1][1] < 0.75 * eces[-1][0], (dim, t, eces[-1])
        assert np.mean([a for _, a in eces]) < 0.5 * np.mean([b for b, _ in eces]), (dim, eces)


def test_dev_labels_replace_the_consensus_and_are_recorded(overconfident):
    answers, truth = overconfident
    dev = truth[truth["user_id"].isin(truth["user_id"].unique()[:300])]
    out = aggregate(answers, calibrator_options={"confidence": {"dev_labels": dev}})
    assert out["used_labels"].all()
    assert not aggregate(answers)["used_labels"].any()


def macro_f1(pred, truth, labels):
    m = pred.merge(truth, on=["user_id", "dimension"])
    f1 = []
    for label in labels:
        tp = ((m.label_x == label) & (m.label_y == label)).sum()
        p, r = tp / max((m.label_x == label).sum(), 1), tp / max((m.label_y == label).sum(), 1)
        f1.append(0 if tp == 0 else 2 * p * r / (p + r))
    return float(np.mean(f1))


def test_class_balance_restores_a_suppressed_minority_class():
    # Truth 80/20; every teacher names the minority class for only 40% of its members.
    biased = {"d": np.array([[0.9, 0.1], [0.6, 0.4]])}
    teachers = [SimTeacher(f"t{i}", 0.7, confusion=biased) for i in range(5)]
    answers, truth = simulate(4000, {"d": 2}, teachers, priors={"d": np.array([0.8, 0.2])}, seed=11)
    share = lambda df: (df["label"] == "d_1").mean()  # noqa: E731
    for method in ("majority", "weighted"):
        plain = aggregate(answers, method=method, calibrate=[])
        balanced = aggregate(answers, method=method, calibrate=["class_balance"])
        assert share(plain) < 0.1 and 1.8 * share(plain) < share(balanced) < 0.3, method
        assert macro_f1(balanced, truth, ["d_0", "d_1"]) > macro_f1(plain, truth, ["d_0", "d_1"]) + 0.01, method
    target = aggregate(answers, calibrate=["class_balance"], calibrator_options={"class_balance": {"targets": {"d": {"d_0": 0.8, "d_1": 0.2}}}})
    assert abs(share(target) - 0.2) < 0.02


def test_label_prior_correction_unbiases_a_scoring_teacher():
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 2, 2000)
    signal = np.where(truth == 1, 0.15, -0.15) + rng.normal(0, 0.1, 2000)
    p1 = np.clip(0.2 + signal, 0.01, 0.99)  # a small model that almost always prefers label "a"
    probs = [json.dumps({"a": 1 - p, "b": p}) for p in p1]
    df = pd.DataFrame({"user_id": [f"u{i:04d}" for i in range(2000)], "teacher": "small", "sample": 0, "dimension": "d",
                       "label": np.where(p1 > 0.5, "b", "a"), "confidence": np.maximum(p1, 1 - p1), "rationale": "",
                       "parse_status": "ok", "label_probs": probs})
    plain = aggregate(df, calibrate=[])
    fixed = aggregate(df, calibrate=["label_prior"])
    gold = np.where(truth == 1, "b", "a")
    assert (plain["label"] == "b").mean() < 0.1
    assert 0.35 < (fixed["label"] == "b").mean() < 0.65
    assert (fixed["label"].to_numpy() == gold).mean() > (plain["label"].to_numpy() == gold).mean() + 0.2


def test_calibrated_dawid_skene_beats_the_best_single_teacher(overconfident):
    answers, truth = overconfident
    accuracy = lambda df: df.merge(truth, on=["user_id", "dimension"]).eval("label_x == label_y").mean()  # noqa: E731
    best_single = max(accuracy(p) for p in teacher_predictions(answers).values())
    assert accuracy(aggregate(answers, method="dawid_skene")) > best_single
    assert set(CALIBRATORS.names()) == {"class_balance", "confidence", "group_confidence", "label_prior", "teacher_groups"}
