"""Difficulty filtering by confidence (pure functions).

Before generation: a user whose stage-1 pseudo-labels are all very confident teaches the student
nothing new (too easy: the SFT student already learnt it), and one whose pseudo-labels are all near
chance has no trustworthy signal (hopeless). Both are skipped, so they are never generated for.

After generation: a group whose rollouts all earn the same reward has zero advantage under GRPO
(no learning signal), and a group that barely agrees with itself has an unreliable quasi ground
truth. Both are dropped from training (their rewards become NaN, which TRL turns into advantage 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import math


@dataclass
class UserSelection:
    kept: list[str]
    too_easy: list[str] = field(default_factory=list)
    hopeless: list[str] = field(default_factory=list)
    no_prior: list[str] = field(default_factory=list)  # no pseudo-label rows: kept, nothing to judge by

    def counts(self) -> dict[str, int]:
        return {"kept": len(self.kept), "too_easy": len(self.too_easy), "hopeless": len(self.hopeless), "no_prior": len(self.no_prior)}


def quantile_thresholds(mean_confidence: dict[str, float], skip_above: float | None, skip_below: float | None) -> tuple[float | None, float | None]:
    """Turn quantiles of the users' mean confidence into absolute thresholds.

    Calibrated confidences of weak teachers can sit in a narrow band (0.30-0.45 measured on the demo
    panel), where fixed thresholds keep everyone or no one; quantiles drop a fixed share instead.
    """
    values = sorted(v for v in mean_confidence.values() if not math.isnan(v))
    if not values:
        return None, None

    def at(q: float | None) -> float | None:
        return None if q is None else values[min(len(values) - 1, int(q * len(values)))]

    return at(skip_above), at(skip_below)


def select_users(user_ids: Sequence[str], mean_confidence: dict[str, float], skip_above: float | None, skip_below: float | None) -> UserSelection:
    """Keep users whose mean pseudo-label confidence lies in [skip_below, skip_above]."""
    selection = UserSelection(kept=[])
    for user_id in user_ids:
        conf = mean_confidence.get(user_id)
        if conf is None or math.isnan(conf):
            selection.no_prior.append(user_id)
            selection.kept.append(user_id)
        elif skip_above is not None and conf > skip_above:
            selection.too_easy.append(user_id)
        elif skip_below is not None and conf < skip_below:
            selection.hopeless.append(user_id)
        else:
            selection.kept.append(user_id)
    return selection


NO_SIGNAL = "no_signal"
LOW_AGREEMENT = "low_agreement"


def group_drop_reason(totals: Sequence[float], agreement: float, min_agreement: float, min_reward_spread: float = 1e-6) -> str | None:
    """Why a group carries no usable learning signal, or None to keep it.

    `totals` are the rollouts' weighted rewards; `agreement` is the group's mean vote strength over
    dimensions with a real quasi label (0 when none has one).
    """
    if max(totals) - min(totals) <= min_reward_spread:
        return NO_SIGNAL
    if agreement < min_agreement:
        return LOW_AGREEMENT
    return None
