"""Run every stage from one YAML config into a run directory, resumably.

Stages run in order: data -> label -> aggregate -> distill -> rl -> profiles -> upper_bound -> evaluate -> report,
as declared once in `stages.STAGES`. Each stage has a fingerprint (its config section, the
fingerprints of the stages whose files it reads and, for `data`, the input files' hashes) kept in
`stages.json`. A rerun skips every stage whose fingerprint and outputs are unchanged, so editing
`rl` reruns rl and what reads it, not the supervised reference; `from_stage` redoes from there.
Long stages resume inside themselves (the label cache, training checkpoints, finished chunks), so
an interrupted run loses little.

Only `data.users` is required. Label-free boundary: only `upper_bound` (flagged as supervised) and
`evaluate` read gold, and both are skipped, with a line saying why, when there is none.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, InstanceOf, ValidationError, field_serializer, model_validator

from confprofile import stages as stage_table
from confprofile.errors import InputError
from confprofile.files import atomic_write_json, read_yaml
from confprofile.profiles import ProfileConfig
from confprofile.rl.config import RLConfig, stage2_config
from confprofile.split import DataConfig, GenerateConfig, LabelConfig
from confprofile.student.config import config_family, student_config
from confprofile.student.encoder import EncoderStudentConfig
from confprofile.student.llm import LLMStudentConfig
from confprofile.teachers.base import TeacherConfig

STAGES = [stage.name for stage in stage_table.STAGES]


class AggregateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field("weighted", description="Aggregator for the pseudo-labels the student learns from.")
    # the default of `confprofile aggregate` (aggregate.pseudo_labels.DEFAULT_CALIBRATION; a test keeps them equal),
    # spelled out so that reading a config does not import the aggregation kernels
    calibrate: list[str] = Field(default_factory=lambda: ["label_prior", "confidence", "class_balance", "group_confidence"], description="Calibrators, in order.")
    options: dict[str, Any] = Field(default_factory=dict, description="Extra keyword arguments for aggregate().")
    label_shares: str | dict[str, dict[str, float]] | None = Field(
        None, description="Label shares you know from outside the answers (a census, platform analytics): a YAML path "
                          "or {dimension: {label: share}}. They replace the label prior estimated from the answers for "
                          "the dimensions they name (docs/aggregation.md, 'Label shares you know').")


class PrivacyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    redact: bool = Field(False, description="Replace emails, phone numbers, ID-like numbers and IPs before users reach a teacher.")


class UpperBoundConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="Train the supervised reference: the `distill` student's recipe on the train users' gold (needs data.gold).")


class PipelineConfig(BaseModel):
    """Every stage's config. The YAML's `distill`, `rl` and `profiles` sections are built into their
    stage's config (EncoderStudentConfig or LLMStudentConfig, RLConfig, ProfileConfig) when the file is
    read, so a bad key fails before any stage runs, and stage 2 starts from its student family's defaults."""

    model_config = ConfigDict(extra="forbid")
    run_dir: str = "runs/demo"
    taxonomy: str = Field("profilebench", description="Built-in taxonomy name or YAML path.")
    seed: int = 0
    data: DataConfig = Field(default_factory=lambda: DataConfig(generate=GenerateConfig()))
    teachers: list[TeacherConfig] | None = Field(None, description="Teacher panel; None = the packaged default panel.")
    label: LabelConfig = Field(default_factory=LabelConfig, description="How many users the teachers label.")
    aggregate: AggregateConfig = Field(default_factory=AggregateConfig)
    distill: InstanceOf[EncoderStudentConfig] | InstanceOf[LLMStudentConfig] = Field(
        description="The student: `student: encoder` (the default; EncoderStudentConfig fields) or an LLM student "
                    "(`tiny`, `smollm2`, an HF dir; LLMStudentConfig fields).")
    rl: InstanceOf[RLConfig] | None = Field(
        description="Stage 2 (RLConfig fields over the student family's defaults, rl.config.stage2_config); "
                    "`enabled: false` skips it (None).")
    profiles: InstanceOf[ProfileConfig] = Field(description="How every user is profiled (ProfileConfig fields).")
    upper_bound: UpperBoundConfig = Field(default_factory=UpperBoundConfig, description="Supervised reference.")
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="PII redaction of what teachers see.")

    @model_validator(mode="before")
    @classmethod
    def _stage_sections(cls, raw: Any) -> Any:
        """Build the stage configs from their YAML sections; stage 2's defaults follow the student."""
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        distill = raw["distill"] = _section("distill", student_config, raw.get("distill", {}))
        rl = raw.get("rl", {})
        if isinstance(rl, dict):
            rl = dict(rl)
            taxonomy = raw.get("taxonomy", cls.model_fields["taxonomy"].default)
            budget = getattr(distill, "max_user_tokens", None)

            def stage_two(values: dict) -> RLConfig:
                return stage2_config(config_family(distill), {**values, "taxonomy": taxonomy}, budget)

            raw["rl"] = _section("rl", stage_two, rl) if rl.pop("enabled", True) else None
        raw["profiles"] = _section("profiles", ProfileConfig.from_dict, raw.get("profiles", {}))
        return raw

    @field_serializer("distill", "rl", "profiles")
    def _dump_stage_section(self, section: Any) -> dict | None:
        """The YAML form of a stage section, which `model_validate` reads back to the same config."""
        if section is None:
            return None
        return {"student": "encoder", **asdict(section)} if isinstance(section, EncoderStudentConfig) else asdict(section)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PipelineConfig":
        raw = read_yaml(path) or {}
        try:
            config = cls.model_validate(raw)
        except ValidationError as exc:
            raise InputError.from_validation(path, exc) from None
        except InputError as exc:  # a stage section's own check (see `_stage_sections`)
            raise InputError(path, None, exc.field, exc.message) from None
        if config.teachers:
            from confprofile.label import check_configs

            check_configs(config.teachers, path)  # unknown backends/variants: fail now, not after the data stage
        return config


def _section(name: str, build: Callable[[dict], Any], values: Any) -> Any:
    """`build(values)` for a YAML section (a config object passes through); a bad field is an
    InputError naming it (pydantic passes it through; `from_yaml` adds the file)."""
    if not isinstance(values, dict):
        return values
    try:
        return build(values)
    except (TypeError, ValueError) as exc:
        raise InputError(None, None, name, str(exc)) from None


def _plain(obj: Any) -> Any:
    """JSON-ready form of a config object (a pydantic model or a dataclass), for fingerprints."""
    return obj.model_dump() if isinstance(obj, BaseModel) else asdict(obj)


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


_SPECS = {stage.name: stage for stage in stage_table.STAGES}


class Run:
    """A run directory and its stage bookkeeping (`stages.json`)."""

    def __init__(self, config: PipelineConfig):
        self.config = config
        self.dir = Path(config.run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "stages.json"
        self.state: dict[str, dict] = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    def path(self, name: str) -> Path:
        return self.dir / name

    def fingerprint(self, stage: str, known: dict[str, str] | None = None) -> str:
        """Hash of the stage's config section, the fingerprints of the stages it reads, the seed and the
        contents of the files the section names (`data`'s inputs, `aggregate`'s label shares). `known` collects the fingerprints already computed, so
        one pass over the stages hashes each stage (and each input file) once."""
        known = {} if known is None else known
        if stage not in known:
            spec = _SPECS[stage]
            files = {"data": self.config.data.model_dump(), "aggregate": {"label_shares": self.config.aggregate.label_shares}}
            extra = {k: _file_hash(Path(v)) for k, v in files.get(stage, {}).items() if isinstance(v, str) and Path(v).is_file()}
            section = json.loads(json.dumps(spec.config(self.config), default=_plain))
            upstream = {name: self.fingerprint(name, known) for name in spec.reads}
            known[stage] = _hash([stage, upstream, section, extra, self.config.seed])
        return known[stage]

    def is_done(self, stage: str, fingerprint: str) -> bool:
        entry = self.state.get(stage)
        return (bool(entry) and entry.get("finished", True) and entry["fingerprint"] == fingerprint
                and all(self.path(o).exists() for o in entry["outputs"]))

    def mark_started(self, stage: str, fingerprint: str, work_dir: str | None) -> None:
        """Record the fingerprint a stage starts with. Work left by the same fingerprint (training
        checkpoints of an interrupted run) is resumed; work of another config is discarded first."""
        entry = self.state.get(stage)
        if work_dir and entry and entry["fingerprint"] != fingerprint:
            shutil.rmtree(self.path(work_dir), ignore_errors=True)
        self.state[stage] = {"fingerprint": fingerprint, "outputs": [], "finished": False}
        atomic_write_json(self.state_path, self.state)

    def mark_done(self, stage: str, fingerprint: str, outputs: list[str], seconds: float) -> None:
        self.state[stage] = {"fingerprint": fingerprint, "outputs": outputs, "seconds": round(seconds, 1), "finished": True}
        atomic_write_json(self.state_path, self.state)


def run(config: PipelineConfig | str | Path, from_stage: str | None = None, log: Callable[[str], None] = print) -> Path:
    """Run (or resume) every stage; returns the run directory."""
    if not isinstance(config, PipelineConfig):
        config = PipelineConfig.from_yaml(config)
    if from_stage is not None and from_stage not in STAGES:
        raise InputError(None, None, "--from", f"unknown stage {from_stage!r}; stages: {', '.join(STAGES)}")
    current = Run(config)
    forced, known = False, {}
    for stage in stage_table.STAGES:
        fingerprint = current.fingerprint(stage.name, known)
        forced = forced or stage.name == from_stage
        if not forced and current.is_done(stage.name, fingerprint):
            log(f"[{stage.name}] up to date, skipped")
            continue
        log(f"[{stage.name}] running")
        current.mark_started(stage.name, fingerprint, stage.work_dir)
        started = time.perf_counter()
        outputs = stage.run(current)
        missing = [name for name in stage.writes if outputs and name not in outputs]
        if missing:  # a stage that ran (it wrote something) owes its declared files
            raise RuntimeError(f"stage {stage.name} did not write {', '.join(missing)} (declared in stages.STAGES)")
        seconds = time.perf_counter() - started
        current.mark_done(stage.name, fingerprint, outputs, seconds)
        log(f"[{stage.name}] done in {seconds:.1f} s")
    return current.dir


def demo_config_path() -> Path:
    return Path(__file__).parent / "configs" / "demo.yaml"






