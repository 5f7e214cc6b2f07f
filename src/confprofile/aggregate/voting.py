"""Majority and confidence-weighted voting, as sums over the encoded answers per (user, label) cell.

Each answer is an opinion over the K labels: with a label distribution (`label_probs`) it is that
distribution, otherwise "my label, with probability `confidence`; no information otherwise". A
teacher's k samples of one user share one vote (each weighs 1/k). Abstentions and missing answers
carry no vote.
"""

from __future__ import annotations

import numpy as np

from confprofile.aggregate import kernels
from confprofile.aggregate.base import AGGREGATORS, EPS, Aggregator, DimAnswers, decide, row_max, row_sum


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


@AGGREGATORS.register("majority")
class MajorityVote(Aggregator):
    """One vote per teacher (its samples split it); posterior = vote share. Ignores confidence."""

    name = "majority"

    def _fit_dim(self, name, part, enc):
        counts = vote_matrix(part.user, part.label, part.weight, enc.n_users, part.k)
        return normalize_rows(counts), counts, uniform(part.k)


def log_odds(conf: np.ndarray, k: int) -> np.ndarray:
    """Each answer's evidence for its label, log(c (K-1) / (1 - c)): c is clipped just above chance, so an
    answer is never evidence against its own label (and a single label needs no evidence: zeros)."""
    if k < 2:
        return np.zeros(len(conf))
    out = np.empty(len(conf))
    kernels.confidence_odds(conf, k, out)
    return np.log(out, out=out)


def dist_evidence(part: DimAnswers, index: np.ndarray, n_rows: int) -> np.ndarray:
    """(n_rows, K) log-probabilities of the label distributions, summed per `index` of each answer."""
    logp = np.log(np.clip(part.probs[part.dist], 1e-4, 1.0))
    return dist_matrix(index[part.dist], logp - logp.max(axis=1, keepdims=True), part.weight[part.dist], n_rows)


def log_evidence(part: DimAnswers, n_rows: int, index: np.ndarray | None = None) -> np.ndarray:
    """(n_rows, K) naive-Bayes log evidence summed per user, or per `index` (e.g. a user-teacher pair) of each
    answer: a label answer adds its `log_odds` to its label, a distribution its log-probabilities."""
    index = part.user if index is None else index
    single = part.single
    weight = times_sample_weight(part, log_odds(part.conf[single], part.k))
    evidence = vote_matrix(index[single], part.label[single], weight, n_rows, part.k)
    if part.dist.any():
        evidence += dist_evidence(part, index, n_rows)
    return evidence


def softmax_inplace(logits: np.ndarray) -> np.ndarray:
    """Row softmax, overwriting `logits` (an (n, K) matrix at 1M users is worth not copying); returns each
    row's log-sum-exp (Dawid-Skene's marginal log-likelihood). exp() needs no shift while every logit is
    within +-700 (the evidence of a few dozen teachers is), else each row is shifted by its maximum."""
    shift = 0.0
    if logits.size and not (-700 < logits.min() and logits.max() < 700):
        shift = row_max(logits)
        logits -= shift[:, None]
    np.exp(logits, out=logits)
    totals = np.empty(len(logits))
    kernels.divide_by_row_sums(logits, totals)
    return np.log(totals, out=totals) + shift


def posterior_and_votes(part: DimAnswers, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """(naive-Bayes posterior over the confidences, linear vote mass: sum of sample weight x confidence on
    each answer's label or its distribution), each (n_users, K), from one pass over the answers."""
    k = part.k
    user, _, label, conf, sample_weight = part.label_answers()
    votes, evidence = np.zeros((n_users, k)), np.zeros((n_users, k))
    kernels.add_votes(user, label, conf, log_odds(conf, k), sample_weight, EPS, k, votes.reshape(-1), evidence.reshape(-1))
    if part.dist.any():
        votes += dist_matrix(part.user[part.dist], part.probs[part.dist], part.weight[part.dist], n_users)
        evidence += dist_evidence(part, part.user, n_users)
    softmax_inplace(evidence)
    return evidence, votes


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
