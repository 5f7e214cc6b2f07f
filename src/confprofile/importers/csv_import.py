"""Your own table (CSV, TSV or Parquet) + a mapping YAML -> `users.jsonl`, `gold.jsonl`, `taxonomy.yaml`.

The mapping says which column is the user id, which columns are user data (the
teachers see them), which optional columns are gold labels (only evaluation sees
them) and which taxonomy the labels belong to. Example (docs/bring-your-own-data.md):

    id: customer_id
    taxonomy: profilebench          # built-in name, or a YAML path relative to this file
    sources:
      bio: about_me                 # source name: column
      purchases: {column: orders, list: true, separator: ";"}
    gold:
      gender: sex                   # values are normalised by the taxonomy (aliases, case)
      age_group: {column: age_code, map: {"2": "18_24", "3": "25_34"}}

A bad mapping or a bad row raises `InputError` naming the file, line and field.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from confprofile.errors import InputError
from confprofile.files import atomic_write_jsonl, read_yaml_model
from confprofile.taxonomy import UNKNOWN, Taxonomy


class SourceColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str = Field(description="Column in the table.")
    list: bool = Field(False, description="Split the cell into a list on `separator`.")
    separator: str | None = Field(None, description="List separator; defaults to the mapping's `separator`.")


class GoldColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str = Field(description="Column holding this dimension's gold label.")
    map: dict[str, str] = Field(default_factory=dict, description="Raw value -> label, applied before normalisation.")

    @field_validator("map", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:  # YAML reads `2: 18_24` with an int key
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="Column with a unique user id.")
    taxonomy: str = Field(description="Built-in taxonomy name or a taxonomy YAML path (relative to the mapping file).")
    sources: dict[str, SourceColumn] = Field(description="Source name -> column; the user data teachers see.")
    gold: dict[str, GoldColumn] = Field(default_factory=dict, description="Dimension -> gold column (optional).")
    separator: str = Field("|", description="Default separator of list-valued columns.")
    delimiter: str | None = Field(None, description="CSV field delimiter; default ',' (tab for .tsv).")
    encoding: str = Field("utf-8", description="Text encoding of a CSV/TSV file.")

    @field_validator("sources", mode="before")
    @classmethod
    def _source_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"column": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("gold", mode="before")
    @classmethod
    def _gold_shorthand(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            return {k: {"column": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("sources")
    @classmethod
    def _some_sources(cls, value: dict) -> dict:
        if not value:
            raise ValueError("map at least one column to a user-data source")
        return value


def load_mapping(path: str | Path) -> Mapping:
    return read_yaml_model(Path(path), Mapping, "'id', 'taxonomy' and 'sources'")


def resolve_taxonomy(spec: str, mapping_path: Path) -> Taxonomy:
    beside = mapping_path.parent / spec
    if beside.suffix in {".yaml", ".yml"} and beside.exists():
        return Taxonomy.from_yaml(beside)
    try:
        return Taxonomy.load(spec)
    except InputError as exc:
        raise InputError(mapping_path, None, "taxonomy", f"{spec!r}: {exc.message}") from None


def read_table(path: Path, mapping: Mapping) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """(column names, [(line or row number, row)]); CSV line numbers count the header as line 1."""
    if not path.is_file():
        raise InputError(path, None, None, "file not found")
    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise InputError(path, None, None, f"not a readable Parquet file ({exc})") from None
        return table.column_names, [(i + 1, row) for i, row in enumerate(table.to_pylist())]
    delimiter = mapping.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    raw = path.read_bytes()
    try:
        text = raw.decode(mapping.encoding)
    except UnicodeDecodeError as exc:  # decoded whole, so the line of the bad byte is exact
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(path, line, None, f"not valid {mapping.encoding} ({exc.reason}); set 'encoding' in the mapping") from None
    rows = []
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        columns = list(reader.fieldnames or [])
        for row in reader:
            if None in row:
                raise InputError(path, reader.line_num, None, f"more fields than the {len(columns)} header columns")
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise InputError(path, reader.line_num, None, f"malformed CSV: {exc}") from None
    return columns, rows


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def _source_value(value: Any, spec: SourceColumn, default_separator: str) -> Any:
    if spec.list and isinstance(value, str):
        return [part.strip() for part in value.split(spec.separator or default_separator) if part.strip()]
    return value.strip() if isinstance(value, str) else value


def convert(table_path: str | Path, mapping_path: str | Path) -> tuple[list[dict], list[dict], Taxonomy]:
    """(users rows, gold rows, taxonomy) from a table and its mapping."""
    table_path, mapping_path = Path(table_path), Path(mapping_path)
    mapping = load_mapping(mapping_path)
    taxonomy = resolve_taxonomy(mapping.taxonomy, mapping_path)
    columns, rows = read_table(table_path, mapping)
    wanted = {"id": mapping.id} | {f"sources.{k}.column": s.column for k, s in mapping.sources.items()}
    wanted |= {f"gold.{k}.column": g.column for k, g in mapping.gold.items()}
    for field, column in wanted.items():
        if column not in columns:
            raise InputError(mapping_path, None, field, f"column {column!r} is not in {table_path.name} (columns: {', '.join(columns)})")
    for dim in mapping.gold:
        if dim not in taxonomy.dimension_names:
            raise InputError(mapping_path, None, f"gold.{dim}", f"no dimension {dim!r} in taxonomy {taxonomy.name!r} ({', '.join(taxonomy.dimension_names)})")
    gold_columns = {g.column for g in mapping.gold.values()}
    if leaked := gold_columns & {s.column for s in mapping.sources.values()}:
        raise InputError(mapping_path, None, "sources", f"gold column(s) {sorted(leaked)} must not also be user data")

    users, gold, seen = [], [], {}
    for line, row in rows:
        raw_id = row[mapping.id]
        if _empty(raw_id):
            raise InputError(table_path, line, mapping.id, "empty user id")
        user_id = str(raw_id).strip()
        if user_id in seen:
            raise InputError(table_path, line, mapping.id, f"duplicate user id {user_id!r} (first on line {seen[user_id]})")
        seen[user_id] = line
        data = {name: _source_value(row[s.column], s, mapping.separator)
                for name, s in mapping.sources.items() if not _empty(row[s.column])}
        users.append({"user_id": user_id, "data": data})
        labels = {}
        for dim, spec in mapping.gold.items():
            value = row[spec.column]
            if _empty(value):
                continue
            raw = spec.map.get(str(value).strip(), str(value))
            label = taxonomy.normalize(dim, raw)
            if label is None:
                raise InputError(table_path, line, spec.column, f"{value!r} is not a label of {dim!r} ({', '.join(taxonomy.dimension(dim).label_names)}); add it to the mapping's 'map' or as an alias")
            if label != UNKNOWN:
                labels[dim] = label
        if labels:
            gold.append({"user_id": user_id, "labels": labels})
    return users, gold, taxonomy


def import_table(table_path: str | Path, mapping_path: str | Path, out: str | Path) -> dict:
    """Write users.jsonl, gold.jsonl (when the mapping has gold) and taxonomy.yaml into `out`."""
    users, gold, taxonomy = convert(table_path, mapping_path)
    out = Path(out)
    atomic_write_jsonl(out / "users.jsonl", users)
    if gold:
        atomic_write_jsonl(out / "gold.jsonl", gold)
    taxonomy.to_yaml(out / "taxonomy.yaml")
    return {"users": len(users), "gold": len(gold), "out": str(out)}
