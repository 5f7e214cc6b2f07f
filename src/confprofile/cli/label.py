"""The `confprofile label` verb over `confprofile.label` (heavy imports inside)."""

from __future__ import annotations

from pathlib import Path

import typer

from confprofile.label import check_configs, default_teachers_path, label_users, plan, redact_users
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import load_teacher_configs


def label_command(
    users: Path = typer.Option(..., "--users", help="users.jsonl / .csv / .parquet"),
    taxonomy: str = typer.Option("profilebench", "--taxonomy", help="Taxonomy YAML or built-in name."),
    teachers: Path | None = typer.Option(None, "--teachers", help="Teachers YAML (default: packaged panel: smollm2 x 2 prompt variants + embedding)."),
    out: Path = typer.Option(Path("answers.parquet"), "--out", help="Answers table to write."),
    cache: Path | None = typer.Option(None, "--cache", help="SQLite reply cache (default: <out>.cache.sqlite beside --out)."),
    plan_only: bool = typer.Option(False, "--plan", help="Print requests and estimated tokens; send nothing."),
    redact: bool = typer.Option(False, "--redact", help="Replace emails, phone numbers, ID-like numbers and IPs before users reach a teacher."),
    engine: str = typer.Option("local", "--engine", help="local: this process; ray: spread requests over a Ray cluster (RAY_ADDRESS or a new local one; extra `ray`, docs/scale-out.md)."),
) -> None:
    """Label users with the teacher panel; resumable (rerun to continue after an interrupt)."""
    from rich.console import Console
    from rich.table import Table

    from confprofile.data import load_users
    from confprofile.files import atomic_write_parquet

    tax = Taxonomy.load(taxonomy)
    teachers = teachers or default_teachers_path()
    configs = load_teacher_configs(teachers)
    check_configs(configs, teachers)
    records = redact_users(load_users(users)) if redact else load_users(users)
    cache = cache or out.with_name(out.stem + ".cache.sqlite")
    if plan_only:
        table = Table("teacher", "backend", "requests", "cached", "to send", "prompt tokens (est.)", "max new tokens")
        table.columns[0].no_wrap = True
        rows = plan(records, tax, configs, cache)
        for r in rows:
            table.add_row(r["teacher"], r["backend"], *(f"{r[k]:,}" for k in ("requests", "cached", "to_send", "prompt_tokens_est", "max_completion_tokens")))
        Console().print(table)
        return
    if engine not in {"local", "ray"}:
        raise typer.BadParameter(f"expected 'local' or 'ray', got {engine!r}", param_hint="--engine")
    if engine == "ray":
        from confprofile.scale.ray_label import label_users_ray as run
    else:
        run = label_users
    frame = run(records, tax, configs, cache)
    atomic_write_parquet(out, frame)
    failed = frame.loc[frame.parse_status == "error", ["user_id", "teacher", "sample"]].drop_duplicates()
    typer.echo(f"wrote {out}: {len(frame):,} rows ({frame.parse_status.value_counts().to_dict()})")
    if len(failed):
        typer.echo(f"{len(failed)} request(s) failed; rerun the same command to retry them", err=True)
