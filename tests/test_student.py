"""The encoder student and its stage 2: learning, weights, persistence, label-free calibration, groups, guards."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from confprofile.data import UserRecord
from confprofile.evaluate import ece
from confprofile.rl.config import RLConfig
from confprofile.rl.config import ENCODER_DEFAULTS
from confprofile.rl.encoder_policy import balance_weights, group_advantages, label_drift, noisy_views, train_encoder_stage2
from confprofile.student import EncoderStudent, EncoderStudentConfig, open_student
from confprofile.student.calibration import apply_platt, fit_platt, fused_posterior
from confprofile.student.encoder import calibrate_against
from confprofile.student.features import FeatureConfig
from confprofile.student.targets import posterior_row, pseudo_posteriors
from confprofile.taxonomy import Taxonomy

TAXONOMY = Taxonomy.model_validate({"name": "t", "dimensions": [
    {"name": "pet", "labels": [{"name": "cat"}, {"name": "dog"}, {"name": "fish"}]}]})
WORDS = {"cat": "whiskers purring litter", "dog": "leash fetch barking", "fish": "aquarium fins bubbles"}
FILLER = "today weather coffee music walk friends movie lunch news city".split()


def planted(n: int, seed: int, signal: float = 0.8):
    """Users whose posts name their pet's typical words with probability `signal` (else filler only)."""
    rng = np.random.default_rng(seed)
    users, gold = [], {}
    for i in range(n):
        pet = ["cat", "dog", "fish"][i % 3]
        posts = [" ".join(rng.choice(FILLER, 4)) for _ in range(3)]
        if rng.random() < signal:
            posts.append(f"{rng.choice(FILLER)} {WORDS[pet]}")
        users.append(UserRecord(user_id=f"s{seed}_{i}", data={"posts": posts}))
        gold[f"s{seed}_{i}"] = {"pet": pet}
    return users, gold


def noisy_pseudo(gold: dict, accuracy: float, seed: int, confidence: float | None = None) -> pd.DataFrame:
    """Pseudo-labels right with probability `accuracy`, stating `confidence` (default: the true accuracy)."""
    rng = np.random.default_rng(seed)
    rows = []
    for user_id, labels in gold.items():
        truth = labels["pet"]
        label = truth if rng.random() < accuracy else rng.choice([x for x in ("cat", "dog", "fish") if x != truth])
        rows.append({"user_id": user_id, "dimension": "pet", "label": label, "confidence": confidence or accuracy,
                     "votes": json.dumps({label: 1.0}), "kept": True})
    return pd.DataFrame(rows)


def lexical_student(**options) -> EncoderStudent:
    return EncoderStudent(TAXONOMY, EncoderStudentConfig(features=FeatureConfig(encoder="", min_df=1), feature_candidates=[], **options))


def accuracy(frame: pd.DataFrame, gold: dict) -> float:
    return float(np.mean([gold[u]["pet"] == label for u, label in zip(frame.user_id, frame.label)]))


def test_encoder_student_learns_a_planted_lexical_signal_from_noisy_labels():
    users, gold = planted(150, 1)
    test, test_gold = planted(90, 2)
    student = lexical_student().fit(users, noisy_pseudo(gold, 0.7, 0))
    predictions = student.predict(test)
    assert len(predictions) == 90 and set(predictions.columns) >= {"user_id", "dimension", "label", "confidence", "model"}
    assert accuracy(predictions, test_gold) > 0.6  # chance is 1/3; the labels it learnt from are 70% right
    assert predictions.confidence.between(0, 1).all()


def test_weight_zero_leaves_an_example_out_and_soft_targets_change_the_fit():
    users, gold = planted(60, 3)
    pseudo = noisy_pseudo(gold, 0.8, 1)
    base = lexical_student(calibration_folds=0, validation_share=0).fit(users, pseudo)
    extra_user = UserRecord(user_id="extra", data={"posts": ["whiskers purring litter fins"]})
    extra = pd.concat([pseudo, pd.DataFrame([{"user_id": "extra", "dimension": "pet", "label": "fish", "confidence": 0.0,
                                              "votes": None, "kept": True}])])
    with_zero = lexical_student(calibration_folds=0, validation_share=0)
    with_zero.featurizer = base.featurizer  # the same vocabulary: only the examples differ
    with_zero.fit(users + [extra_user], extra)
    assert np.allclose(base.heads_.weight.detach().numpy(), with_zero.heads_.weight.detach().numpy(), atol=1e-5)
    soft = pseudo.assign(votes=[json.dumps({"cat": 0.4, "dog": 0.3, "fish": 0.3})] * len(pseudo), confidence=0.4)
    softer = lexical_student(calibration_folds=0, validation_share=0)
    softer.featurizer = base.featurizer
    softer.fit(users, soft)
    assert not np.allclose(base.heads_.weight.detach().numpy(), softer.heads_.weight.detach().numpy(), atol=1e-3)


def test_label_targets_follow_the_pseudo_label_where_the_posterior_mode_does_not():
    users, gold = planted(120, 5)
    right = noisy_pseudo(gold, 1.0, 2)  # every pseudo-label right, but stated at .3 with the votes on another label
    wrong_vote = {"cat": "dog", "dog": "fish", "fish": "cat"}
    pseudo = right.assign(confidence=0.3, votes=[json.dumps({label: 1.0, wrong_vote[label]: 5.0}) for label in right.label])
    post = pseudo_posteriors(pseudo, [u.user_id for u in users], TAXONOMY)["pet"]
    assert (post.posterior.argmax(1) != post.label).all() and (post.one_hot().argmax(1) == post.label).all()
    test, test_gold = planted(90, 6)
    followed = {targets: accuracy(lexical_student(fit_targets=targets, calibration_folds=0, validation_share=0)
                                  .fit(users, pseudo).predict(test), test_gold) for targets in ("posterior", "label")}
    assert followed["label"] > 0.6 > followed["posterior"]
    with pytest.raises(ValueError, match="fit_targets"):
        EncoderStudentConfig(fit_targets="votes")


def test_feature_candidates_are_chosen_on_the_validation_pseudo_labels_without_gold():
    users, gold = planted(120, 17)
    blind = FeatureConfig(encoder="", lexical_features=1, min_df=1)  # one n-gram: cannot see the planted words
    seeing = FeatureConfig(encoder="", min_df=1)
    student = EncoderStudent(TAXONOMY, EncoderStudentConfig(features=blind, feature_candidates=[seeing]))
    student.fit(users, noisy_pseudo(gold, 0.8, 9))
    assert student.feature_scores_[1] > student.feature_scores_[0] and student.config.features == seeing
    assert student.featurizer.vectorizer_.max_features is None or student.featurizer.vectorizer_.max_features > 1


def test_save_and_load_give_identical_predictions(tmp_path):
    users, gold = planted(60, 4)
    student = lexical_student().fit(users, noisy_pseudo(gold, 0.8, 2))
    student.save(tmp_path / "student")
    again = open_student(tmp_path / "student")
    test, _ = planted(30, 5)
    pd.testing.assert_frame_equal(student.predict(test), again.predict(test))


def test_label_free_calibration_lowers_ece():
    """Pseudo-labels whose stated confidence is their true accuracy calibrate the student without gold."""
    users, gold = planted(300, 6, signal=0.6)
    test, test_gold = planted(300, 7, signal=0.6)
    pseudo = noisy_pseudo(gold, 0.6, 3)
    calibrated = lexical_student(calibration_folds=4, l2=1e-6, max_iter=300).fit(users, pseudo)
    raw = lexical_student(calibration_folds=0, l2=1e-6, max_iter=300).fit(users, pseudo)

    def error(student):
        frame = student.predict(test)
        return ece(frame.confidence, [test_gold[u]["pet"] == label for u, label in zip(frame.user_id, frame.label)])

    assert error(calibrated) < error(raw) - 0.02


def test_fused_posterior_is_bayes_rule_for_independent_views():
    posterior, probs = np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]]), np.array([[0.8, 0.1, 0.1], [0.8, 0.1, 0.1]])
    fused = fused_posterior(posterior, probs)  # prior: the posterior's mean, (.375, .375, .25)
    expected = posterior * probs / [0.375, 0.375, 0.25]
    assert np.allclose(fused, expected / expected.sum(1, keepdims=True)) and np.allclose(fused.sum(1), 1.0)


def test_a_student_better_than_its_teachers_is_calibrated_near_its_own_accuracy():
    """Calibrated pseudo-labels right half the time; a student right 60% or 90% of the time (as it says),
    its errors independent of theirs. Against the posterior alone it would be said right about a third
    of the time; against the fused posterior its stated probabilities hold."""
    rng = np.random.default_rng(0)
    n, k = 6000, 3
    truth = rng.integers(0, k, n)
    wrong = (truth + rng.integers(1, k, n)) % k
    pseudo = np.where(rng.random(n) < 0.5, truth, wrong)
    posterior = np.full((n, k), 0.25)
    posterior[np.arange(n), pseudo] = 0.5
    accuracy = np.where(rng.random(n) < 0.5, 0.6, 0.9)
    student = np.where(rng.random(n) < accuracy, truth, (truth + rng.integers(1, k, n)) % k)
    probs = np.repeat(((1 - accuracy) / (k - 1))[:, None], k, axis=1)
    probs[np.arange(n), student] = accuracy
    slope, intercept = calibrate_against(probs, posterior, np.ones(n, dtype=bool))
    for stated in (0.6, 0.9):
        assert abs(apply_platt(np.array([stated]), slope, intercept)[0] - stated) < 0.04
    against_posterior = posterior[np.arange(n), student].mean()
    assert against_posterior < 0.5 < (student == truth).mean()


def test_platt_fit_recovers_a_known_map_and_is_the_identity_on_little_data():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.34, 0.99, 2000)
    target = apply_platt(p, 0.5, -0.3)
    slope, intercept = fit_platt(p, target)
    assert abs(slope - 0.5) < 0.05 and abs(intercept + 0.3) < 0.05
    assert fit_platt(p[:5], target[:5]) == (1.0, 0.0)


def test_posterior_gives_the_rest_to_other_labels_by_their_votes():
    row = posterior_row(["a", "b", "c"], "a", 0.6, {"a": 3.0, "b": 1.0})
    assert np.allclose(row, [0.6, 0.4, 0.0])
    assert np.allclose(posterior_row(["a", "b", "c"], "b", 0.5, {}), [0.25, 0.5, 0.25])
    frame = pd.DataFrame([{"user_id": "x", "dimension": "pet", "label": "unknown", "confidence": 0.9, "votes": None, "kept": True},
                          {"user_id": "y", "dimension": "pet", "label": "dog", "confidence": 0.7, "votes": None, "kept": False}])
    post = pseudo_posteriors(frame, ["x", "y", "z"], TAXONOMY)["pet"]
    assert post.has_row.tolist() == [False, True, False] and post.weight.tolist() == [0.0, 0.0, 0.0]


def test_rollouts_of_one_user_stay_in_one_group():
    import scipy.sparse as sp

    x = sp.csr_matrix(np.arange(1, 13, dtype=np.float32).reshape(3, 4))
    views = noisy_views(x, 4, 0.5, np.random.default_rng(0)).toarray()
    for b in range(3):
        for g in range(4):
            kept = views[b * 4 + g] != 0
            assert np.allclose(views[b * 4 + g][kept], x.toarray()[b][kept] * 2)  # rescaled by 1 / (1 - dropout)


def test_group_advantages_are_centred_per_group_and_zero_for_flat_groups():
    rewards = np.array([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    adv = group_advantages(rewards)
    assert np.allclose(adv[0], [1, -1, 1, -1]) and np.allclose(adv[1], 0)


def test_label_drift_and_balance_weights_hold_the_label_distribution():
    from confprofile.prompts import ParsedAnswer

    rollouts = [{"pet": ParsedAnswer(label, 0.9, "", "ok")} for label in ["cat"] * 8 + ["dog"] * 2]
    share = {"pet": {"cat": 0.5, "dog": 0.3, "fish": 0.2}}
    assert abs(label_drift(rollouts, share) - 0.3) < 1e-9  # |.8-.5| + |.2-.3| + |0-.2| over 2
    weights = balance_weights(["cat", "cat", "cat", "dog", None], share["pet"])
    assert np.allclose(weights, [0.5 / 0.75] * 3 + [0.3 / 0.25, 0.0])


def test_drift_guard_stops_and_restores_the_last_epoch_weights(tmp_path):
    users, gold = planted(60, 13)
    pseudo = noisy_pseudo(gold, 0.8, 7)
    student = lexical_student().fit(users, pseudo)
    start = student.holdout_heads_.weight.detach().clone()  # where stage 2 starts
    config = stage2_config(learning_rate=50.0, num_train_epochs=1, max_label_drift=0.0, class_balance=False)
    summary = train_encoder_stage2(student, users, tmp_path / "rl", config, pseudo=pseudo)
    assert summary["stop_reason"].startswith("label drift") and summary["steps"] == 1
    assert np.allclose(student.heads_.weight.detach().numpy(), start.numpy())


def stage2_config(**overrides) -> RLConfig:
    values = {"taxonomy": "profilebench", "num_generations": 4, "users_per_step": 32, "num_train_epochs": 2,
              "learning_rate": 0.1, "skip_above": None, "skip_below": None, "prior_weight": 0.5, **overrides}
    return RLConfig.from_dict(values)


def test_stage2_improves_or_keeps_a_student_on_a_pool_and_writes_its_files(tmp_path):
    users, gold = planted(60, 8)
    pool, _ = planted(240, 9)  # users no teacher labelled; their gold is never used
    test, test_gold = planted(150, 10)
    student = lexical_student().fit(users, noisy_pseudo(gold, 0.7, 4), vocabulary_users=users + pool)
    before = accuracy(student.predict(test), test_gold)
    config = stage2_config(**{k: v for k, v in ENCODER_DEFAULTS.items() if k != "users_per_step"})  # the encoder's defaults
    summary = train_encoder_stage2(student, users + pool, tmp_path / "rl", config, pseudo=noisy_pseudo(gold, 0.7, 4))
    after = accuracy(open_student(tmp_path / "rl").predict(test), test_gold)
    assert summary["steps"] > 0 and summary["rollouts_generated"] == summary["steps"] * 32 * 8 or summary["stop_reason"]
    assert after >= before + 0.05  # beyond the 70%-right labels it learnt from (.56 -> .71 when measured)
    log = [json.loads(line) for line in (tmp_path / "rl" / "rl_log.jsonl").read_text().splitlines()]
    assert log and {"rl/entropy", "rl/majority_ratio", "rl/agreement"} <= set(log[0])


def test_stage2_ends_with_the_pseudo_labels_label_shares_when_asked(tmp_path):
    """A large unbalanced step moves the answers' label distribution; the alignment puts it back."""
    users, gold = planted(60, 8)
    pool, _ = planted(240, 9)
    pseudo = noisy_pseudo(gold, 0.7, 4)
    target = pseudo.label.value_counts(normalize=True).reindex(["cat", "dog", "fish"]).fillna(0).to_numpy()
    distances = {}
    for align in (False, True):
        student = lexical_student().fit(users, pseudo, vocabulary_users=users + pool)
        config = stage2_config(**{**{k: v for k, v in ENCODER_DEFAULTS.items() if k != "users_per_step"},
                                  "learning_rate": 5.0, "class_balance": False, "max_label_drift": 1.0, "align_label_shares": align})
        summary = train_encoder_stage2(student, users + pool, tmp_path / str(align), config, pseudo=pseudo)
        shares = student.predict(pool).label.value_counts(normalize=True).reindex(["cat", "dog", "fish"]).fillna(0).to_numpy()
        distances[align] = 0.5 * np.abs(shares - target).sum()
    assert distances[False] > 0.1 and distances[True] < 0.03  # .179 and .017 when measured
    assert summary["label_shares"]["pet"]["after"] < summary["label_shares"]["pet"]["before"]


def test_stage2_keeps_the_sft_checkpoint_when_every_epoch_scores_worse_on_held_out_pseudo_labels(tmp_path):
    """A step size that wrecks the heads: the validation pseudo-labels (never fitted) pick the SFT start."""
    users, gold = planted(90, 14)
    pool, _ = planted(120, 15)
    pseudo = noisy_pseudo(gold, 0.8, 8)
    student = lexical_student().fit(users, pseudo, vocabulary_users=users + pool)
    assert len(student.validation_users_) == 18 and not set(student.validation_users_) - {u.user_id for u in users}
    test, _ = planted(60, 16)
    sft = student.predict(test)
    config = stage2_config(learning_rate=500.0, num_train_epochs=3, class_balance=False, max_label_drift=1.0, collapse_agreement=1.1,
                           select_checkpoint=True)
    summary = train_encoder_stage2(student, users + pool, tmp_path / "rl", config, pseudo=pseudo)
    scores = summary["validation_scores"]
    assert len(scores) == 4 and max(scores[1:]) < scores[0] and summary["chosen_epoch"] == 0
    assert (open_student(tmp_path / "rl").predict(test).label == sft.label).all()


def test_collapse_guard_stops_a_run_that_collapses(tmp_path):
    users, gold = planted(60, 11)
    pseudo = noisy_pseudo(gold, 0.9, 5).assign(label="cat", votes=json.dumps({"cat": 1.0}))  # everyone "cat"
    student = lexical_student(class_balance=False).fit(users, pseudo)
    config = stage2_config(learning_rate=1.0, num_train_epochs=20, class_balance=False, prior_weight=1.0,
                           collapse_agreement=0.9, collapse_entropy_drop=0.3, users_per_step=16, max_label_drift=1.0)
    summary = train_encoder_stage2(student, users, tmp_path / "rl", config, pseudo=pseudo)
    assert summary["stop_reason"] and summary["stop_reason"].startswith("collapse")
    assert summary["steps"] < 20 * 3


@pytest.mark.slow
def test_verbs_distill_rl_and_predict_an_encoder_student(tmp_path):
    """distill --student encoder -> rl -> predict, through the CLI, with the packaged MiniLM."""
    from typer.testing import CliRunner

    from confprofile.cli import app
    from confprofile.files import atomic_write_jsonl

    users, gold = planted(45, 12)
    atomic_write_jsonl(tmp_path / "users.jsonl", [u.model_dump() for u in users])
    noisy_pseudo(gold, 0.8, 6).to_parquet(tmp_path / "pseudo.parquet")
    (tmp_path / "taxonomy.yaml").write_text(TAXONOMY.model_dump_json())  # JSON is YAML
    (tmp_path / "rl.yaml").write_text("num_generations: 4\nusers_per_step: 16\nskip_above: null\nskip_below: null\n")
    runner = CliRunner()
    common = ["--taxonomy", str(tmp_path / "taxonomy.yaml")]
    result = runner.invoke(app, ["distill", "--student", "encoder", "--users", str(tmp_path / "users.jsonl"),
                                 "--pseudo-labels", str(tmp_path / "pseudo.parquet"), "--out", str(tmp_path / "student"), *common])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["rl", "--model", str(tmp_path / "student"), "--users", str(tmp_path / "users.jsonl"),
                                 "--pseudo-labels", str(tmp_path / "pseudo.parquet"), "--out", str(tmp_path / "student_rl"),
                                 "--config", str(tmp_path / "rl.yaml"), *common])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["predict", "--model", str(tmp_path / "student_rl"), "--users", str(tmp_path / "users.jsonl"),
                                 "--out", str(tmp_path / "pred.parquet")])
    assert result.exit_code == 0, result.output
    predictions = pd.read_parquet(tmp_path / "pred.parquet")
    assert len(predictions) == 45 and accuracy(predictions, gold) > 0.5
