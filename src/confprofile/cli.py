"""The `confprofile` command line. Each verb is a thin wrapper over its stage module.

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


# ---- stage commands: each module exposes `<verb>_command`; register it here ----
from confprofile.bench.profilebench import generate_command  # noqa: E402

app.command("generate", help="Generate a synthetic ProfileBench split (users, gold, taxonomy, card).")(generate_command)
# (later stages register below)


def main() -> None:
    debug = "--debug" in sys.argv
    try:
        app(prog_name="confprofile", standalone_mode=True)
    except (InputError, MissingExtraError) as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted; finished work is saved and a rerun resumes", err=True)
        sys.exit(130)
