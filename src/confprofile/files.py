"""Atomic file writes: a crash or kill never leaves a half-written artifact behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; rename it over `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_dir(target: str | Path, merge: bool = False):
    """Yield an empty folder beside `target`; on success it becomes `target` (merge=False: the old
    folder is replaced whole) or its files are moved into `target` (merge=True: other files there,
    such as checkpoints, stay). A crash or kill leaves `target` as it was and no half-written files."""
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if merge:
        target.mkdir(parents=True, exist_ok=True)
        for item in staged.iterdir():
            os.replace(item, target / item.name)
        staged.rmdir()
    else:
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staged, target)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def atomic_write_parquet(path: str | Path, table) -> None:
    """Write a pyarrow Table or pandas DataFrame to Parquet atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_yaml_model(path: str | Path, model, expected: str):
    """A YAML mapping validated as the pydantic `model`; anything else is an InputError naming the field."""
    from pydantic import ValidationError

    from confprofile.errors import InputError

    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise InputError(path, None, None, f"expected a mapping with {expected}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InputError.from_validation(path, exc) from None


def read_yaml(path: str | Path):
    """Parse a YAML file; a missing file, bad UTF-8 or bad YAML becomes an InputError naming the line."""
    import yaml

    from confprofile.errors import InputError

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, None, None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, None, None, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None)
        message = f"invalid YAML: {problem}" if problem else "invalid YAML"
        raise InputError(path, None if mark is None else mark.line + 1, None, message) from None


def read_parquet_frame(path: str | Path, required: Iterable[str] = (), layout: str = "Parquet table"):
    """A Parquet file as a pandas DataFrame; a missing or unreadable file, or a missing column of
    `required`, is an InputError naming the file (and the first missing column)."""
    import pyarrow.parquet as pq

    from confprofile.errors import InputError

    path = Path(path)
    try:
        frame = pq.read_table(path).to_pandas()
    except FileNotFoundError:
        raise InputError(path, None, None, "file not found") from None
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputError(path, None, None, f"not a readable {layout} ({type(exc).__name__}: {exc})") from None
    missing = sorted(set(required) - set(frame.columns))
    if missing:
        raise InputError(path, None, missing[0], f"missing column(s) {missing} (expected the {layout} layout)")
    return frame
