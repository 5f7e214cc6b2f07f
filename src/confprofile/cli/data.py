"""The data verbs: `confprofile generate` (synthetic ProfileBench) and `confprofile import ...`
(someone else's data turned into a run directory's input files)."""

from __future__ import annotations

from pathlib import Path

import typer

from confprofile.bench.profilebench import write_split

import_app = typer.Typer(
    help="Import a dataset into users.jsonl (+ gold.jsonl, taxonomy.yaml).",
    no_args_is_help=True,
)


@import_app.command("movielens")
def movielens_command(
    folder: Path = typer.Argument(..., help="A MovieLens-100K folder (u.user, u.data, u.item, u.genre, u.occupation)."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    max_ratings: int = typer.Option(None, "--max-ratings", min=1, help="Keep only each user's newest N ratings."),
) -> None:
    """MovieLens-100K: users see their ratings; gender, age group and occupation become gold."""
    from confprofile.importers.movielens import import_movielens

    summary = import_movielens(folder, out, max_ratings)
    typer.echo(f"wrote {summary['users']} users ({summary['ratings']} ratings) and their gold to {summary['out']}")


@import_app.command("csv")
def csv_command(
    table: Path = typer.Argument(..., help="A CSV, TSV or Parquet file, one user a row."),
    mapping: Path = typer.Option(..., "--mapping", help="Mapping YAML: id column, source columns, gold columns, taxonomy."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
) -> None:
    """Any table + a column mapping (see docs/bring-your-own-data.md)."""
    from confprofile.importers.csv_import import import_table

    summary = import_table(table, mapping, out)
    typer.echo(f"wrote {summary['users']} users ({summary['gold']} with gold labels) to {summary['out']}")


def generate_command(
    users: int = typer.Option(1000, "--users", min=1, help="Number of users to generate."),
    seed: int = typer.Option(0, "--seed", help="Random seed. Different seeds give disjoint user ids (train vs test)."),
    out: Path = typer.Option(..., "--out", help="Output directory (created if missing)."),
    difficulty: float = typer.Option(0.5, "--difficulty", min=0.0, max=1.0,
                                     help="0 = many explicit statements, 1 = mostly implicit, absent or misleading signals."),
) -> None:
    """Generate a synthetic ProfileBench split: users.jsonl, gold.jsonl, signals.jsonl, taxonomy.yaml, dataset_card.md."""
    path = write_split(out, users, seed, difficulty)
    typer.echo(f"wrote {users} users (seed {seed}, difficulty {difficulty:g}) to {path}")
