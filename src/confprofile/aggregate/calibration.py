"""Gold-free calibration: teacher label priors, teacher confidences, and the class balance of pseudo-labels.

Calibrators are steps of three kinds, by their `stage`: "answers" steps change the answer table before the
aggregator and run in the configured order; one "posterior" step shifts the aggregate's posteriors; one
"confidence" step re-estimates the chosen labels' confidences (`reliability.GroupConfidence`). Here:
- `label_prior` (answers): a teacher that gives label distributions (log-prob scoring) is corrected
  for its own label prior: each label's probability is divided by its mean over the users, then
  renormalised. A small model that scores one label high for everybody stops voting for it blindly.
- `confidence` (answers): per teacher and dimension, a monotone map from stated confidence to the
  rate at which such answers agree with the consensus of the OTHER teachers (leave-one-group-out:
  teachers of one group, `reliability.TeacherGroups`, never witness for each other).
  A small labelled dev set may replace the consensus; then `used_labels` is true.
- `class_balance` (posteriors): estimate the label prior (EM re-estimation, Saerens et al. 2002, or
  target marginals from config), shift the posteriors to it, and set per-class decision weights so
  that the pseudo-label distribution matches it instead of collapsing onto the majority class.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from confprofile.aggregate.base import Encoded, decide
from confprofile.aggregate.voting import dist_matrix, log_evidence, normalize_rows
from confprofile.registry import Registry

CALIBRATORS: Registry[type] = Registry("calibrator")
CONF_RANGE = (0.001, 0.999)


@CALIBRATORS.register("label_prior")
class LabelPriorCorrection:
    """Divide each teacher's label distributions by their mean over users (per dimension), renormalise.

    `label_shares` ({dimension: {label: share}}, `known_shares`): multiply by them too, so that one
    teacher alone answers under the known prior. Aggregation leaves it out (it fuses the corrected
    distributions as likelihoods and applies the prior once, in `class_balance`)."""

    stage = "answers"
    used_labels = False

    def __init__(self, label_shares: dict[str, dict[str, float]] | None = None):
        self.label_shares = label_shares or {}

    def fit_transform(self, enc: Encoded) -> Encoded:
        dims = {}
        for name, part in enc.dims.items():
            if part.probs is None:
                dims[name] = part
                continue
            dist = part.dist
            w = len(enc.teachers)
            n = np.bincount(part.teacher[dist], minlength=w)
            mean = dist_matrix(part.teacher[dist], part.probs[dist], np.ones(dist.sum()), w) / np.maximum(n, 1)[:, None]
            shares = self.label_shares.get(name)
            target = share_vector(shares, part.labels) if shares else np.ones(part.k)
            probs = part.probs.copy()
            probs[dist] = prior_shift(part.probs[dist], target, mean[part.teacher[dist]])
            label, conf = part.label.copy(), part.conf.copy()
            label[dist] = decide(probs[dist])
            conf[dist] = probs[dist].max(axis=1)
            dims[name] = replace(part, probs=probs, label=label, conf=conf)
        return enc.with_dims(dims)


def loto_agreement(part, enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
    """Per answer: (1.0 if it names the other teachers' winner else 0.0, usable: another teacher voted).

    The other teachers' winner is their naive-Bayes (log-odds of stated confidence) vote. "Other" leaves
    out the answer's whole teacher group (`Encoded.teacher_group`): two views of one encoder agree
    with each other whether or not they are right, so a peer of the same group is no witness.
    """
    w = len(enc.teachers)
    group = enc.groups()[part.teacher]
    pairs, pair = np.unique(part.user.astype(np.int64) * w + group, return_inverse=True)
    n_votes = np.bincount(part.user[part.voting], minlength=enc.n_users)
    has_others = (n_votes[pairs // w] > np.bincount(pair[part.voting], minlength=len(pairs)))[pair] & part.voting
    others = log_evidence(part, enc.n_users)[pairs // w] - log_evidence(part, len(pairs), pair)
    return (decide(others)[pair] == part.label).astype(float), has_others


def isotonic(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted isotonic regression by pool-adjacent-violators over the distinct x values: (knots, fitted)."""
    knots, inverse = np.unique(np.round(x, 3), return_inverse=True)  # <= 1001 knots keep the PAV loop short
    w = np.bincount(inverse, weight, len(knots))
    mean = np.bincount(inverse, weight * y, len(knots)) / np.maximum(w, 1e-12)
    blocks: list[list[float]] = []  # [weighted mean, weight, number of knots]
    for m, wt in zip(mean.tolist(), w.tolist()):
        blocks.append([m, wt, 1])
        while len(blocks) > 1 and blocks[-2][0] >= blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks[-1]
            blocks[-1] = [(m1 * w1 + m2 * w2) / max(w1 + w2, 1e-12), w1 + w2, n1 + n2]
    fitted = np.repeat([b[0] for b in blocks], [b[2] for b in blocks])
    return knots, fitted


def fit_monotone(conf: np.ndarray, target: np.ndarray, weight: np.ndarray, method: str):
    """A non-decreasing map confidence -> P(agreement): isotonic regression or temperature scaling."""
    if method == "isotonic":
        knots, fitted = isotonic(conf, target, weight)
        return lambda c: np.interp(c, knots, fitted)
    if method == "temperature":
        clipped = np.clip(conf, *CONF_RANGE)
        logit = np.log(clipped / (1 - clipped))
        grid = np.exp(np.linspace(-3, 3, 121))  # candidate temperatures
        p = np.clip(1 / (1 + np.exp(-logit[None, :] / grid[:, None])), 1e-9, 1 - 1e-9)
        nll = -(weight * (target * np.log(p) + (1 - target) * np.log(1 - p))).sum(axis=1)
        t = grid[np.argmin(nll)]

        def scale(c):
            c = np.clip(c, *CONF_RANGE)
            return 1 / (1 + np.exp(-np.log(c / (1 - c)) / t))

        return scale
    raise ValueError(f"unknown confidence calibration method {method!r}; use 'isotonic' or 'temperature'")


@CALIBRATORS.register("confidence")
class ConfidenceCalibration:
    """Per teacher and dimension, stated confidence -> how often the other teachers back the answer.

    The target is agreement with the leave-one-teacher-out consensus, so a teacher is judged by its
    peers only. It is a lower bound on accuracy when the peers are weak: an 80%-accurate teacher
    among two near-chance ones was calibrated to ~58% (measured on simulated teachers).
    `dev_labels` (user_id, dimension, label): a small labelled set replaces the consensus (only its
    users' answers fit the maps) and the output records `used_labels`. `min_answers`: a teacher
    with fewer usable answers in a dimension keeps its stated confidence. Open problem: a teacher who is
    always sure and always wrong, among two honest ones, steers each honest one's consensus, which
    calibrates them below chance (.28, simulated); re-voting the consensus with calibrated confidences
    then hears nobody (.44).
    """

    stage = "answers"

    def __init__(self, method: str = "isotonic", dev_labels: pd.DataFrame | None = None, min_answers: int = 20):
        self.method, self.dev_labels, self.min_answers = method, dev_labels, min_answers
        self.used_labels = dev_labels is not None
        self.maps_: dict[tuple[str, str], object] = {}

    def _dev_targets(self, name, part, enc):
        dev = self.dev_labels[self.dev_labels["dimension"] == name]
        ids = dev["user_id"].astype(str).to_numpy()
        pos = np.minimum(np.searchsorted(enc.users, ids), max(enc.n_users - 1, 0))
        found = (enc.users[pos] == ids) if enc.n_users else np.zeros(len(dev), bool)
        index = {label: k for k, label in enumerate(part.labels)}
        gold = np.full(enc.n_users, -3)
        gold[pos[found]] = [index.get(v, -3) for v in dev["label"].to_numpy()[found]]
        truth = gold[part.user]
        return (part.label == truth).astype(float), (truth >= 0) & part.voting

    def _calibrate(self, name, part, enc):
        if self.dev_labels is not None:
            target, usable = self._dev_targets(name, part, enc)
        else:
            target, usable = loto_agreement(part, enc)
        sw = part.weight
        conf = part.conf.copy()
        for t, teacher in enumerate(enc.teachers):
            fit_rows = usable & (part.teacher == t)
            if fit_rows.sum() < self.min_answers:
                continue
            f = fit_monotone(part.conf[fit_rows], target[fit_rows], sw[fit_rows], self.method)
            self.maps_[(name, teacher)] = f
            rows = part.voting & (part.teacher == t)
            conf[rows] = np.clip(f(part.conf[rows]), *CONF_RANGE)
        return conf

    def fit_transform(self, enc: Encoded) -> Encoded:
        dims = {}
        for name, part in enc.dims.items():
            if part.k == 0:
                dims[name] = part
                continue
            conf, probs = self._calibrate(name, part, enc), part.probs
            if probs is not None:  # rescale distributions so their top label carries the calibrated confidence
                dist = part.dist
                probs = probs.copy()
                top = probs[dist].max(axis=1, keepdims=True)
                rest = np.maximum(1 - top, 1e-12)
                scaled = np.where(probs[dist] == top, conf[dist, None], probs[dist] * (1 - conf[dist, None]) / rest)
                probs[dist] = normalize_rows(scaled)
            dims[name] = replace(part, conf=conf, probs=probs)
        return enc.with_dims(dims)


def share_vector(shares: dict[str, float], labels: list[str]) -> np.ndarray:
    """A {label: share} mapping as a vector in the dimension's label order (a label not named: 0)."""
    return np.array([float(shares.get(label, 0.0)) for label in labels])


def prior_shift(posterior: np.ndarray, target: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Posteriors made under the label prior `base`, restated under `target` (Bayes' rule; rows renormalised)."""
    return normalize_rows(posterior * (target / np.maximum(base, 1e-12)))


def em_prior(posterior: np.ndarray, base: np.ndarray, n_iter: int = 100, tol: float = 1e-7) -> np.ndarray:
    """Saerens et al. (2002): the label prior that maximises the likelihood of posteriors made under `base`."""
    prior = base.copy()
    for _ in range(n_iter):
        new = prior_shift(posterior, prior, base).mean(axis=0)
        if np.abs(new - prior).max() < tol:
            return new
        prior = new
    return prior


def match_marginals(posterior: np.ndarray, target: np.ndarray, n_iter: int = 200) -> np.ndarray:
    """Per-class log-weights b so that argmax(log posterior + b) labels each class about target[k] of the users."""
    log_post = np.log(np.maximum(posterior, 1e-12))
    b, best, best_gap = np.zeros(len(target)), np.zeros(len(target)), np.inf
    for _ in range(n_iter):
        freq = np.bincount(decide(log_post + b), minlength=len(target)) / len(posterior)
        gap = np.abs(freq - target).sum()
        if gap < best_gap:
            best, best_gap = b.copy(), gap
        if gap < 0.01:
            break
        b += np.clip(0.5 * (np.log(target + 1e-6) - np.log(freq + 1e-6)), -0.5, 0.5)
    return best


@CALIBRATORS.register("class_balance")
class ClassBalance:
    """Shift posteriors to the estimated label prior; weight classes so hard labels follow that prior.

    `targets`: {dimension: {label: share}} known from outside the answers (`known_shares`; wins over
    estimation); `prior`: "mean"
    (mean posterior; default) or "em" (Saerens maximum-likelihood re-estimation). Dawid-Skene already
    re-estimates its prior by EM; on vote posteriors, which are not likelihoods, EM collapsed onto the
    majority class (simulated 80/20 truth: minority share 0.07 -> 0.01, while "mean" gave 0.13-0.19).
    The returned confidence is the prior-shifted posterior of the chosen label.
    """

    stage = "posterior"
    used_labels = False

    def __init__(self, targets: dict[str, dict[str, float]] | None = None, prior: str = "mean"):
        if prior not in ("em", "mean"):
            raise ValueError(f"prior must be 'em' or 'mean', not {prior!r}")
        self.targets, self.prior = targets or {}, prior
        self.priors_: dict[str, np.ndarray] = {}
        self.weights_: dict[str, np.ndarray] = {}

    def fit_transform(self, name: str, labels: list[str], posterior: np.ndarray, base: np.ndarray):
        """(label codes, confidence) for the rows of `posterior` (all with votes)."""
        if name in self.targets:
            target = share_vector(self.targets[name], labels)
        elif self.prior == "em":
            target = em_prior(posterior, base)
        else:
            target = posterior.mean(axis=0)
        target = target / target.sum()
        shifted = prior_shift(posterior, target, base)
        b = match_marginals(shifted, target) if len(shifted) else np.zeros(len(labels))
        self.priors_[name], self.weights_[name] = target, np.exp(b)
        code = decide(np.log(np.maximum(shifted, 1e-12)) + b)
        return code, shifted[np.arange(len(code)), code]
