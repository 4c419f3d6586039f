"""The `swalab` command line: thin Typer commands over the library.

Every command is flags → config overrides → the library's run path → print; the modules
hold the closed forms (`theory`), the studies one command runs (`studies`) and the commands
over study files and stores (`runs`). Every failure a user can cause (a bad flag, an
out-of-range parameter) ends with one line on stderr, `swalab: error: …`, and exit code 2,
never a traceback; a study whose cells failed exits 1.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from swalab import __version__
from swalab._validate import rename_field
from swalab.cli import runs, studies, theory
from swalab.cli._common import QUIET, UserError, app
from swalab.experiments.fields import TO_FLAG
from swalab.experiments.runner import RunInterrupted

__all__ = ["app", "main", "runs", "studies", "theory"]


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"swalab {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress bars (drawn on a terminal only).")
    ] = False,
) -> None:
    """Socially-Weighted Alignment: thresholds, equilibria, SWI simulations and studies."""
    QUIET["on"] = quiet


@app.command("version")
def version() -> None:
    """Print swalab's version."""
    typer.echo(__version__)


def _run(command: Callable[..., Any], args: Sequence[str]) -> int:
    try:
        # Outside standalone mode click returns a command's exit code instead of raising.
        code = command(args=list(args) or ["--help"], prog_name="swalab", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except RunInterrupted as exc:
        typer.echo(f"swalab: {exc}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("swalab: interrupted", err=True)
        return 130
    except typer.TyperException as exc:  # usage errors: unknown flag, wrong type, ...
        typer.echo(f"swalab: error: {exc.format_message()}", err=True)
        return 2
    except (UserError, ValueError, ImportError) as exc:
        typer.echo(f"swalab: error: {rename_field(str(exc), TO_FLAG)}", err=True)
        return 2
    return code if isinstance(code, int) else 0


class _Terminated(BaseException):
    """SIGTERM outside a run's own handling (starting up, analysing, printing)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `swalab` script; returns the exit code."""
    command = typer.main.get_command(app)
    if argv is None:  # the script: SIGINT and SIGTERM end it with one line, 130 and 143,
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even where inherited ignored
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = _run(command, sys.argv[1:] if argv is None else argv)
    except _Terminated:
        typer.echo("swalab: interrupted (SIGTERM)", err=True)
        code = 143
    if argv is None:
        stuck = [t for t in threading.enumerate() if t.is_alive() and not t.daemon]
        if code in (130, 143) and len(stuck) > 1:  # a thread waits on a hung network call:
            sys.stdout.flush()  # interrupted means now, not when its timeout ends
            sys.stderr.flush()
            os._exit(code)
        sys.exit(code)
    return code
