"""Simulated teachers with known accuracy, confusion and miscalibration (tests and benchmarks only).

Never part of the product: it returns the truth next to the answers so that a test can measure
what the label-free aggregation cannot see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class SimTeacher:
    name: str
    accuracy: float = 0.7  # mean probability of a correct answer
    overconfidence: float = 1.0  # stated logit = overconfidence * true logit + bias (1, 0: calibrated)
    bias: float = 0.0
    abstain: float = 0.0  # probability of answering `unknown`
    missing: float = 0.0  # probability of a missing / invalid answer
    samples: int = 1
    confusion: dict[str, np.ndarray] | None = None  # per dimension (true, answered); replaces `accuracy`
    scores: float | None = None  # a scoring teacher: label_probs = softmax(scores * onehot(truth) + noise + bias)
    label_bias: float = 0.0  # with `scores`: extra logit on label 0 (a small model's label prior)


def _logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def simulate(
    n_users: int,
    dims: dict[str, int],
    teachers: list[SimTeacher],
    priors: dict[str, np.ndarray] | None = None,
    seed: int = 0,
    categorical: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(answers in the answers.parquet layout, truth as user_id/dimension/label). Labels are `<dim>_<j>`."""
    rng = np.random.default_rng(seed)
    users = np.array([f"u{i:07d}" for i in range(n_users)], dtype=object)
    parts, truths = [], []
    for dim, k in dims.items():
        names = np.array([f"{dim}_{j}" for j in range(k)] + ["unknown"], dtype=object)
        prior = np.asarray(priors[dim]) if priors and dim in priors else np.full(k, 1.0 / k)
        truth = rng.choice(k, size=n_users, p=prior / prior.sum())
        truths.append(pd.DataFrame({"user_id": users, "dimension": dim, "label": names[truth]}))
        for t_index, t in enumerate(teachers):
            for s in range(t.samples):
                probs = None
                if t.scores is not None:
                    logits = rng.normal(0, 1, (n_users, k)) + t.scores * np.eye(k)[truth]
                    logits[:, 0] += t.label_bias
                    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
                    probs /= probs.sum(axis=1, keepdims=True)
                    label, q = probs.argmax(axis=1), probs.max(axis=1)
                elif t.confusion is not None:
                    cum = np.cumsum(np.asarray(t.confusion[dim], dtype=float)[truth], axis=1)
                    label = (rng.random(n_users)[:, None] > cum / cum[:, -1:]).sum(axis=1)
                    q = rng.beta(8 * t.accuracy, 8 * (1 - t.accuracy), n_users)
                else:
                    q = rng.beta(8 * t.accuracy, 8 * (1 - t.accuracy), n_users)
                    correct = rng.random(n_users) < q
                    label = np.where(correct, truth, (truth + rng.integers(1, k, n_users)) % k)
                conf = q if probs is not None else 1 / (1 + np.exp(-(t.overconfidence * _logit(q) + t.bias)))
                u = rng.random(n_users)
                label = np.where(u < t.abstain, k, label)  # k = unknown
                gone = (u >= t.abstain) & (u < t.abstain + t.missing)
                label = np.where(gone, -1, label)
                conf = np.where(gone, 0.0, np.round(conf, 4))
                parts.append((t_index, s, dim, names, label, conf, probs))

    def column(values, categories):
        cat = pd.Categorical.from_codes(values, categories=categories)
        return cat if categorical else np.asarray(cat.astype(object))

    all_names = sorted({n for *_, names, _, _, _ in parts for n in names})
    name_code = {n: i for i, n in enumerate(all_names)}
    frames = []
    for t_index, s, dim, names, label, conf, probs in parts:
        code = np.where(label >= 0, np.array([name_code[n] for n in names])[np.maximum(label, 0)], -1)
        if probs is not None and not categorical:
            dists = [json.dumps(dict(zip(names[:-1], np.round(p, 4).tolist()))) for p in probs]
            probs = np.where(label >= 0, np.array(dists, dtype=object), None)
        frames.append(pd.DataFrame({
            "user_id": column(np.arange(n_users), users),
            "teacher": column(np.full(n_users, t_index), [t.name for t in teachers]),
            "sample": np.full(n_users, s, dtype=np.int32),
            "dimension": column(np.full(n_users, list(dims).index(dim)), list(dims)),
            "label": column(code, all_names),
            "confidence": conf,
            **({"label_probs": probs} if probs is not None and not categorical else {}),
        }))
    answers = pd.concat(frames, ignore_index=True)
    if not categorical:
        answers["rationale"] = np.where(answers["label"].isna(), "", "because of " + answers["label"].fillna("") + " cues")
        answers["parse_status"] = np.where(answers["label"].isna(), "invalid", np.where(answers["label"] == "unknown", "abstain", "ok"))
        if "label_probs" not in answers:
            answers["label_probs"] = None
    return answers, pd.concat(truths, ignore_index=True)


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error, equal-width bins, last bin closed."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = index == b
        if m.any():
            total += m.sum() * abs(confidence[m].mean() - correct[m].mean())
    return total / max(len(confidence), 1)
