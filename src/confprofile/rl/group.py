"""Score a whole generation batch group by group (pure; the trainer calls it after the gather).

The batch holds consecutive groups of `num_generations` rollouts, one group per user (TRL's
RepeatSampler puts a prompt's completions back to back in the global order). Each group is parsed,
voted on, rewarded and possibly dropped here, on the full list: voting on a process-local slice
would split groups that straddle processes and give each half a different quasi ground truth.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from confprofile.prompts import ParsedAnswer, parse_answer
from confprofile.rl.filters import LOW_AGREEMENT, NO_SIGNAL, group_drop_reason
from confprofile.rl.rewards import REWARD_TERMS, RewardParams
from confprofile.rl.voting import DimensionVote, Prior, vote_group
from confprofile.taxonomy import UNKNOWN, Taxonomy


@dataclass(frozen=True)
class GroupScoring:
    """How a group is voted on, rewarded and filtered (built from `RLConfig`)."""

    weights: Mapping[str, float] = field(default_factory=lambda: {"agreement": 1.0, "format": 0.2, "calibration": 0.2})
    params: RewardParams = RewardParams()
    prior_weight: float = 0.0
    min_group_agreement: float = 0.0

    @property
    def terms(self) -> list[str]:
        for name in self.weights:
            REWARD_TERMS.get(name)  # fail early on a misspelt term
        return list(self.weights)


@dataclass
class BatchScores:
    terms: list[str]
    rewards: list[list[float]]  # one row per rollout, one column per term; NaN rows = dropped group
    drop_reasons: list[str | None]  # one per group
    votes: list[dict[str, DimensionVote]]  # one per group
    stats: dict[str, float]  # collapse monitors over the batch


def score_batch(
    texts: Sequence[str],
    user_ids: Sequence[str],
    num_generations: int,
    taxonomy: Taxonomy,
    scoring: GroupScoring,
    priors: Mapping[str, Prior] | None = None,
) -> BatchScores:
    """Rewards for every rollout of a batch of whole groups, plus drop decisions and batch stats."""
    if len(texts) != len(user_ids) or len(texts) % num_generations:
        raise ValueError(f"{len(texts)} rollouts do not form whole groups of {num_generations}")
    dims = taxonomy.dimension_names
    terms = scoring.terms
    parsed = [parse_answer(text, taxonomy) for text in texts]
    rewards: list[list[float]] = []
    reasons: list[str | None] = []
    all_votes: list[dict[str, DimensionVote]] = []
    for start in range(0, len(texts), num_generations):
        ids = set(user_ids[start : start + num_generations])
        if len(ids) != 1:
            raise ValueError(f"rollouts {start}..{start + num_generations - 1} mix users {sorted(ids)}: groups are not contiguous")
        group = parsed[start : start + num_generations]
        votes = vote_group(group, dims, (priors or {}).get(user_ids[start]), scoring.prior_weight)
        rows = [[REWARD_TERMS.get(t)(answer, votes, scoring.params) for t in terms] for answer in group]
        totals = [sum(scoring.weights[t] * r for t, r in zip(terms, row)) for row in rows]
        reason = group_drop_reason(totals, group_agreement(votes), scoring.min_group_agreement)
        if reason is not None:  # NaN in every term: TRL marks the rows unscorable and zeroes their advantage
            rows = [[math.nan] * len(terms) for _ in rows]
        reasons.append(reason)
        rewards += rows
        all_votes.append(votes)
    return BatchScores(terms, rewards, reasons, all_votes, batch_stats(parsed, all_votes, taxonomy, reasons))


def group_agreement(votes: Mapping[str, DimensionVote]) -> float:
    """Mean vote strength over dimensions with a real quasi label; 0 when none has one."""
    strengths = [v.strength for v in votes.values() if v.is_label]
    return sum(strengths) / len(strengths) if strengths else 0.0


def label_entropy(labels: Sequence[str], n_classes: int) -> float:
    """Shannon entropy of a label sample, normalised by log(n_classes): 1 = uniform, 0 = one class."""
    if not labels or n_classes < 2:
        return 0.0
    counts = Counter(labels).values()
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts) / math.log(n_classes)


def batch_stats(
    parsed: Sequence[Mapping[str, ParsedAnswer]],
    votes: Sequence[Mapping[str, DimensionVote]],
    taxonomy: Taxonomy,
    reasons: Sequence[str | None] = (),
) -> dict[str, float]:
    """Collapse monitors: per-dimension label entropy and majority ratio across users, agreement, rates."""
    stats: dict[str, float] = {}
    entropies, majorities = [], []
    for dim in taxonomy.dimensions:
        labels = [p[dim.name].label for p in parsed if p[dim.name].label not in (None, UNKNOWN)]
        stats[f"entropy/{dim.name}"] = entropy = label_entropy(labels, len(dim.labels))
        entropies.append(entropy)
        if labels:
            majorities.append(Counter(labels).most_common(1)[0][1] / len(labels))
    answers = [a for p in parsed for a in p.values()]
    stats["entropy"] = sum(entropies) / len(entropies)
    stats["majority_ratio"] = sum(majorities) / len(majorities) if majorities else 1.0
    stats["agreement"] = sum(group_agreement(v) for v in votes) / len(votes) if votes else 0.0
    stats["valid_rate"] = sum(a.label is not None for a in answers) / len(answers) if answers else 0.0
    stats["abstain_rate"] = sum(a.label == UNKNOWN for a in answers) / len(answers) if answers else 0.0
    stats["groups"] = float(len(votes))
    for reason in (NO_SIGNAL, LOW_AGREEMENT):
        stats[f"dropped_{reason}"] = float(sum(r == reason for r in reasons))
    return stats
