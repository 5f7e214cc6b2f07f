"""The whole-pipeline verbs: `confprofile run`, `quickstart` and `report` over `confprofile.pipeline`."""

from __future__ import annotations

from pathlib import Path

import typer

from confprofile.pipeline import STAGES, PipelineConfig, demo_config_path, run


def run_command(
    config: Path = typer.Argument(..., help="Pipeline YAML (see configs/demo.yaml)."),
    from_stage: str | None = typer.Option(None, "--from", help=f"Redo from this stage: {', '.join(STAGES)}."),
) -> None:
    """Run every stage into the config's run directory; a rerun resumes and skips finished stages."""
    run(config, from_stage=from_stage)


def quickstart_command(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", help="Run directory."),
    train_users: int | None = typer.Option(None, "--train-users", help="Override the demo's synthetic train users."),
    test_users: int | None = typer.Option(None, "--test-users", help="Override the demo's synthetic test users."),
    from_stage: str | None = typer.Option(None, "--from", help="Redo from this stage."),
) -> None:
    """The embedded CPU demo: synthetic users -> packaged teachers -> voting -> SFT -> RL -> report."""
    config = PipelineConfig.from_yaml(demo_config_path())
    config.run_dir = str(out)
    if train_users:
        config.data.generate.train_users = train_users
    if test_users:
        config.data.generate.test_users = test_users
    run_dir = run(config, from_stage=from_stage)
    typer.echo(f"report: {run_dir / 'report.html'}")


def report_command(run_dir: Path = typer.Argument(..., help="A run directory with metrics.json.")) -> None:
    """(Re)write the HTML report of a run."""
    from confprofile.report import write_report

    typer.echo(str(write_report(run_dir)))
