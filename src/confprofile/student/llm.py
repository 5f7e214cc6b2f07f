"""LLM students (`tiny`, `smollm2`, a local HF directory, Qwen3 on GPU) behind the `Student` interface.

A thin adapter over today's code: `fit` builds the chat SFT records (`distill.build_sft_records`) and
trains through TRL (`distill.train_student`), `predict` generates and parses answers
(`predict.predict`). Stage 2 for these students is TRL GRPO (`rl.command.train_rl`).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pandas as pd

from confprofile.distill import DistillConfig, SFTRecordConfig, build_sft_records, train_student
from confprofile.predict import GenerationConfig
from confprofile.predict import predict as predict_users
from confprofile.prompts import STUDENT_MAX_USER_TOKENS
from confprofile.settings import from_section
from confprofile.student.base import STUDENTS, Student
from confprofile.taxonomy import Taxonomy


@dataclass
class LLMStudentConfig(DistillConfig):
    """The pipeline's `distill` section for an LLM student: its SFT knobs (DistillConfig), one prompt
    budget for SFT, stage 2 and prediction, and how records and answers are made."""

    max_user_tokens: int = field(default=STUDENT_MAX_USER_TOKENS, metadata={"help": "Token budget of the rendered user data in every prompt of this student (SFT, stage 2, prediction)."})
    sft: SFTRecordConfig = field(default_factory=SFTRecordConfig, metadata={"help": "How pseudo-labels become SFT records."})
    predict: GenerationConfig = field(default_factory=GenerationConfig, metadata={"help": "How the student generates its answers."})

    @classmethod
    def from_dict(cls, values: dict, section: str = "distill") -> "LLMStudentConfig":
        return from_section(cls, values, section, {"sft": SFTRecordConfig, "predict": GenerationConfig})

    def training(self) -> DistillConfig:
        """The SFT knobs alone: what `train_student` compares to tell that a rerun has nothing to do."""
        return DistillConfig(**{f.name: getattr(self, f.name) for f in fields(DistillConfig)})


@STUDENTS.register("llm")
class LLMStudent(Student):
    family = "llm"

    def __init__(self, taxonomy: Taxonomy, config: LLMStudentConfig | None = None, directory: str | Path | None = None):
        self.taxonomy = taxonomy
        self.config = config or LLMStudentConfig()
        self.directory = Path(directory) if directory else None

    def sft_records(self, users: Sequence, targets: pd.DataFrame, **overrides) -> list[dict]:
        options = {**asdict(self.config.sft), **overrides}
        return build_sft_records(users, targets, self.taxonomy, max_user_tokens=self.config.max_user_tokens, **options)

    def fit(self, users: Sequence, targets: pd.DataFrame, work_dir=None, records: list[dict] | None = None, **_) -> "LLMStudent":
        records = records if records is not None else self.sft_records(users, targets)
        self.directory = train_student(records, work_dir, self.config.training())
        return self

    def predict(self, users: Sequence, model_name: str = "student", progress=None) -> pd.DataFrame:
        return predict_users(self.directory, users, self.taxonomy, model_name=model_name,
                             max_user_tokens=self.config.max_user_tokens, **asdict(self.config.predict))

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        if self.directory is not None and directory.resolve() != self.directory.resolve():
            shutil.copytree(self.directory, directory, dirs_exist_ok=True)
        return directory

    @classmethod
    def load(cls, directory: str | Path, taxonomy: Taxonomy | None = None, config: LLMStudentConfig | None = None, **_) -> "LLMStudent":
        return cls(taxonomy or Taxonomy.builtin(), config, directory)
