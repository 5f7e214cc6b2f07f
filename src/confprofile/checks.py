"""Label-free checks of a run: can these profiles be trusted, without a single gold label?

Computed from the run's own files (answers, pseudo-labels, aggregate summary, profiles, stage-2 log)
and written to `checks.json`, which the report renders beside (or, without gold, instead of) the
evaluation. Nothing here reads gold.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from confprofile.files import atomic_write_json
from confprofile.taxonomy import UNKNOWN

CONFIDENCE_BINS = np.linspace(0.0, 1.0, 11)


def teacher_labels(answers: pd.DataFrame) -> pd.DataFrame:
    """One label per teacher, user and dimension: the most frequent non-abstaining label over its samples."""
    answered = answers[answers["label"].notna() & (answers["label"] != UNKNOWN)]
    counts = answered.groupby(["dimension", "user_id", "teacher", "label"]).size().rename("n").reset_index()
    counts = counts.sort_values(["n", "label"], ascending=[False, True])
    return counts.drop_duplicates(["dimension", "user_id", "teacher"])[["dimension", "user_id", "teacher", "label"]]


def agreement_matrices(labels: pd.DataFrame) -> dict[str, dict]:
    """Per dimension, the share of users on which each pair of teachers gives the same label (both answering)."""
    out = {}
    for dim, part in labels.groupby("dimension"):
        wide = part.pivot(index="user_id", columns="teacher", values="label")
        teachers = list(wide.columns)
        matrix = [[_agreement(wide[a], wide[b]) for b in teachers] for a in teachers]
        out[dim] = {"teachers": teachers, "matrix": matrix}
    return out


def _agreement(a: pd.Series, b: pd.Series) -> float | None:
    both = a.notna() & b.notna()
    return float((a[both] == b[both]).mean()) if both.any() else None


def teacher_reliability(labels: pd.DataFrame, pseudo: pd.DataFrame) -> list[dict]:
    """Per teacher and dimension: agreement with the majority of the *other* teachers (a leave-one-out
    estimate of its accuracy that its own votes cannot inflate) and with the pseudo-labels."""
    rows = []
    targets = pseudo.set_index(["user_id", "dimension"])["label"]
    for (dim, teacher), part in labels.groupby(["dimension", "teacher"]):
        others = labels[(labels["dimension"] == dim) & (labels["teacher"] != teacher)]
        majority = others.groupby("user_id")["label"].agg(lambda s: s.value_counts().index[0])
        own = part.set_index("user_id")["label"]
        pseudo_dim = targets.xs(dim, level="dimension") if dim in targets.index.get_level_values("dimension") else pd.Series(dtype=object)
        rows.append({"teacher": teacher, "dimension": dim, "answered": int(len(own)),
                     "agreement_with_others": _agreement(own, majority.reindex(own.index)),
                     "agreement_with_pseudo_labels": _agreement(own, pseudo_dim.reindex(own.index))})
    return rows


def histogram(values: np.ndarray) -> list[int]:
    return np.histogram(np.clip(values, 0.0, 1.0), bins=CONFIDENCE_BINS)[0].astype(int).tolist()


def profile_checks(profiles: pd.DataFrame) -> dict[str, dict]:
    """Per dimension: final label distribution, confidence histogram, and how often the student's label
    agrees with the pseudo-label on the users the teachers labelled."""
    out = {}
    for dim, part in profiles.groupby("dimension", sort=False):
        labelled = part[part["pseudo_label"].notna()]
        out[dim] = {
            "labels": {str(k): int(v) for k, v in part["label"].value_counts().items()},
            "confidence_histogram": histogram(part["confidence"].to_numpy(float)),
            "mean_confidence": float(part["confidence"].mean()),
            "pseudo_confidence_histogram": histogram(labelled["pseudo_confidence"].to_numpy(float)),
            "student_agrees_with_pseudo_label": float((labelled["label"] == labelled["pseudo_label"]).mean()) if len(labelled) else None,
            "labelled_users": int(len(labelled)),
        }
    return out


def run_checks(run_dir: str | Path) -> dict:
    """Every label-free check the run's files allow; a missing file leaves its section out."""
    run_dir = Path(run_dir)
    checks: dict = {}
    if (run_dir / "aggregate_summary.json").exists():
        summary = json.loads((run_dir / "aggregate_summary.json").read_text())
        keys = ("before", "after", "kept", "mean_confidence", "knows_nothing", "independent_skill", "teacher_skills",
                "teacher_groups", "fallback")
        checks["aggregate"] = {row["dimension"]: {key: row.get(key) for key in keys} for row in summary}
    if (run_dir / "answers.parquet").exists() and (run_dir / "pseudo_labels.parquet").exists():
        labels = teacher_labels(pd.read_parquet(run_dir / "answers.parquet", columns=["user_id", "teacher", "dimension", "label"]))
        pseudo = pd.read_parquet(run_dir / "pseudo_labels.parquet", columns=["user_id", "dimension", "label"])
        checks["teacher_agreement"] = agreement_matrices(labels)
        checks["teacher_reliability"] = teacher_reliability(labels, pseudo)
    if (run_dir / "profiles.parquet").exists():
        profiles = pd.read_parquet(run_dir / "profiles.parquet", columns=["user_id", "dimension", "label", "confidence",
                                                                          "stage", "pseudo_label", "pseudo_confidence"])
        checks["profiles"] = profile_checks(profiles)
        checks["profiled_users"] = int(profiles["user_id"].nunique())
        checks["profile_stage"] = str(profiles["stage"].iloc[0]) if len(profiles) else None
    return checks


def write_checks(run_dir: str | Path) -> Path:
    out = Path(run_dir) / "checks.json"
    atomic_write_json(out, run_checks(run_dir))
    return out
