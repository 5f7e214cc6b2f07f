"""One student interface for distillation, stage 2 and prediction, with a registry by name.

A student learns from pseudo-label records (soft targets = the aggregated vote distribution, weight =
the pseudo-label's confidence), profiles users into the predictions contract with confidences that
estimate P(correct), and saves to / loads from a directory (stage 2 is family-specific:
`rl.encoder_policy` for the encoder student, TRL GRPO for LLM students). `distill`,
`rl` and `predict` only talk to this interface, so a new student plugs in by name.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from confprofile.registry import Registry
from confprofile.taxonomy import Taxonomy

STUDENT_FILE = "student.json"  # names the family of a saved student; written last
PREDICTION_COLUMNS = ["user_id", "dimension", "label", "confidence", "rationale", "model"]


class Student(ABC):
    """What every student family implements (see `EncoderStudent` and `LLMStudent`)."""

    family: str = ""

    @abstractmethod
    def fit(self, users: Sequence, targets: pd.DataFrame, work_dir: str | Path | None = None) -> "Student":
        """Learn from pseudo-label rows (user_id, dimension, label, confidence, votes, kept) of `users`."""

    @abstractmethod
    def predict(self, users: Sequence, model_name: str) -> pd.DataFrame:
        """The predictions contract, one row per user x dimension."""

    @abstractmethod
    def save(self, directory: str | Path) -> Path:
        """Everything `open_student` needs, with `student.json` written last."""


STUDENTS: Registry[type[Student]] = Registry("student")


def student_family(directory: str | Path) -> str:
    """The family recorded in a saved student's `student.json`; `llm` for a plain HF directory."""
    note = Path(directory) / STUDENT_FILE
    if note.exists():
        return json.loads(note.read_text())["family"]
    return "llm"


def open_student(directory: str | Path, **options) -> Student:
    """A saved student of any family, ready to predict."""
    return STUDENTS.get(student_family(directory)).load(directory, **options)


def prediction_frame(user_ids: Sequence[str], taxonomy: Taxonomy, labels: dict[str, np.ndarray],
                     confidence: dict[str, np.ndarray], model_name: str) -> pd.DataFrame:
    """Predictions contract from per-dimension label and confidence arrays (user-major row order)."""
    n, dims = len(user_ids), taxonomy.dimension_names
    frame = pd.DataFrame({
        "user_id": np.repeat(np.asarray(user_ids, dtype=object), len(dims)),
        "dimension": np.tile(np.asarray(dims, dtype=object), n),
        "label": np.stack([labels[d] for d in dims], axis=1).reshape(-1) if n else [],
        "confidence": np.stack([confidence[d] for d in dims], axis=1).reshape(-1).astype(float) if n else [],
        "rationale": "",
        "model": model_name,
    })
    return frame[PREDICTION_COLUMNS]
