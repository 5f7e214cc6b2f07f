"""The `confprofile evaluate` verb over `confprofile.evaluate`: the one verb that reads gold."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from confprofile.data import load_gold
from confprofile.evaluate import evaluate, load_predictions, print_metrics
from confprofile.taxonomy import Taxonomy


def evaluate_command(
    gold: Path = typer.Option(..., "--gold", help="gold.jsonl: {user_id, labels: {dimension: label}}."),
    pred: Path = typer.Option(..., "--pred", help="predictions .parquet or .jsonl (long or wide rows)."),
    taxonomy: str = typer.Option("profilebench", "--taxonomy", help="Built-in taxonomy name or a YAML path."),
    out: Path | None = typer.Option(None, "--out", help="Also write the metrics as JSON to this file."),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON instead of a table."),
) -> None:
    """Score predictions against gold: per-dimension P/R/F1, macro F1, coverage, ECE, Brier, AUROC."""
    tax = Taxonomy.load(taxonomy)  # InputError for an unknown name or a bad file
    metrics = evaluate(load_gold(gold, tax), load_predictions(pred), tax)
    if out is not None:
        from confprofile.files import atomic_write_json

        atomic_write_json(out, metrics)
    if json_out:
        typer.echo(json.dumps(metrics, indent=2))
    else:
        print_metrics(metrics)
