"""Hold a student's label distribution at the aggregator's (pure functions).

Self-training is rich-get-richer: stage 2 votes the student's own answers into its targets, so a
small lean towards one label wins that label more users, and a flat head (top probability near
1/K) turns a small shift of its probabilities into a large shift of its answers. Measured on the
demo's users, stage 2 answered "female" for 95% of the test users (the pseudo-labels: 47%) and never
"high" for consumption level, while the collapse guards, which watch the sampled rollouts, saw
nothing. Stage 1 is where the label distribution is decided (the aggregator's class balance);
stage 2 should decide which users get which label. So after stage 2 each head's label offsets are
moved until its answers over the pool have the pseudo-labels' shares: a prior shift, the way
Saerens et al. adjust a classifier to new class priors, that changes no ranking of users within a label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from confprofile.taxonomy import UNKNOWN, Taxonomy


def pseudo_label_shares(pseudo: pd.DataFrame, taxonomy: Taxonomy) -> dict[str, np.ndarray]:
    """Per dimension, the share of each label (taxonomy order) among the kept pseudo-labels; dimensions without any are left out."""
    kept = pseudo[pseudo["kept"].astype(bool)] if "kept" in pseudo.columns else pseudo
    shares = {}
    for dim in taxonomy.dimensions:
        counts = kept.loc[(kept["dimension"] == dim.name) & (kept["label"] != UNKNOWN), "label"].value_counts()
        share = np.array([counts.get(label, 0) for label in dim.label_names], dtype=float)
        if share.sum() > 0:
            shares[dim.name] = share / share.sum()
    return shares


def answer_shares(probs: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """Share of users whose top label is each label, after adding `offsets` to the log-probabilities."""
    log_probs = np.log(np.clip(probs, 1e-12, 1.0)) + (0.0 if offsets is None else offsets)
    return np.bincount(log_probs.argmax(1), minlength=probs.shape[1]) / max(len(probs), 1)


def share_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance between two label distributions."""
    return 0.5 * float(np.abs(np.asarray(a) - np.asarray(b)).sum())


def share_matching_offsets(probs: np.ndarray, target: np.ndarray, iterations: int = 400) -> np.ndarray:
    """Log-probability offsets (mean 0) under which the users' top labels have the `target` shares.

    A damped fixed-point iteration on the offsets (each moves by the log ratio of target to current
    share, scaled by the spread of the log-probabilities, with a shrinking step); the offsets of the
    closest match seen are returned, so a share that cannot be met exactly (ties, few users) still
    ends as near as the users allow. Adding them to a linear head's bias applies them.
    """
    probs, target = np.asarray(probs, float), np.asarray(target, float)
    offsets = np.zeros(probs.shape[1])
    if len(probs) == 0:
        return offsets
    log_probs = np.log(np.clip(probs, 1e-12, 1.0))
    scale, floor = float(np.std(log_probs - log_probs.mean(1, keepdims=True))) or 1.0, 1.0 / len(probs)
    best, best_distance = offsets.copy(), share_distance(answer_shares(probs), target)
    for step in range(iterations):
        share = answer_shares(probs, offsets)
        distance = share_distance(share, target)
        if distance < best_distance:
            best, best_distance = offsets.copy(), distance
        if distance <= floor / 2:
            break
        offsets = offsets + scale * 0.5 / (1 + step / 10) * (np.log(target + floor) - np.log(share + floor))
        offsets -= offsets.mean()
    return best
