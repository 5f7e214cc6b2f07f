"""A config's `distill` section names its student (`student: encoder`, the default, or an LLM student:
`tiny`, `smollm2`, an HF directory); the other keys are that family's config fields."""

from __future__ import annotations

from collections.abc import Mapping

from confprofile.student.encoder import EncoderStudentConfig
from confprofile.student.llm import LLMStudentConfig

StudentConfig = EncoderStudentConfig | LLMStudentConfig


def student_config(values: Mapping, section: str = "distill") -> StudentConfig:
    """The config of the student that `values["student"]` names, from the section's other keys."""
    values = dict(values)
    if values.get("student", "encoder") == "encoder":
        values.pop("student", None)
        return EncoderStudentConfig.from_dict(values, section)
    return LLMStudentConfig.from_dict(values, section)


def config_family(config: StudentConfig) -> str:
    """The student family (a name in `STUDENTS`) that a student config builds."""
    return "encoder" if isinstance(config, EncoderStudentConfig) else "llm"
