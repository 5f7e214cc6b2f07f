"""Quasi ground truth for one user from the G rollouts of its group (pure functions, no torch).

Each rollout is parsed into one `ParsedAnswer` per dimension. Per dimension, every rollout whose
label is valid casts a vote for it weighted by its stated confidence; an abstention votes for
`unknown` like any label, and a missing/invalid answer casts no vote. The winning label is the quasi
ground truth and its share of the vote mass is the vote strength (1.0 = unanimous and confident).

Optionally the stage-1 pseudo-label acts as a prior: the vote shares are blended with the prior
distribution, `(1 - w) * rollout_shares + w * prior`, so `w = 0` is pure self-consistency (TTRL
style) and `w = 1` replays the stage-1 label.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from confprofile.prompts import ParsedAnswer
from confprofile.taxonomy import UNKNOWN

MIN_VOTE_WEIGHT = 0.05  # a vote stated at confidence 0 still counts a little: it did pick the label


@dataclass(frozen=True)
class DimensionVote:
    """The group's verdict on one dimension.

    `label` is a canonical label, `unknown` (the group abstains) or None (no valid rollout at all).
    `strength` is the winning share of the vote mass in [0, 1]; `shares` the full distribution.
    """

    label: str | None
    strength: float
    shares: dict[str, float] = field(default_factory=dict)

    @property
    def is_label(self) -> bool:
        return self.label is not None and self.label != UNKNOWN


Prior = Mapping[str, Mapping[str, float]]  # dimension -> {label: probability}


def vote_weight(answer: ParsedAnswer) -> float:
    """The weight of one rollout's vote: its confidence, floored so that a stated 0 still counts."""
    return max(float(answer.confidence), MIN_VOTE_WEIGHT)


def vote_dimension(answers: Sequence[ParsedAnswer], prior: Mapping[str, float] | None = None, prior_weight: float = 0.0) -> DimensionVote:
    """Confidence-weighted vote of one dimension over a group, optionally blended with a prior."""
    mass: dict[str, float] = {}
    for answer in answers:
        if answer.label is not None:
            mass[answer.label] = mass.get(answer.label, 0.0) + vote_weight(answer)
    total = sum(mass.values())
    shares = {label: m / total for label, m in mass.items()} if total > 0 else {}
    prior_total = sum(prior.values()) if prior else 0.0
    if prior_weight > 0 and prior_total > 0:
        w = prior_weight if shares else 1.0  # no valid rollout: only the prior speaks
        blended = {label: (1 - w) * s for label, s in shares.items()}
        for label, p in prior.items():
            blended[label] = blended.get(label, 0.0) + w * p / prior_total
        shares = blended
    if not shares:
        return DimensionVote(None, 0.0, {})
    # ties break towards a real label over `unknown`, then alphabetically: deterministic across processes
    label = min(shares, key=lambda name: (-round(shares[name], 12), name == UNKNOWN, name))
    return DimensionVote(label, shares[label], shares)


def vote_group(
    group: Sequence[Mapping[str, ParsedAnswer]],
    dimensions: Sequence[str],
    prior: Prior | None = None,
    prior_weight: float = 0.0,
) -> dict[str, DimensionVote]:
    """The quasi ground truth of every dimension for one user's group of parsed rollouts."""
    prior = prior or {}
    return {
        dim: vote_dimension([rollout[dim] for rollout in group], prior.get(dim), prior_weight)
        for dim in dimensions
    }


def prior_from_pseudo(label: str | None, confidence: float, votes: Mapping[str, float] | None = None) -> dict[str, float]:
    """A prior distribution from a stage-1 pseudo-label: its vote distribution if known, else the label alone."""
    if votes:
        positive = {k: float(v) for k, v in votes.items() if float(v) > 0}
        if positive:
            return positive
    if label is None:
        return {}
    return {label: max(float(confidence), MIN_VOTE_WEIGHT)}


def summarize_pseudo(frame) -> tuple[dict[str, float], dict[str, Prior]]:
    """(mean pseudo-label confidence per user, prior distribution per user and dimension)."""
    mean_conf = frame.groupby("user_id")["confidence"].mean().astype(float).to_dict()
    priors: dict[str, dict[str, dict[str, float]]] = {}
    has_votes = "votes" in frame.columns
    for row in frame.itertuples(index=False):
        votes = None
        if has_votes and isinstance(row.votes, str):
            try:
                votes = json.loads(row.votes)
            except ValueError:
                votes = None
        label = row.label if isinstance(row.label, str) else None
        priors.setdefault(str(row.user_id), {})[row.dimension] = prior_from_pseudo(label, float(row.confidence), votes if isinstance(votes, dict) else None)
    return {str(k): v for k, v in mean_conf.items()}, priors
