"""The one interface every teacher backend implements, and the registry that finds them by name.

A teacher turns requests (one user, one sample index, the chat messages of a prompt variant)
into replies: the raw answer text in the JSON answer schema (see docs/architecture.md), and,
where the backend has them, per-dimension label distributions. Parsing, caching and retries
of whole rows live in `prompts.py` and `label.py`, so a backend only talks to its engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from confprofile.errors import InputError
from confprofile.files import read_yaml
from confprofile.registry import Registry
from confprofile.taxonomy import Taxonomy


class TeacherConfig(BaseModel):
    """One entry of a teachers YAML file."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Unique name; becomes the `teacher` column of answers.parquet.")
    backend: str = Field(description="Registered backend: openai, transformers, smollm2, embedding, vllm, rules.")
    model: str = Field("", description="Model id for the backend (server model name, HF dir, 'smollm2').")
    prompt_variant: str = Field("default", description="Prompt variant from prompts.py.")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    samples: int = Field(1, ge=1, description="Samples per user (k).")
    max_new_tokens: int = Field(384, ge=1)
    max_user_tokens: int = Field(512, ge=16, description="Token budget for the rendered user data.")
    params: dict[str, Any] = Field(default_factory=dict, description="Backend-specific settings.")


@dataclass(frozen=True)
class TeacherRequest:
    user_id: str
    sample: int
    user_text: str  # the rendered user data, for non-chat teachers (scoring, embedding)
    messages: tuple[dict, ...]  # system + user chat messages of the teacher's prompt variant


@dataclass
class TeacherReply:
    text: str | None  # raw answer (JSON answer schema); None when the request failed
    error: str | None = None
    label_probs: dict[str, dict[str, float]] | None = None  # dimension -> {label: prob}
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. token usage, latency


ReplyCallback = Callable[[TeacherRequest, TeacherReply], None]


class Teacher(ABC):
    """Base class: subclasses register with `@TEACHERS.register("name")`."""

    def __init__(self, config: TeacherConfig, taxonomy: Taxonomy):
        self.config = config
        self.taxonomy = taxonomy

    def identity(self) -> dict[str, Any]:
        """Everything that changes the answer; part of the cache key (never secrets)."""
        return {
            "backend": self.config.backend,
            "model": self.config.model,
            "temperature": self.config.temperature,
            "max_new_tokens": self.config.max_new_tokens,
            "params": {k: v for k, v in sorted(self.config.params.items()) if "key" not in k.lower()},
        }

    @abstractmethod
    def answer(self, requests: list[TeacherRequest], on_reply: ReplyCallback) -> None:
        """Answer every request, calling `on_reply` once per request as soon as it is done."""

    def close(self) -> None:
        """Release engines, sessions, servers."""


TEACHERS: Registry[type[Teacher]] = Registry("teacher backend")


def build_teacher(config: TeacherConfig, taxonomy: Taxonomy) -> Teacher:
    import confprofile.teachers  # noqa: F401  (registers the built-in backends)

    return TEACHERS.get(config.backend)(config, taxonomy)


def load_teacher_configs(path: str | Path) -> list[TeacherConfig]:
    """Read a teachers YAML file: `teachers: [{name, backend, model, ...}, ...]`."""
    path = Path(path)
    raw = read_yaml(path)
    entries = raw.get("teachers") if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not entries:
        raise InputError(path, None, "teachers", "expected a non-empty list of teachers")
    configs = []
    for i, entry in enumerate(entries):
        try:
            configs.append(TeacherConfig.model_validate(entry))
        except ValidationError as exc:
            raise InputError.from_validation(path, exc, prefix=f"teachers.{i}") from None
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise InputError(path, None, "teachers", f"duplicate teacher names: {names}")
    return configs
