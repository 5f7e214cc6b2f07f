"""Label-free confidence calibration of a student (pure functions).

Agreement with the pseudo-labels is not P(correct): they are often wrong. The aggregator's own
estimate is: its calibrated posterior says how likely each label is for a pseudo-labelled user. So a
student's stated probability p of its label is mapped to the aggregator's posterior of that same
label on users the student did not fit (out-of-fold), by a Platt fit (a logistic curve in logit p)
with those posteriors as soft targets. This assumes the student knows no more than the aggregate
(it is conservative where the student is better); a variant that treats the pseudo-labels as a noisy
channel and assumes the student's errors independent of theirs overestimated the student's accuracy
on the synthetic benchmark (ECE .33 against .03), since a student shares its teachers' biases.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def fit_platt(probability: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of P(correct) = sigmoid(slope * logit(p) + intercept), fitted to soft targets.

    Soft targets go through scikit-learn's weighted logistic regression as two rows per example
    (label 1 with weight t, label 0 with weight 1 - t). Fewer than 10 examples: the identity map.
    """
    from sklearn.linear_model import LogisticRegression

    probability, target = np.asarray(probability, float), np.clip(np.asarray(target, float), 0.0, 1.0)
    if len(probability) < 10:
        return 1.0, 0.0
    x = logit(probability)[:, None]
    model = LogisticRegression(C=100.0).fit(np.vstack([x, x]), np.r_[np.ones(len(x)), np.zeros(len(x))],
                                           sample_weight=np.r_[target, 1 - target])
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def apply_platt(probability: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(slope * logit(probability) + intercept)))
