"""LLM students (`tiny`, `smollm2`, a local HF directory, Qwen3 on GPU) behind the `Student` interface.

A thin adapter over today's code: `fit` builds the chat SFT records (`distill.build_sft_records`) and
trains through TRL (`distill.train_student`), `predict` generates and parses answers
(`predict.predict`). Stage 2 for these students is TRL GRPO (`rl.command.train_rl`).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from confprofile.prompts import STUDENT_MAX_USER_TOKENS
from confprofile.student.base import STUDENTS, Student
from confprofile.taxonomy import Taxonomy


@STUDENTS.register("llm")
class LLMStudent(Student):
    family = "llm"

    def __init__(self, taxonomy: Taxonomy, options: dict | None = None, directory: str | Path | None = None):
        """`options`: the pipeline's `distill` section (DistillConfig fields, `max_user_tokens`, `sft`, `predict`)."""
        self.taxonomy = taxonomy
        self.options = dict(options or {})
        self.directory = Path(directory) if directory else None

    @property
    def max_user_tokens(self) -> int:
        return int(self.options.get("max_user_tokens", STUDENT_MAX_USER_TOKENS))

    def sft_records(self, users: Sequence, targets: pd.DataFrame, **overrides) -> list[dict]:
        from confprofile.distill import build_sft_records

        options = {**self.options.get("sft", {}), **overrides}
        return build_sft_records(users, targets, self.taxonomy, max_user_tokens=self.max_user_tokens, **options)

    def fit(self, users: Sequence, targets: pd.DataFrame, work_dir=None, records: list[dict] | None = None, **_) -> "LLMStudent":
        from confprofile.distill import DistillConfig, train_student

        reserved = {"max_user_tokens", "sft", "predict", "enabled"}
        config = DistillConfig(**{k: v for k, v in self.options.items() if k not in reserved})
        records = records if records is not None else self.sft_records(users, targets)
        self.directory = train_student(records, work_dir, config)
        return self

    def predict(self, users: Sequence, model_name: str = "student", progress=None) -> pd.DataFrame:
        from confprofile.predict import predict

        options = {"max_user_tokens": self.max_user_tokens, **self.options.get("predict", {})}
        return predict(self.directory, users, self.taxonomy, model_name=model_name, **options)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        if self.directory is not None and directory.resolve() != self.directory.resolve():
            shutil.copytree(self.directory, directory, dirs_exist_ok=True)
        return directory

    @classmethod
    def load(cls, directory: str | Path, taxonomy: Taxonomy | None = None, options: dict | None = None, **_) -> "LLMStudent":
        return cls(taxonomy or Taxonomy.builtin(), options, directory)
