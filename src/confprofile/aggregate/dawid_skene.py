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

from confprofile.aggregate import kernels
from confprofile.aggregate.base import AGGREGATORS, EPS, Aggregator, voted
from confprofile.aggregate.reliability import SAMPLE_USERS, independent_skill, label_matrix
from confprofile.aggregate.voting import posterior_and_votes, softmax_inplace


@AGGREGATORS.register("dawid_skene")
class DawidSkene(Aggregator):
    """Dawid & Skene (1979) with soft counts, Dirichlet-smoothed confusions, weighted-vote start.

    `prior_strength`: pseudo-counts on the diagonal of each confusion row (a teacher is assumed
    better than chance until the data says otherwise); `smoothing`: pseudo-counts everywhere.
    EM stops after `n_iter` rounds, or earlier once the marginal log-likelihood per voted user gains
    less than `tol` (crowd-kit's criterion, per user rather than per answer).
    `min_kappa`: below this chance-corrected agreement between any two teachers EM only fits noise (on
    random answers it found teachers 10-17 points above chance), so the dimension falls back.
    After `fit`, `confusions_[dim]` is (teachers, true label, answered label), `loss_history_[dim]` the
    negative marginal log-likelihood per voted user after each EM round, and `fallbacks_[dim]` says
    why a dimension fell back to the weighted vote's posterior (see `degenerate`).
    """

    name = "dawid_skene"

    def __init__(self, taxonomy=None, n_iter: int = 10, tol: float = 1e-4, prior_strength: float = 2.0, smoothing: float = 0.5,
                 min_kappa: float = 0.02):
        super().__init__(taxonomy)
        self.n_iter, self.tol, self.prior_strength, self.smoothing = n_iter, tol, prior_strength, smoothing
        self.min_kappa = min_kappa

    def fit(self, answers):
        self.confusions_, self.loss_history_ = {}, {}
        return super().fit(answers)

    def _fit_dim(self, name, part, enc):
        n, k, w = enc.n_users, part.k, len(enc.teachers)
        counts = sp.csr_matrix(soft_count_matrix(part, n, w), shape=(n, w * k))

        truth, votes = posterior_and_votes(part, n)  # the weighted vote's posterior starts EM
        unvoted = np.flatnonzero(~voted(votes))  # usually none: index arrays keep every step a dense pass
        truth[unvoted] = 1.0 / k
        alpha = self.smoothing + self.prior_strength * np.eye(k)
        n_voted, previous = n - len(unvoted), -np.inf
        history = self.loss_history_.setdefault(name, [])
        for _ in range(self.n_iter):
            # M-step: confusion[t, true, answered] and class prior from the current soft truth.
            seen = (counts.T @ truth).reshape(w, k, k).transpose(0, 2, 1) + alpha
            confusion = seen / seen.sum(axis=2, keepdims=True)
            prior = (np.ones(n) @ truth - truth[unvoted].sum(axis=0) + 1.0) / (n_voted + k)  # BLAS column sums
            # E-step: log posterior = log prior + soft counts x log confusion (normalised in place).
            log_conf = np.log(confusion).transpose(0, 2, 1).reshape(w * k, k)
            truth = counts @ log_conf
            truth += np.log(prior)
            log_marginal = softmax_inplace(truth)
            truth[unvoted] = prior
            # marginal log-likelihood per voted user (the unvoted add log 1 = 0): stop when EM stalls
            loglik = float(log_marginal.sum()) / max(n_voted, 1)
            history.append(-loglik)
            if loglik - previous < self.tol:
                break
            previous = loglik
        self.confusions_[name] = confusion
        skill = independent_skill(label_matrix(part, n, w, SAMPLE_USERS), k, enc.groups())
        reason = (f"no two teachers agree beyond chance (best kappa {skill:.3f})" if skill < self.min_kappa
                  else degenerate(confusion, prior, truth[:SAMPLE_USERS]))  # a view: no copy of a 1M-row posterior
        if reason is not None:  # EM found no teacher better than chance, or piled every user on one label
            self.fallbacks_[name] = reason
            start, _ = posterior_and_votes(part, n)
            return start, votes, np.full(k, 1.0 / k)
        return truth, votes, prior


def degenerate(confusion: np.ndarray, prior: np.ndarray, posterior: np.ndarray, margin: float = 0.02) -> str | None:
    """Why an EM fit is not to be trusted, or None: every teacher's estimated accuracy (its confusion
    diagonal weighted by the prior) within `margin` of chance (EM explained the answers as noise: measured
    on synthetic users, where it then labelled 94-100% of users with one class), or the decisions far
    more concentrated on one label than the prior it estimated."""
    k = len(prior)
    accuracy = np.einsum("tkk,k->t", confusion, prior)
    if k > 1 and accuracy.max() < 1.0 / k + margin:
        return f"no teacher above chance (best estimated accuracy {accuracy.max():.3f}, chance {1 / k:.3f})"
    if len(posterior) and k > 1:
        share = np.bincount(posterior.argmax(axis=1), minlength=k) / len(posterior)
        if share.max() > prior.max() + 0.3:
            return f"decisions collapse on one label ({share.max():.0%} of users, prior {prior.max():.0%})"
    return None


def soft_count_matrix(part, n_users: int, n_teachers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays (soft counts, columns, indptr) of the users x (teacher * K + label) count matrix, built
    without a sort; a teacher's repeated (user, column) entries (its samples) add up in every product."""
    k = part.k
    user, teacher, label, conf, sample_weight = part.label_answers()
    mean_conf = np.maximum(kernels.mean_confidence(teacher, label, conf, EPS, n_teachers), EPS)
    extra_user, extra_col, extra_val = np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0)
    if part.dist.any():  # a label distribution counts as its probabilities
        dist = np.flatnonzero(part.dist)
        extra_user = np.repeat(part.user[dist], k)
        extra_col = np.repeat(part.teacher[dist].astype(np.int64) * k, k) + np.tile(np.arange(k), len(dist))
        extra_val = (part.weight[dist, None] * part.probs[dist]).ravel()
    index_dtype = np.int32 if len(label) + len(extra_user) < 2**31 else np.int64  # as scipy would make them (no copy)
    indptr = np.zeros(n_users + 1, dtype=index_dtype)
    kernels.count_entries(user, label, extra_user, indptr)
    cols, vals = np.empty(indptr[-1], dtype=index_dtype), np.empty(indptr[-1])
    kernels.fill_soft_counts(user, teacher, label, conf, sample_weight, mean_conf, EPS, k,
                             extra_user, extra_col, extra_val, indptr, cols, vals)
    return vals, cols, indptr
