"""Soft Dawid-Skene: EM over one confusion matrix per teacher and dimension.

Answers enter as soft counts: an answer counts as c / (its teacher's mean c) observations of its
label, so confidence ranks a teacher's own answers while EM alone learns how far to trust the teacher
(tempering every count by raw c instead lets the class prior swamp weak, calibrated teachers). A
label distribution counts as its probabilities; a teacher's k samples of a user share one count. So a
teacher that is confidently wrong about one class is learnt as such and down-weighted there,
whatever confidence it states. Both EM steps are sparse-dense products over an (users x teacher.label)
count matrix built once per dimension.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from confprofile.aggregate.base import AGGREGATORS, EPS, Aggregator, exp_shift, row_sum, voted
from confprofile.aggregate.voting import posterior_and_votes, times_sample_weight


@AGGREGATORS.register("dawid_skene")
class DawidSkene(Aggregator):
    """Dawid & Skene (1979) with soft counts, Dirichlet-smoothed confusions, weighted-vote start.

    `prior_strength`: pseudo-counts on the diagonal of each confusion row (a teacher is assumed
    better than chance until the data says otherwise); `smoothing`: pseudo-counts everywhere.
    EM stops after `n_iter` rounds, or earlier once the marginal log-likelihood per voted user gains
    less than `tol` (crowd-kit's criterion, per user rather than per answer).
    After `fit`, `confusions_[dim]` is (teachers, true label, answered label).
    """

    name = "dawid_skene"

    def __init__(self, taxonomy=None, n_iter: int = 10, tol: float = 1e-4, prior_strength: float = 2.0, smoothing: float = 0.5):
        super().__init__(taxonomy)
        self.n_iter, self.tol, self.prior_strength, self.smoothing = n_iter, tol, prior_strength, smoothing

    def fit(self, answers):
        self.confusions_ = {}
        return super().fit(answers)

    def _fit_dim(self, name, part, enc):
        n, k, w = enc.n_users, part.k, len(enc.teachers)
        counts = count_matrix(*soft_counts(part, n, w), shape=(n, w * k))

        truth, votes = posterior_and_votes(part, n)  # the weighted vote's posterior starts EM
        unvoted = np.flatnonzero(~voted(votes))  # usually none: index arrays keep every step a dense pass
        truth[unvoted] = 1.0 / k
        alpha = self.smoothing + self.prior_strength * np.eye(k)
        n_voted, previous = n - len(unvoted), -np.inf
        for _ in range(self.n_iter):
            # M-step: confusion[t, true, answered] and class prior from the current soft truth.
            seen = (counts.T @ truth).reshape(w, k, k).transpose(0, 2, 1) + alpha
            confusion = seen / seen.sum(axis=2, keepdims=True)
            prior = (truth.sum(axis=0) - truth[unvoted].sum(axis=0) + 1.0) / (n_voted + k)
            # E-step: log posterior = log prior + soft counts x log confusion (normalised in place).
            log_conf = np.log(confusion).transpose(0, 2, 1).reshape(w * k, k)
            truth = counts @ log_conf
            truth += np.log(prior)
            top = exp_shift(truth)
            truth -= top
            np.exp(truth, out=truth)
            total = row_sum(truth)
            truth /= total[:, None]
            truth[unvoted] = prior
            # marginal log-likelihood per voted user (the unvoted add log 1 = 0): stop when EM stalls
            loglik = float((top[:, 0] + np.log(total)).sum()) / max(n_voted, 1)
            if loglik - previous < self.tol:
                break
            previous = loglik
        self.confusions_[name] = confusion
        return truth, votes, prior


def count_matrix(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """CSR matrix of the entries, built directly when they come sorted by row (answers.parquet is written
    user by user) instead of through a sort; repeated (row, column) entries add up in every product."""
    if len(rows) < 2 or bool((rows[1:] >= rows[:-1]).all()):
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=shape[0]))])
        return sp.csr_matrix((vals, cols, indptr), shape=shape)
    return sp.csr_matrix((vals, (rows, cols)), shape=shape)


def soft_counts(part, n_users: int, n_teachers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries (user, column teacher * K + label, soft count) of the users x teacher.label count matrix."""
    k, w = part.k, n_teachers
    single, dist = part.single, part.dist
    teacher, conf = part.teacher[single].astype(np.int64), np.maximum(part.conf[single], EPS)
    mean_conf = np.bincount(teacher, conf, w) / np.maximum(np.bincount(teacher, minlength=w), 1)
    conf /= np.maximum(mean_conf, EPS)[teacher]
    teacher *= k  # in place from here on: the column teacher * K + label
    teacher += part.label[single]
    entries = [(part.user[single], teacher, times_sample_weight(part, conf))]
    if dist.any():
        rows = np.flatnonzero(dist)
        entries.append((np.repeat(part.user[rows], k),
                        np.repeat(part.teacher[rows].astype(np.int64) * k, k) + np.tile(np.arange(k), len(rows)),
                        (part.weight[rows, None] * part.probs[rows]).ravel()))
    return entries[0] if len(entries) == 1 else tuple(np.concatenate(column) for column in zip(*entries))
