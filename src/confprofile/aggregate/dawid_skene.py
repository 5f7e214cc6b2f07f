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

from confprofile.aggregate.base import AGGREGATORS, EPS, Aggregator
from confprofile.aggregate.voting import WeightedVote


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
        self._start = WeightedVote(self.taxonomy)
        self._start.decisions_ = {}
        return super().fit(answers)

    def _fit_dim(self, name, part, enc):
        n, k, w = enc.n_users, part.k, len(enc.teachers)
        answer, cols, vals = soft_counts(part, n, w)
        counts = sp.csr_matrix((vals, (part.user[answer], cols)), shape=(n, w * k))

        start, votes, _ = self._start._fit_dim(name, part, enc)
        voted = np.bincount(part.user[part.voting], minlength=n) > 0
        unvoted = np.flatnonzero(~voted)  # usually none: index arrays keep every step a dense pass
        truth = np.nan_to_num(start)
        truth[unvoted] = 1.0 / k
        alpha = self.smoothing + self.prior_strength * np.eye(k)
        n_voted, previous = n - len(unvoted), -np.inf
        for _ in range(self.n_iter):
            # M-step: confusion[t, true, answered] and class prior from the current soft truth.
            seen = np.asarray(counts.T @ truth).reshape(w, k, k).transpose(0, 2, 1) + alpha
            confusion = seen / seen.sum(axis=2, keepdims=True)
            prior = (truth.sum(axis=0) - truth[unvoted].sum(axis=0) + 1.0) / (n_voted + k)
            # E-step: log posterior = log prior + soft counts x log confusion (normalised in place).
            log_conf = np.log(confusion).transpose(0, 2, 1).reshape(w * k, k)
            truth = np.asarray(counts @ log_conf)
            truth += np.log(prior)
            top = truth.max(axis=1, keepdims=True)
            truth -= top
            np.exp(truth, out=truth)
            total = truth.sum(axis=1, keepdims=True)
            truth /= total
            truth[unvoted] = prior
            # marginal log-likelihood per user (users without votes add log 1 = 0): stop when EM stalls
            loglik = float((top + np.log(total)).sum()) / max(n_voted, 1)
            if loglik - previous < self.tol:
                break
            previous = loglik
        self.confusions_[name] = confusion
        return truth, votes, prior


def soft_counts(part, n_users: int, n_teachers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries (answer index, column teacher * K + label, soft count) of the users x teacher.label count matrix."""
    k, w = part.k, n_teachers
    sw = part.weight
    single, dist = part.single, part.dist
    conf = np.maximum(part.conf, EPS)
    mean_conf = np.bincount(part.teacher[single], conf[single], w) / np.maximum(np.bincount(part.teacher[single], minlength=w), 1)
    index = [np.flatnonzero(single)]
    cols = [part.teacher[single].astype(np.int64) * k + part.label[single]]
    vals = [sw[single] * conf[single] / np.maximum(mean_conf[part.teacher[single]], EPS)]
    if dist.any():
        rows = np.flatnonzero(dist)
        index.append(np.repeat(rows, k))
        cols.append(np.repeat(part.teacher[rows].astype(np.int64) * k, k) + np.tile(np.arange(k), len(rows)))
        vals.append((sw[rows, None] * part.probs[rows]).ravel())
    return np.concatenate(index), np.concatenate(cols), np.concatenate(vals)
