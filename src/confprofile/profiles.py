"""The profiles stage: the final student profiles every user, streamed in chunks, resumably.

Users are read `chunk_users` at a time; each chunk's profiles go to `<out>.parts/<n>.parquet` the moment
they are done, so an interrupted run resumes at the first missing chunk and memory does not grow with
the number of users. The parts are then joined, streaming, into

    profiles.parquet  one row per user x dimension: user_id, dimension, label, confidence, rationale,
                      stage (which stage's model answered), pseudo_label and pseudo_confidence (the
                      teachers' aggregate, for the users they labelled; null for the others)
    profiles.jsonl    one user a line: {"user_id": ..., "profile": {dimension: {label, confidence, ...}}}

`engine="ray"` runs the chunks as Ray Data `map_batches` over a cluster (`scale.ray_profiles`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from confprofile.data import iter_user_chunks
from confprofile.errors import InputError
from confprofile.files import atomic_path, atomic_write_json, atomic_write_parquet
from confprofile.progress import ProgressLog
from confprofile.settings import from_section

PROFILE_COLUMNS = ["user_id", "dimension", "label", "confidence", "rationale", "stage", "pseudo_label", "pseudo_confidence"]
_STRING_COLUMNS = {"user_id", "dimension", "label", "rationale", "stage", "pseudo_label"}
ENGINES = ("local", "ray")


@dataclass
class ProfileConfig:
    chunk_users: int = field(default=10000, metadata={"help": "Users per chunk: the unit of memory and of resuming after an interrupt."})
    engine: str = field(default="local", metadata={"help": "`local` (this process) or `ray` (Ray Data map_batches over a cluster)."})

    def __post_init__(self) -> None:
        if self.chunk_users < 1 or self.engine not in ENGINES:
            raise InputError(None, None, "profiles", f"chunk_users must be >= 1 and engine one of {', '.join(ENGINES)}")

    @classmethod
    def from_dict(cls, values: dict) -> "ProfileConfig":
        return from_section(cls, values, "profiles")


def with_pseudo_labels(predictions: pd.DataFrame, stage: str, pseudo: pd.DataFrame | None) -> pd.DataFrame:
    """A predictions frame in the profiles contract: the answering stage and the pseudo-label beside it."""
    frame = predictions.drop(columns=["model"], errors="ignore").assign(stage=stage)
    if pseudo is None or pseudo.empty:
        frame = frame.assign(pseudo_label=None, pseudo_confidence=float("nan"))
    else:
        teacher_side = pseudo[["user_id", "dimension", "label", "confidence"]].rename(
            columns={"label": "pseudo_label", "confidence": "pseudo_confidence"})
        frame = frame.merge(teacher_side, on=["user_id", "dimension"], how="left")
    return frame[PROFILE_COLUMNS]


def profile_table(frame: pd.DataFrame):
    """The profiles contract as a pyarrow Table with a fixed schema (chunks without pseudo-labels included)."""
    import pyarrow as pa

    schema = pa.schema([(name, pa.string() if name in _STRING_COLUMNS else pa.float64()) for name in PROFILE_COLUMNS])
    table = pa.Table.from_pandas(frame[PROFILE_COLUMNS], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)  # no pandas dtypes recorded: every engine's file reads back alike


def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def file_stamp(path: Path) -> list:
    """What changes when a file is rewritten: its path, size and modification time (a missing file is
    reported by the reader, with its InputError)."""
    if not path.is_file():
        return [str(path)]
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def model_stamp(directory: str | Path) -> list:
    """The stamps of a model directory's files: a student retrained in place does not reuse old chunks."""
    directory = Path(directory)
    return [file_stamp(f) for f in sorted(directory.iterdir()) if f.is_file()] if directory.is_dir() else [str(directory)]


def _prepare_parts(parts: Path, manifest: dict) -> None:
    """Keep the finished chunks of an interrupted run with the same settings; discard any others."""
    note = parts / "manifest.json"
    if note.exists() and json.loads(note.read_text()) != manifest:
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    atomic_write_json(note, manifest)


def profile_users(student, user_files: Sequence[str | Path], out: str | Path, config: ProfileConfig | None = None, *,
                  stage: str, pseudo: pd.DataFrame | None = None, model_dir: str | Path | None = None) -> dict:
    """Profile every user of `user_files` into `out` (profiles.parquet) and its `.jsonl` twin; returns counts.

    `student` answers chunk by chunk (`Student.predict`; shipped to the workers with `engine: ray`);
    `model_dir`, the student's directory, names the model in the resume manifest."""
    config = config or ProfileConfig()
    out = Path(out)
    parts = _parts_dir(out)
    _prepare_parts(parts, {"model": model_stamp(model_dir) if model_dir else stage, "stage": stage,
                           "chunk_users": config.chunk_users, "inputs": [file_stamp(Path(p)) for p in user_files]})

    def write_part(path: Path, predictions: pd.DataFrame) -> None:
        atomic_write_parquet(path, profile_table(with_pseudo_labels(predictions, stage, pseudo)))

    if config.engine == "ray":
        from confprofile.scale.ray_profiles import profile_chunks_ray

        profile_chunks_ray(student, user_files, parts, config.chunk_users, stage=stage, write_part=write_part)
    else:
        with ProgressLog(f"[profiles] {stage}", unit="users") as progress:
            for index, chunk in enumerate(iter_user_chunks(user_files, config.chunk_users)):
                part = parts / f"{index:06d}.parquet"
                if not part.exists():  # finished before an interrupt: not redone
                    write_part(part, student.predict(chunk, model_name=stage))
                progress.advance(len(chunk))
    return join_parts(sorted(parts.glob("*.parquet")), out)


def join_parts(part_files: Sequence[Path], out: Path) -> dict:
    """Stream the chunk files into `out` (Parquet) and `out` with .jsonl (one user a line).

    A user_id that appears twice in the inputs is an InputError; the check keeps 8 bytes per user."""
    import pyarrow.parquet as pq

    users = rows = 0
    digests = []
    jsonl = out.with_suffix(".jsonl")
    with atomic_path(out) as table_tmp, atomic_path(jsonl) as lines_tmp, open(lines_tmp, "w", encoding="utf-8") as lines:
        writer = None
        for part in part_files:
            table = pq.read_table(part)
            if writer is None:
                writer = pq.ParquetWriter(table_tmp, table.schema)
            writer.write_table(table)
            rows += table.num_rows
            profiles = _user_profiles(table)
            users += len(profiles)
            digests.append(pd.util.hash_array(np.array(list(profiles), dtype=object)))
            for user_id, profile in profiles.items():
                lines.write(json.dumps({"user_id": user_id, "profile": profile}, ensure_ascii=False) + "\n")
        if writer is None:
            raise InputError(None, None, "profiles", "no users to profile")
        writer.close()
        _check_unique_ids(np.concatenate(digests), part_files)
    return {"users": users, "rows": rows, "profiles": str(out), "profiles_jsonl": str(jsonl)}


def _check_unique_ids(digests: np.ndarray, part_files: Sequence[Path]) -> None:
    values, counts = np.unique(digests, return_counts=True)
    if (counts > 1).any():
        import pyarrow.parquet as pq

        repeated = set(values[counts > 1].tolist())
        example = next(u for part in part_files for u in pq.read_table(part, columns=["user_id"])["user_id"].unique().to_pylist()
                       if int(pd.util.hash_array(np.array([u], dtype=object))[0]) in repeated)
        raise InputError(None, None, "user_id", f"{int((counts > 1).sum())} user_id(s) appear more than once in the users files, "
                         f"e.g. {example!r}: every user must have one id")


def _user_profiles(table) -> dict[str, dict]:
    """{user_id: {dimension: {label, confidence, stage, [rationale], [pseudo_label, pseudo_confidence]}}} of one chunk."""
    profiles: dict[str, dict] = {}
    columns = [table[name].to_pylist() for name in PROFILE_COLUMNS]
    for user_id, dim, label, confidence, rationale, stage, pseudo_label, pseudo_confidence in zip(*columns):
        entry = {"label": label, "confidence": round(confidence, 4), "stage": stage}
        if rationale:
            entry["rationale"] = rationale
        if pseudo_label is not None:
            entry["pseudo_label"] = pseudo_label
            entry["pseudo_confidence"] = round(pseudo_confidence, 4)
        profiles.setdefault(user_id, {})[dim] = entry
    return profiles
