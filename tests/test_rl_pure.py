"""Hand cases for the pure RL pieces: voting, rewards, filters, group scoring."""

from __future__ import annotations

import json
import math

import pytest

from confprofile.errors import InputError
from confprofile.prompts import ParsedAnswer
from confprofile.rl.config import RLConfig
from confprofile.rl.filters import LOW_AGREEMENT, NO_SIGNAL, group_drop_reason, select_users
from confprofile.rl.group import GroupScoring, label_entropy, score_batch
from confprofile.rl.rewards import REWARD_TERMS, RewardParams, agreement_reward, calibration_reward, format_reward
from confprofile.rl.voting import DimensionVote, prior_from_pseudo, vote_dimension, vote_group
from confprofile.taxonomy import Taxonomy


def A(label, conf=0.8):
    status = "missing" if label is None else ("abstain" if label == "unknown" else "ok")
    return ParsedAnswer(label, conf if label is not None else 0.0, "", status)


@pytest.fixture(scope="module")
def taxonomy():
    return Taxonomy.model_validate({"name": "t", "dimensions": [
        {"name": "gender", "labels": [{"name": "male"}, {"name": "female"}]},
        {"name": "age", "labels": [{"name": "young"}, {"name": "old"}, {"name": "middle"}]},
    ]})


def answer_text(gender, age, conf=0.8):
    return json.dumps({"gender": {"label": gender, "confidence": conf, "rationale": "r"},
                       "age": {"label": age, "confidence": conf, "rationale": "r"}})


# ---- voting -----------------------------------------------------------------------------------

def test_vote_is_confidence_weighted_not_a_head_count():
    vote = vote_dimension([A("male", 0.3), A("male", 0.3), A("female", 0.9)])
    assert vote.label == "female"
    assert vote.strength == pytest.approx(0.9 / 1.5)
    assert vote.shares["male"] == pytest.approx(0.6 / 1.5)


def test_invalid_answers_cast_no_vote_and_abstentions_vote_unknown():
    vote = vote_dimension([A(None), A(None), A("unknown", 0.9), A("male", 0.5)])
    assert vote.label == "unknown" and vote.strength == pytest.approx(0.9 / 1.4)
    assert not vote.is_label
    assert vote_dimension([A(None), A(None)]) == DimensionVote(None, 0.0, {})


def test_ties_break_deterministically_towards_a_real_label():
    assert vote_dimension([A("unknown", 0.5), A("male", 0.5)]).label == "male"
    assert vote_dimension([A("male", 0.5), A("female", 0.5)]).label == "female"  # alphabetical
    assert vote_dimension([A("female", 0.5), A("male", 0.5)]).label == "female"  # order-independent


def test_prior_blends_with_the_group_vote():
    answers = [A("male", 0.6), A("female", 0.4)]
    assert vote_dimension(answers, {"female": 1.0}, 0.0).label == "male"
    blended = vote_dimension(answers, {"female": 1.0}, 0.5)
    assert blended.label == "female" and blended.strength == pytest.approx(0.5 * 0.4 + 0.5)
    assert vote_dimension([A(None)], {"female": 0.7}, 0.2).label == "female"  # only the prior speaks
    assert prior_from_pseudo("male", 0.8) == {"male": 0.8}
    assert prior_from_pseudo("male", 0.8, {"male": 2.0, "female": 0.0}) == {"male": 2.0}


# ---- rewards ----------------------------------------------------------------------------------

def test_agreement_is_vote_strength_weighted_and_normalised():
    votes = {"gender": DimensionVote("male", 1.0), "age": DimensionVote("old", 0.5)}
    p = RewardParams(abstain_score=0.25, wrong_score=0.0)
    assert agreement_reward({"gender": A("male"), "age": A("old")}, votes, p) == 1.0
    assert agreement_reward({"gender": A("male"), "age": A("young")}, votes, p) == pytest.approx(1.0 / 1.5)
    assert agreement_reward({"gender": A("female"), "age": A("old")}, votes, p) == pytest.approx(0.5 / 1.5)


def test_abstaining_costs_less_than_being_wrong_and_unknown_quasi_truth_pays_nothing():
    p = RewardParams()
    votes = {"gender": DimensionVote("male", 0.9), "age": DimensionVote("unknown", 0.9)}
    right = agreement_reward({"gender": A("male"), "age": A("old")}, votes, p)
    abstain = agreement_reward({"gender": A("unknown"), "age": A("old")}, votes, p)
    wrong = agreement_reward({"gender": A("female"), "age": A("unknown")}, votes, p)
    broken = agreement_reward({"gender": A(None), "age": A("unknown")}, votes, p)
    assert right == 1.0 and abstain == 0.25 and wrong == 0.0 and broken == 0.0
    nothing = {"gender": DimensionVote("unknown", 1.0), "age": DimensionVote(None, 0.0)}
    assert agreement_reward({"gender": A("unknown"), "age": A("old")}, nothing, p) == 0.0


def test_format_and_calibration():
    votes = {"gender": DimensionVote("male", 1.0), "age": DimensionVote("old", 1.0)}
    p = RewardParams()
    assert format_reward({"gender": A("male"), "age": A(None)}, votes, p) == 0.5
    assert format_reward({"gender": A("unknown"), "age": A("old")}, votes, p) == 1.0
    # confident and right, unsure and wrong: well calibrated
    good = calibration_reward({"gender": A("male", 0.9), "age": A("young", 0.2)}, votes, p)
    bad = calibration_reward({"gender": A("male", 0.2), "age": A("young", 0.9)}, votes, p)
    assert good == pytest.approx(1 - (0.01 + 0.04) / 2) and bad == pytest.approx(1 - (0.64 + 0.81) / 2)
    assert calibration_reward({"gender": A("unknown"), "age": A(None)}, votes, p) == 0.0
    assert set(REWARD_TERMS.names()) >= {"agreement", "format", "calibration"}


# ---- filters ----------------------------------------------------------------------------------

def test_select_users_by_mean_pseudo_confidence():
    sel = select_users(["a", "b", "c", "d"], {"a": 0.95, "b": 0.6, "c": 0.1, "d": math.nan}, 0.9, 0.3)
    assert sel.kept == ["b", "d"] and sel.too_easy == ["a"] and sel.hopeless == ["c"] and sel.no_prior == ["d"]
    assert select_users(["a", "c"], {"a": 0.95, "c": 0.1}, None, None).kept == ["a", "c"]


def test_group_drop_reasons():
    assert group_drop_reason([0.5, 0.5, 0.5], agreement=1.0, min_agreement=0.5) == NO_SIGNAL
    assert group_drop_reason([0.1, 0.5], agreement=0.4, min_agreement=0.5) == LOW_AGREEMENT
    assert group_drop_reason([0.1, 0.5], agreement=0.6, min_agreement=0.5) is None


def test_label_entropy():
    assert label_entropy(["a", "a"], 2) == 0.0
    assert label_entropy(["a", "b"], 2) == pytest.approx(1.0)
    assert label_entropy([], 3) == 0.0


# ---- group scoring ----------------------------------------------------------------------------

def test_score_batch_groups_votes_and_drops(taxonomy):
    texts = [answer_text("male", "old"), answer_text("male", "old"), answer_text("female", "old"), "garbage",
             answer_text("male", "young")] + [answer_text("female", "young")] * 3
    ids = ["u1"] * 4 + ["u2"] * 4
    scoring = GroupScoring(weights={"agreement": 1.0, "format": 0.5})
    out = score_batch(texts, ids, 4, taxonomy, scoring)
    assert out.votes[0]["gender"].label == "male" and out.votes[0]["age"].label == "old"
    assert out.drop_reasons == [None, None]
    agree = [row[0] for row in out.rewards[:4]]
    assert agree[0] == agree[1] == 1.0 and agree[3] == 0.0 and 0 < agree[2] < 1
    assert out.rewards[3][1] == 0.0 and out.rewards[0][1] == 1.0
    # unanimous group: no signal, dropped (NaN rewards)
    uniform = score_batch([answer_text("male", "old")] * 4, ["u"] * 4, 4, taxonomy, scoring)
    assert uniform.drop_reasons == [NO_SIGNAL] and all(math.isnan(v) for row in uniform.rewards for v in row)
    assert uniform.stats["dropped_no_signal"] == 1.0 and uniform.stats["entropy"] == 0.0
    assert uniform.stats["majority_ratio"] == 1.0 and uniform.stats["agreement"] == 1.0


def test_score_batch_low_agreement_and_prior(taxonomy):
    texts = [answer_text("male", "old"), answer_text("female", "young"), answer_text("male", "middle"), answer_text("female", "old")]
    low = score_batch(texts, ["u"] * 4, 4, taxonomy, GroupScoring(min_group_agreement=0.6))
    assert low.drop_reasons == [LOW_AGREEMENT]
    prior = {"u": {"gender": {"female": 1.0}}}
    with_prior = score_batch(texts, ["u"] * 4, 4, taxonomy, GroupScoring(prior_weight=0.5), prior)
    assert with_prior.votes[0]["gender"].label == "female"


def test_score_batch_rejects_broken_groups(taxonomy):
    with pytest.raises(ValueError, match="mix users"):
        score_batch(["{}"] * 4, ["a", "a", "b", "b"], 4, taxonomy, GroupScoring())
    with pytest.raises(ValueError, match="whole groups"):
        score_batch(["{}"] * 3, ["a"] * 3, 2, taxonomy, GroupScoring())


def test_rl_config_validates():
    assert RLConfig().scoring().terms == ["agreement", "format", "calibration"]
    with pytest.raises(ValueError):
        RLConfig(num_generations=1)
    with pytest.raises(KeyError):
        RLConfig(reward_weights={"agreemnt": 1.0})
    with pytest.raises(InputError, match="rl.lr.*unknown field"):
        RLConfig.from_dict({"lr": 1})
    assert "num_generations" in RLConfig.help()


# ---- collapse guards and the dev monitor ---------------------------------------------------------

def test_collapse_needs_high_agreement_and_falling_entropy():
    from confprofile.rl.guards import collapse_reason

    assert collapse_reason([0.7, 0.99], [0.8, 0.3], 0.98, 0.5).startswith("collapse")
    assert collapse_reason([0.7, 0.99], [0.8, 0.7], 0.98, 0.5) is None  # confident but still diverse
    assert collapse_reason([0.7, 0.9], [0.8, 0.1], 0.98, 0.5) is None  # diverging groups: not collapse
    assert collapse_reason([], [], 0.98, 0.5) is None


def test_dev_stop_after_patience_evaluations_below_best():
    from confprofile.rl.guards import dev_stop_reason

    assert dev_stop_reason([0.5, 0.6, 0.55, 0.54], patience=2, tolerance=0.02).startswith("dev F1 falling")
    assert dev_stop_reason([0.5, 0.6, 0.59, 0.54], patience=2, tolerance=0.02) is None  # within tolerance once
    assert dev_stop_reason([0.6, 0.5], patience=2, tolerance=0.0) is None  # too few evaluations


def test_monitor_writes_curves_and_stops_on_collapse(tmp_path):
    from transformers import TrainerControl, TrainerState

    from confprofile.rl.guards import RLMonitor

    monitor = RLMonitor(tmp_path / "rl_log.jsonl", collapse_agreement=0.95, collapse_entropy_drop=0.5)
    state, control = TrainerState(), TrainerControl()
    for step, (agree, ent) in enumerate([(0.6, 0.9), (0.8, 0.7), (0.97, 0.3)], 1):
        state.global_step = step
        monitor.on_log(None, state, control, logs={"rl/agreement": agree, "rl/entropy": ent, "reward": float("nan")})
    rows = [json.loads(line) for line in (tmp_path / "rl_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[0]["reward"] is None
    assert control.should_training_stop and rows[-1]["stop_reason"].startswith("collapse")
    assert all(r["uses_gold_dev"] is False for r in rows)


def test_quasi_gold_agreement():
    from confprofile.dev_monitor import quasi_gold_agreement

    votes = [{"gender": DimensionVote("male", 1.0), "age": DimensionVote("unknown", 1.0)},
             {"gender": DimensionVote("female", 0.6), "age": DimensionVote("old", 0.6)}]
    gold = {"a": {"gender": "male", "age": "old"}, "b": {"gender": "male"}}
    assert quasi_gold_agreement(votes, ["a", "b"], gold) == 0.5
    assert quasi_gold_agreement(votes, ["x", "y"], gold) is None


def test_quantile_thresholds_drop_a_fixed_share_of_a_narrow_band():
    from confprofile.rl.filters import quantile_thresholds, select_users

    mean_conf = {f"u{i}": 0.30 + 0.001 * i for i in range(100)}  # a narrow band, as weak teachers give
    above, below = quantile_thresholds(mean_conf, 0.9, 0.1)
    selection = select_users(list(mean_conf), mean_conf, above, below)
    assert selection.counts()["too_easy"] == 9 and selection.counts()["hopeless"] == 10
    assert quantile_thresholds({}, 0.9, 0.1) == (None, None)
    assert quantile_thresholds(mean_conf, None, 0.1)[0] is None
