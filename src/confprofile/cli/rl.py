"""The `confprofile rl` verb: stage 2 of any student (`confprofile.rl.command.train_rl` for LLM
students, `confprofile.rl.encoder_policy` for the encoder student)."""

from __future__ import annotations

from pathlib import Path

import typer

from confprofile.errors import InputError
from confprofile.rl.command import train_rl
from confprofile.rl.config import stage2_config
from confprofile.student.targets import load_pseudo


def rl_command(
    model: Path = typer.Option(..., "--model", help="SFT student directory (from `confprofile distill`)."),
    users: Path = typer.Option(..., "--users", help="Training users (users.jsonl / CSV / Parquet); no gold needed."),
    out: Path = typer.Option(..., "--out", help="RL student directory (+ checkpoints/, rl_log.jsonl, rl_summary.json)."),
    pseudo: Path | None = typer.Option(None, "--pseudo-labels", "--pseudo", help="pseudo_labels.parquet: enables difficulty filtering and the vote prior (`--pseudo` is the old spelling)."),
    taxonomy: str = typer.Option("profilebench", "--taxonomy", help="Taxonomy YAML or built-in name."),
    config_path: Path | None = typer.Option(None, "--config", help="YAML of RLConfig fields (see `confprofile.rl.config`)."),
    steps: int | None = typer.Option(None, "--steps", help="Stop after N optimisation steps (overrides the config)."),
    num_generations: int | None = typer.Option(None, "--num-generations", help="Rollouts per user (overrides the config)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the newest checkpoint under OUT/checkpoints."),
    dev_users: Path | None = typer.Option(None, "--dev-users", help="Small dev slice for the collapse monitor (evaluation only)."),
    dev_gold: Path | None = typer.Option(None, "--dev-gold", help="Gold of the dev slice (evaluation only; flagged uses_gold_dev in logs)."),
) -> None:
    """Confidence-guided unsupervised GRPO on the SFT student (group voting, difficulty filter, collapse guards)."""
    import yaml

    from confprofile.data import load_users

    values = {}
    if config_path is not None:
        try:
            values = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(config_path, None, None, f"unreadable RL config ({exc})") from None
    values.setdefault("taxonomy", taxonomy)
    from confprofile.student import open_student, student_family

    family = student_family(model)
    if steps is not None:
        values["max_steps"] = steps
    if num_generations is not None:
        values["num_generations"] = num_generations
    try:
        config = stage2_config(family, values)
    except InputError as exc:
        raise InputError(config_path, None, exc.field, exc.message) from None
    except (ValueError, TypeError) as exc:
        raise InputError(config_path, None, None, str(exc)) from None
    if (dev_users is None) != (dev_gold is None):
        raise InputError(None, None, "--dev-users/--dev-gold", "give both or neither")
    dev_eval = None
    if dev_users is not None:
        from confprofile.dev_monitor import load_dev
        from confprofile.taxonomy import Taxonomy

        dev_eval = load_dev(dev_users, dev_gold, Taxonomy.load(config.taxonomy), config)
        config.dev_eval_steps = config.dev_eval_steps or max(1, config.save_steps // 2)
    if family == "encoder":
        from confprofile.rl.encoder_policy import train_encoder_stage2

        if dev_eval is not None:
            raise InputError(None, None, "--dev-users", "the encoder student's stage 2 has no gold dev monitor")
        summary = train_encoder_stage2(open_student(model, cache_path=model / "embeddings.npz"), load_users(users), out, config,
                                       pseudo=load_pseudo(pseudo) if pseudo else None)
    else:
        summary = train_rl(model, load_users(users), out, config, pseudo=load_pseudo(pseudo) if pseudo else None,
                           dev_eval=dev_eval, resume=resume)
    typer.echo(f"RL student -> {out}: {summary['steps']} steps, {summary['rollouts_generated']} rollouts, "
               f"users {summary['selection']}, groups {summary['groups']}"
               + (f", stopped: {summary['stop_reason']}" if summary["stop_reason"] else ""))
