"""The `confprofile` command line. Each verb is a thin adapter over its stage module; no stage module
imports typer, so the library and `confprofile run` never depend on the command line.

Stage modules import heavy libraries (torch, transformers, trl) inside functions, so that
`confprofile --help` stays fast. An `InputError` becomes one line on stderr and exit code 2;
`--debug` shows the traceback instead.
"""

from __future__ import annotations

import sys

import typer

from confprofile.errors import InputError, MissingExtraError

app = typer.Typer(
    name="confprofile",
    help="Label-free user profiling with LLMs: teachers -> voting -> distillation -> unsupervised RL -> evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_state = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    _state["debug"] = debug


# ---- verbs, in data-flow order: one module per verb family, each a thin adapter over its stage ----
from confprofile.cli.aggregate import aggregate_command  # noqa: E402
from confprofile.cli.data import generate_command, import_app  # noqa: E402
from confprofile.cli.evaluate import evaluate_command  # noqa: E402
from confprofile.cli.label import label_command  # noqa: E402
from confprofile.cli.rl import rl_command  # noqa: E402
from confprofile.cli.run import quickstart_command, report_command, run_command  # noqa: E402
from confprofile.cli.students import distill_command, predict_command, sft_command  # noqa: E402

app.command("generate", help="Generate a synthetic ProfileBench split (users, gold, taxonomy, card).")(generate_command)
app.add_typer(import_app, name="import", help="Import MovieLens-100K or your own CSV/Parquet table.")
app.command("label", help="Label users with the teacher panel into answers.parquet (resumable cache).")(label_command)
app.command("aggregate", help="Vote teacher answers into calibrated pseudo-labels (majority, weighted, dawid_skene).")(aggregate_command)
app.command("sft", help="Build sft.jsonl (chat records + confidence weights) from users and pseudo-labels.")(sft_command)
app.command("distill", help="Confidence-weighted SFT of a student (tiny, smollm2 or an HF dir) on sft.jsonl.")(distill_command)
app.command("rl", help="Confidence-guided unsupervised GRPO of the SFT student (group voting, difficulty filter, collapse guards).")(rl_command)
app.command("predict", help="Profiles of a users file of any size by a student, streamed in chunks, resumable.")(predict_command)
app.command("evaluate", help="Score predictions against gold: P/R/F1, macro F1, coverage, ECE, Brier, AUROC.")(evaluate_command)
app.command("run", help="Run every stage from one YAML config into a run directory (resumable).")(run_command)
app.command("quickstart", help="The CPU demo: synthetic users, packaged teachers, voting, SFT, RL, evaluation, report.")(quickstart_command)
app.command("report", help="Write the self-contained HTML report of a run directory.")(report_command)


def main() -> None:
    debug = "--debug" in sys.argv
    try:
        app(prog_name="confprofile", standalone_mode=True)
    except (InputError, MissingExtraError) as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # an unwritable output or an unreadable input not already reported as InputError
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted; finished work is saved and a rerun resumes", err=True)
        sys.exit(130)
