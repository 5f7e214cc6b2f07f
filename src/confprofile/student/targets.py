"""Pseudo-label rows -> what a student fits: the aggregator's posterior per user and dimension (pure).

The posterior gives the pseudo-label its calibrated confidence and shares the rest among the other
labels in proportion to their votes (`votes` JSON; uniformly when no other label got a vote). It is
both the soft target of the fit (or, with `fit_targets: label`, the pseudo-label alone: `one_hot`)
and the label-free estimate of P(correct) that calibrates a student's confidence. The fit weight is
the confidence, 0 for a row not kept, an abstention, or a user without a row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from confprofile.files import read_parquet_frame
from confprofile.taxonomy import UNKNOWN, Taxonomy

PSEUDO_COLUMNS = {"user_id", "dimension", "label", "confidence"}


@dataclass
class PseudoPosterior:
    labels: list[str]
    posterior: np.ndarray  # (users, labels), rows sum to 1 where has_row
    weight: np.ndarray  # (users,) fit weight
    label: np.ndarray  # (users,) the pseudo-label's index, -1 without a row

    @property
    def has_row(self) -> np.ndarray:
        """(users,) bool: a real pseudo-label exists (kept or not)."""
        return self.label >= 0

    def one_hot(self) -> np.ndarray:
        """(users, labels): 1 at the pseudo-label, zeros without a row."""
        out = np.zeros_like(self.posterior)
        rows = np.flatnonzero(self.has_row)
        out[rows, self.label[rows]] = 1.0
        return out


def posterior_row(labels: list[str], label: str, confidence: float, votes: dict[str, float]) -> np.ndarray:
    """The winner at `confidence`, the remainder spread over the other labels by their votes."""
    k = len(labels)
    row = np.zeros(k)
    winner = labels.index(label)
    others = np.array([max(float(votes.get(name, 0.0)), 0.0) if j != winner else 0.0 for j, name in enumerate(labels)])
    rest = 1.0 - confidence
    row[:] = others / others.sum() * rest if others.sum() > 0 else (rest / (k - 1) if k > 1 else 0.0)
    row[winner] = confidence if k > 1 else 1.0
    return row


def pseudo_posteriors(targets: pd.DataFrame, users: Sequence[str], taxonomy: Taxonomy) -> dict[str, PseudoPosterior]:
    """Per dimension, the posterior of every user in `users` order (zeros and weight 0 without a row)."""
    index = {user_id: i for i, user_id in enumerate(users)}
    n = len(users)
    out = {}
    frame = targets.assign(user_id=targets["user_id"].astype(str))
    for dim in taxonomy.dimensions:
        labels = dim.label_names
        posterior, weight, code = np.zeros((n, len(labels))), np.zeros(n), np.full(n, -1)
        part = frame[frame["dimension"] == dim.name]
        votes = part["votes"] if "votes" in part.columns else pd.Series(None, index=part.index, dtype=object)
        kept = part["kept"] if "kept" in part.columns else pd.Series(True, index=part.index)
        for user_id, label, confidence, vote, keep in zip(part["user_id"], part["label"], part["confidence"], votes, kept):
            i = index.get(user_id)
            if i is None or not isinstance(label, str) or label == UNKNOWN or label not in labels:
                continue
            confidence = 0.0 if confidence is None or np.isnan(confidence) else float(np.clip(confidence, 0.0, 1.0))
            parsed = json.loads(vote) if isinstance(vote, str) and vote else {}
            posterior[i] = posterior_row(labels, label, confidence, parsed)
            weight[i] = confidence if keep else 0.0
            code[i] = labels.index(label)
        out[dim.name] = PseudoPosterior(labels, posterior, weight, code)
    return out


def held_out_score(probs: dict[str, np.ndarray], posterior: dict[str, PseudoPosterior], rows: np.ndarray) -> float | None:
    """The aggregator's estimate of a student's accuracy on held-out pseudo-labelled `rows`, averaged
    with its estimate of the class-balanced accuracy, over dimensions (`probs`: the student's (rows, K)).

    Accuracy is the posterior mass the aggregate puts on the student's label; the balanced version
    averages that mass per label (soft recall), so a model cannot win by dropping minority labels.
    Label-free: if the pseudo-labels' errors do not depend on the student's, agreement with them
    rises with the student's true accuracy, so it ranks models without gold."""
    scores = []
    for dim, p in probs.items():
        target = posterior[dim]
        has = target.has_row[rows]
        if not has.any():
            continue
        mass, chosen = target.posterior[rows][has], p[has].argmax(1)
        hit = np.zeros_like(mass)
        hit[np.arange(len(chosen)), chosen] = 1.0
        per_label = mass.sum(0)
        recall = (mass * hit).sum(0)[per_label > 0] / per_label[per_label > 0]
        scores.append(0.5 * (mass[np.arange(len(chosen)), chosen].mean() + recall.mean()))
    return float(np.mean(scores)) if scores else None


def load_pseudo(path: str | Path):
    """pseudo_labels.parquet as a DataFrame; InputError when unreadable or missing columns."""
    return read_parquet_frame(path, PSEUDO_COLUMNS, layout="pseudo_labels.parquet")
