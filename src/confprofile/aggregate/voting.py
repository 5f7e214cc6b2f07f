"""Majority and confidence-weighted voting, as bincounts over the encoded answers.

Each answer is an opinion over the K labels: with a label distribution (`label_probs`) it is that
distribution, otherwise "my label, with probability `confidence`; no information otherwise". A
teacher's k samples of one user share one vote (each weighs 1/k). Abstentions and missing answers
carry no vote.
"""

from __future__ import annotations

import numpy as np

from confprofile.aggregate.base import AGGREGATORS, EPS, Aggregator, DimAnswers, decide, exp_shift, row_sum


def vote_matrix(user: np.ndarray, label: np.ndarray, weight: np.ndarray, n_users: int, k: int) -> np.ndarray:
    """(n_users, k) sum of `weight` per user and label, over answers with a label (label >= 0)."""
    m = label >= 0
    flat = user[m].astype(np.int64) * k + label[m]
    return np.bincount(flat, weights=weight[m], minlength=n_users * k).astype(float).reshape(n_users, k)


def dist_matrix(user: np.ndarray, probs: np.ndarray, weight: np.ndarray, n_users: int) -> np.ndarray:
    """(n_users, K) weighted sum of label distributions (rows of `probs`, NaN rows skipped)."""
    rows = np.isfinite(probs[:, 0])
    return np.stack(
        [np.bincount(user[rows], weights=weight[rows] * probs[rows, j], minlength=n_users) for j in range(probs.shape[1])],
        axis=1,
    ).astype(float)


def cell_sums(part: DimAnswers, values: np.ndarray, n_users: int) -> np.ndarray:
    """(n_users, K) sums of `values` (one per single-label answer) per user and label."""
    sums = np.bincount(part.cells, weights=values, minlength=n_users * part.k)
    return sums.astype(float, copy=False).reshape(n_users, part.k)  # float even when no answer is counted


def times_sample_weight(part: DimAnswers, values: np.ndarray) -> np.ndarray:
    """`values` (one per single-label answer, a buffer of the caller's) x the answer's sample weight, in place."""
    if not part.whole_votes:
        values *= part.weight[part.single]
    return values


def uniform(k: int) -> np.ndarray:
    return np.full(k, 1.0 / k)


def normalize_rows(m: np.ndarray) -> np.ndarray:
    total = row_sum(m)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, m / total, np.nan)


def confidence_votes(part: DimAnswers, n_users: int, conf: np.ndarray) -> np.ndarray:
    """Linear vote mass: sum of weight x confidence on each answer's label (or its distribution).

    `conf`: the single-label answers' confidences (`part.conf[part.single]`).
    """
    dist = part.dist
    votes = cell_sums(part, times_sample_weight(part, np.maximum(conf, EPS)), n_users)
    if dist.any():
        votes += dist_matrix(part.user[dist], part.probs[dist], part.weight[dist], n_users)
    return votes


@AGGREGATORS.register("majority")
class MajorityVote(Aggregator):
    """One vote per teacher (its samples split it); posterior = vote share. Ignores confidence."""

    name = "majority"

    def _fit_dim(self, name, part, enc):
        counts = vote_matrix(part.user, part.label, part.weight, enc.n_users, part.k)
        return normalize_rows(counts), counts, uniform(part.k)


def log_evidence(part: DimAnswers, n_rows: int, index: np.ndarray | None = None, conf: np.ndarray | None = None) -> np.ndarray:
    """(n_rows, K) naive-Bayes log evidence summed per user, or per `index` (e.g. a user-teacher pair) of each answer.

    A label answer with confidence c adds log(c (K-1) / (1 - c)) to its label (c is floored just
    above chance, so an answer is never evidence against its own label); a distribution adds its
    log-probabilities. `conf`: the single-label answers' confidences, if the caller has gathered them.
    """
    k, single, dist = part.k, part.single, part.dist
    if k < 2:  # a single label needs no evidence
        return np.zeros((n_rows, k))
    weight = np.clip(part.conf[single] if conf is None else conf, 1.0 / k + 1e-3, 1 - 1e-3)
    np.reciprocal(weight, out=weight)  # in place from here on: c / (1 - c) = 1 / (1/c - 1), then the log-odds
    weight -= 1
    np.reciprocal(weight, out=weight)
    weight *= k - 1
    np.log(weight, out=weight)
    times_sample_weight(part, weight)
    if index is None:
        evidence, index = cell_sums(part, weight, n_rows), part.user
    else:
        evidence = vote_matrix(index[single], part.label[single], weight, n_rows, k)
    if dist.any():
        logp = np.log(np.clip(part.probs[dist], 1e-4, 1.0))
        evidence += dist_matrix(index[dist], logp - logp.max(axis=1, keepdims=True), part.weight[dist], n_rows)
    return evidence


def softmax_inplace(logits: np.ndarray) -> np.ndarray:
    """Row softmax, overwriting `logits` (an (n, K) matrix at 1M users is worth not copying)."""
    logits -= exp_shift(logits)
    np.exp(logits, out=logits)
    logits /= row_sum(logits)[:, None]
    return logits


def posterior_and_votes(part: DimAnswers, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """(naive-Bayes posterior over the confidences, linear confidence votes), each (n_users, K)."""
    conf = part.conf[part.single]  # gathered once for both
    return softmax_inplace(log_evidence(part, n_users, conf=conf)), confidence_votes(part, n_users, conf)


@AGGREGATORS.register("weighted")
class WeightedVote(Aggregator):
    """Confidence-weighted vote; the posterior is naive Bayes over the (calibrated) confidences.

    `weights="confidence"`: label = argmax of summed confidence (the Conf-Profile vote).
    `weights="log_odds"`: label = argmax of summed log(c (K-1) / (1 - c)), the Bayes decision for
    independent calibrated teachers. Either way the confidence is the naive-Bayes posterior of the
    label, which is over-confident when teachers share errors (calibration cannot see that).
    """

    name = "weighted"

    def __init__(self, taxonomy=None, weights: str = "confidence"):
        super().__init__(taxonomy)
        if weights not in ("confidence", "log_odds"):
            raise ValueError(f"weights must be 'confidence' or 'log_odds', not {weights!r}")
        self.weights = weights

    def _fit_dim(self, name, part, enc):
        post, votes = posterior_and_votes(part, enc.n_users)
        if self.weights == "confidence":  # decide by the vote, report the posterior of that decision
            self.decisions_[name] = decide(votes)
        return post, votes, uniform(part.k)
