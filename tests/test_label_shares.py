"""Holding a student's label distribution at the aggregator's (student.label_shares, LinearHeads.shift)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from confprofile.student.encoder import LinearHeads
from confprofile.student.label_shares import answer_shares, pseudo_label_shares, share_distance, share_matching_offsets
from confprofile.taxonomy import Taxonomy

TAXONOMY = Taxonomy.model_validate({"name": "t", "dimensions": [
    {"name": "pet", "labels": [{"name": "cat"}, {"name": "dog"}, {"name": "fish"}]},
    {"name": "size", "labels": [{"name": "small"}, {"name": "big"}]}]})


def flat_leaning_probs(n: int, seed: int) -> np.ndarray:
    """Near-uniform probabilities over 3 labels with a lean to the first: almost every top answer is label 0."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 0.05, (n, 3)) + np.array([0.1, 0.0, 0.0])
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)


def test_offsets_move_a_flat_leaning_head_to_the_target_shares():
    probs = flat_leaning_probs(600, 0)
    target = np.array([0.4, 0.35, 0.25])
    assert share_distance(answer_shares(probs), target) > 0.3
    offsets = share_matching_offsets(probs, target)
    assert share_distance(answer_shares(probs, offsets), target) < 0.01
    assert abs(offsets.mean()) < 1e-9


def test_offsets_are_about_zero_when_the_shares_already_match():
    probs = np.eye(3)[np.repeat([0, 1, 2], [50, 30, 20])] * 0.6 + 0.4 / 3
    offsets = share_matching_offsets(probs, np.array([0.5, 0.3, 0.2]))
    assert np.allclose(offsets, 0.0) and share_matching_offsets(np.zeros((0, 3)), np.ones(3) / 3).tolist() == [0, 0, 0]


def test_pseudo_label_shares_count_kept_known_labels_only():
    pseudo = pd.DataFrame([
        {"user_id": "a", "dimension": "pet", "label": "cat", "kept": True},
        {"user_id": "b", "dimension": "pet", "label": "dog", "kept": True},
        {"user_id": "c", "dimension": "pet", "label": "dog", "kept": False},
        {"user_id": "d", "dimension": "pet", "label": "unknown", "kept": True},
        {"user_id": "a", "dimension": "size", "label": "unknown", "kept": True}])
    shares = pseudo_label_shares(pseudo, TAXONOMY)
    assert set(shares) == {"pet"} and shares["pet"].tolist() == [0.5, 0.5, 0.0]


def test_shift_changes_only_that_dimensions_biases():
    heads = LinearHeads(4, {"pet": 3, "size": 2})
    heads.shift("size", np.array([1.0, -1.0]))
    assert heads.bias.detach().numpy().tolist() == [0, 0, 0, 1, -1]
    heads.shift("pet", np.array([0.5, 0.0, -0.5]))
    assert heads.bias.detach().numpy().tolist() == [0.5, 0, -0.5, 1, -1]
