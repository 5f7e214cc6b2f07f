"""The `confprofile aggregate` verb: a thin adapter over `aggregate.pseudo_labels.run_aggregation` (heavy imports inside)."""

from __future__ import annotations

from pathlib import Path

import typer

from confprofile.errors import InputError
from confprofile.files import read_parquet_frame


def aggregate_command(
    answers: Path = typer.Option(..., "--answers", help="answers.parquet from `confprofile label`."),
    method: str = typer.Option("weighted", "--method", help="majority, weighted or dawid_skene."),
    calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate", help="Teacher prior + confidence calibration, class balance, group confidence (docs/aggregation.md)."),
    out: Path = typer.Option(Path("pseudo_labels.parquet"), "--out", help="Output pseudo_labels.parquet."),
    taxonomy: str = typer.Option("profilebench", "--taxonomy", help="Taxonomy YAML or built-in name (fixes label order, drops labels outside it)."),
    keep_threshold: float = typer.Option(0.0, "--keep-threshold", help="Minimum calibrated confidence for kept=true (0: keep all; students weigh rows by confidence)."),
    label_shares: Path = typer.Option(None, "--label-shares", help="YAML {dimension: {label: share}} of label shares known from outside the answers: the label prior of those dimensions."),
) -> None:
    """Vote teacher answers into pseudo-labels and print a per-dimension summary."""
    from rich.console import Console
    from rich.table import Table

    from confprofile.aggregate.base import AGGREGATORS
    from confprofile.aggregate.known_shares import load_label_shares
    from confprofile.aggregate.pseudo_labels import DEFAULT_CALIBRATION, run_aggregation
    from confprofile.files import atomic_write_parquet
    from confprofile.taxonomy import Taxonomy

    if method not in AGGREGATORS:
        raise InputError(None, None, "--method", f"unknown method {method!r}; choose from {AGGREGATORS.names()}")
    tax = Taxonomy.load(taxonomy)
    shares = load_label_shares(label_shares, tax) if label_shares else None
    if shares and not calibrate:
        raise InputError(None, None, "--label-shares", "known label shares need calibration (drop --no-calibrate)")
    try:
        table, summary = run_aggregation(read_parquet_frame(answers, layout="Parquet answers table"), method=method, taxonomy=tax, keep_threshold=keep_threshold,
                                         calibrate=DEFAULT_CALIBRATION if calibrate else (), label_shares=shares)
    except InputError as exc:  # name the answers file when the table itself is at fault
        if exc.path is None:
            raise InputError(answers, exc.line, exc.field, exc.message) from None
        raise
    atomic_write_parquet(out, table)
    view = Table(title=f"pseudo-labels ({table['method'].iloc[0] if len(table) else method}) -> {out}")
    for col in ("dimension", "labels before balancing", "labels after", "mean conf", "kept", "teacher agreement"):
        view.add_column(col)
    def fmt(counts: dict) -> str:  # label shares, largest first
        total = max(sum(counts.values()), 1)
        return " ".join(f"{k}:{v / total:.0%}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    for row in summary.itertuples():
        view.add_row(row.dimension, fmt(row.before), fmt(row.after), f"{row.mean_confidence:.3f}", f"{row.kept:.1%}", f"{row.teacher_agreement:.1%}")
    Console().print(view)
