"""Reward terms for one rollout against its group's quasi ground truth (pure functions).

A term maps (the rollout's parsed answer, the group's votes, `RewardParams`) to a float; terms are
registered by name in `REWARD_TERMS` and combined with weights from the config, so a new term plugs
in without touching the trainer.

Abstention policy (decided here, tested in tests/test_rl_pure.py):
- A dimension whose quasi ground truth is `unknown` (the group abstains) or None (no valid rollout)
  gives no agreement reward to anyone and is left out of the normaliser.
- Against a real quasi label: agreeing scores 1, abstaining scores `abstain_score` (default 0.25),
  a different label or an unparseable answer scores `wrong_score` (default 0). So abstaining against
  a strong vote costs less than being wrong, but more than agreeing: honest "unknown" beats a guess
  that goes against the group, yet the policy is not paid to abstain everywhere.
- Calibration ignores abstentions (they state no probability of a label).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from confprofile.prompts import ParsedAnswer
from confprofile.registry import Registry
from confprofile.rl.voting import DimensionVote
from confprofile.taxonomy import UNKNOWN


@dataclass(frozen=True)
class RewardParams:
    abstain_score: float = 0.25
    wrong_score: float = 0.0


Answer = Mapping[str, ParsedAnswer]
Votes = Mapping[str, DimensionVote]
RewardTerm = Callable[[Answer, Votes, RewardParams], float]
REWARD_TERMS: Registry[RewardTerm] = Registry("reward term")


def dimension_score(answer: ParsedAnswer, vote: DimensionVote, params: RewardParams) -> float:
    """1 for agreeing with the quasi label, `abstain_score` for `unknown`, `wrong_score` otherwise."""
    if answer.label == vote.label:
        return 1.0
    if answer.label == UNKNOWN:
        return params.abstain_score
    return params.wrong_score


@REWARD_TERMS.register("agreement")
def agreement_reward(answer: Answer, votes: Votes, params: RewardParams) -> float:
    """Vote-strength-weighted agreement with the quasi ground truth, normalised to [0, 1].

    Weighting by strength means a near-unanimous dimension matters more than a split one, whose
    quasi label is more likely wrong.
    """
    total = weight = 0.0
    for dim, vote in votes.items():
        if not vote.is_label:
            continue
        total += vote.strength * dimension_score(answer[dim], vote, params)
        weight += vote.strength
    return total / weight if weight > 0 else 0.0


@REWARD_TERMS.register("format")
def format_reward(answer: Answer, votes: Votes, params: RewardParams) -> float:
    """Share of dimensions with a valid label (a canonical label or `unknown`)."""
    return sum(a.label is not None for a in answer.values()) / len(answer) if answer else 0.0


@REWARD_TERMS.register("calibration")
def calibration_reward(answer: Answer, votes: Votes, params: RewardParams) -> float:
    """1 - Brier score of the stated confidences against agreement with the quasi ground truth.

    Over the dimensions where the group has a real quasi label and the rollout states a real label;
    0 when there is no such dimension (nothing to be calibrated about earns nothing).
    """
    errors = [
        (answer[dim].confidence - float(answer[dim].label == vote.label)) ** 2
        for dim, vote in votes.items()
        if vote.is_label and answer[dim].label not in (None, UNKNOWN)
    ]
    return 1.0 - sum(errors) / len(errors) if errors else 0.0
