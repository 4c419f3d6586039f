"""What every command shares: the app, flag parsing, flags → config overrides, printing.

A command's body is four steps — its flags become overrides of a study config, the study
runs through the library's run path (plan → store → report), and the analysis is printed —
so the pieces here are the only code the commands have beyond naming their flags.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from swalab import reference as ref
from swalab._json import json_safe
from swalab._validate import rename_field
from swalab.experiments.config import BIG, MAX_AXIS

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="Socially-Weighted Alignment: thresholds, equilibria, SWI simulations and studies.",
)


#: Set by ``swalab --quiet``: no progress bars (they show only on a terminal anyway).
QUIET = {"on": False}


def show_progress(as_json: bool) -> bool:
    """Whether a command draws progress: not for JSON output, not with ``--quiet``."""
    return not (as_json or QUIET["on"])


class UserError(Exception):
    """A problem with the user's input, reported as one line with exit code 2."""


def numbers(flag: str, text: str) -> list[float]:
    """Parse a comma-separated list of numbers, naming ``flag`` if an item is not one."""
    items = [s.strip() for s in text.split(",")]
    if not text.strip() or any(not s for s in items):
        raise UserError(f"{flag}={text!r} is not a comma-separated list of numbers")
    out = []
    for s in items:
        try:
            out.append(float(s))
        except ValueError:
            raise UserError(f"{flag}: {s!r} is not a number") from None
    return out


def options(flag: str, items: list[str] | None) -> dict[str, Any] | None:
    """Parse ``KEY=VALUE`` items (values read as YAML scalars: numbers, booleans, text)."""
    import yaml

    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag}={item!r} is not KEY=VALUE")
        value = yaml.safe_load(text) if text.strip() else ""
        if not isinstance(value, str | int | float | bool):
            raise UserError(f"{flag}: {key}={text!r} must be a number, a boolean or text")
        out[key.strip()] = value
    return out


def integers(flag: str, text: str) -> list[int]:
    """Parse a comma-separated list of whole numbers."""
    out = []
    for x in numbers(flag, text):
        if not x.is_integer():
            raise UserError(f"{flag}: {x!r} is not an integer")
        out.append(int(x))
    return out


def bounded(flag: str, value: float) -> float:
    """``value`` if its magnitude is one a config may hold (:data:`BIG`), else a UserError."""
    if abs(value) > BIG:
        raise UserError(f"{flag}={value:g} is out of range: its magnitude must be <= {BIG:g}")
    return value


def per_agent(flag: str, text: str | None) -> float | list[float] | None:
    """Parse one number (for every agent) or one per agent."""
    if text is None:
        return None
    values = [bounded(flag, x) for x in numbers(flag, text)]
    return values[0] if len(values) == 1 else values


def grid(flag: str, text: str) -> list[float]:
    """Parse ``start:stop:count`` (evenly spaced, ends included) or a comma list."""
    if ":" not in text:
        return numbers(flag, text)
    parts = text.split(":")
    if len(parts) != 3:
        raise UserError(f"{flag}={text!r} must be start:stop:count or a comma list")
    start, stop = numbers(flag, f"{parts[0]},{parts[1]}")
    try:
        count = int(parts[2])
    except ValueError:
        raise UserError(f"{flag}: count {parts[2]!r} is not an integer") from None
    if count < 1:
        raise UserError(f"{flag}: count {count} must be >= 1")
    if count > MAX_AXIS:
        raise UserError(f"{flag}: count {count:,} is too large: at most {MAX_AXIS:,} values")
    return [round(start + (stop - start) * i / max(count - 1, 1), 12) for i in range(count)]


def run_study(
    kind: str,
    settings: Mapping[str, tuple[str, Any]],
    *,
    out: str | None,
    as_json: bool,
    name: str | None = None,
) -> Path:
    """Run a study of ``kind`` whose fields the flags set; return where it is stored.

    Args:
        kind: The study's kind.
        settings: Config path → (the flag that set it, its value); flags left at ``None``
            keep the kind's default.
        out: Output directory; default ``results/<kind>/<plan hash>``, so the same flags
            resume the same study and different ones never collide.
        as_json: Quiet progress (the caller prints JSON).
        name: The study's name (default: the kind).

    Raises:
        UserError: A value the config refuses, named by its flag.
    """
    from swalab.experiments import ConfigError, load_config, run_experiment
    from swalab.experiments.runner import default_out

    given = {path: value for path, (_, value) in settings.items() if value is not None}
    overrides = list(given.items())
    flags = {path: flag for path, (flag, _) in settings.items()}
    config_name = name or kind
    try:
        config = load_config({"kind": kind, "name": config_name}, overrides)
        where = Path(out) if out else default_out(config)
        summary = run_experiment(
            config, out=where, source=kind, show_progress=show_progress(as_json)
        )
    except ConfigError as exc:
        raise UserError(flag_message(str(exc), flags, config_name)) from None
    fail_on(summary)
    return where


def shared(**values: Any) -> dict[str, tuple[str, Any]]:
    """Settings of flags that mean the same in every study, by library argument name.

    Their config path and flag come from :data:`swalab.experiments.fields.FIELDS`, the one
    place those names are paired (``n_agents`` → ``game.n_agents``, ``--agents``).
    """
    from swalab.experiments.fields import BY_ARG

    out = {}
    for arg, value in values.items():
        name = BY_ARG[arg]
        assert name.path is not None and name.flag is not None
        out[name.path] = (name.flag, value)
    return out


def flag_message(message: str, flags: Mapping[str, str], source: str) -> str:
    """A config error as the command-line user wrote it: the config path becomes the flag.

    Config errors start with where the value came from (``--set path=value: …`` or the
    study's source); on the command line that is the flag, which the rest names.
    """
    head, sep, rest = message.partition(": ")
    if sep and (head.startswith("--set ") or head in (source, "config")):
        message = rest
    if message.startswith("cell {") and "}: " in message:  # one grid point of a sweep
        message = message.split("}: ", 1)[1]
    longest_first = dict(sorted(flags.items(), key=lambda kv: -len(kv[0])))
    return rename_field(message, longest_first)


def fail_on(summary: Any) -> None:
    """Say what went wrong in a run; exit 1 when cells failed (a rerun retries them).

    Cells set aside as damaged and models whose answers mostly failed to parse are warnings;
    failed cells are errors.
    """
    from swalab.analysis.results import parse_warnings

    for key, problem in summary.repaired:
        typer.echo(
            f"swalab: cell {key} did not read back ({problem}): set aside to .damaged/ and "
            "computed again",
            err=True,
        )
    if summary.finished:
        for warning in parse_warnings(summary.out):
            typer.echo(f"swalab: warning: {warning}", err=True)
    for key, error in summary.failed:
        typer.echo(f"swalab: cell {key} failed: {error}", err=True)
    if summary.failed:
        typer.echo(
            f"swalab: error: {len(summary.failed)} cell(s) failed (see {summary.out}/run.log); "
            "rerun the same command to retry them",
            err=True,
        )
        raise typer.Exit(1)


def emit(result: dict[str, Any] | list[dict[str, Any]], as_json: bool, title: str) -> None:
    """Print ``result`` as JSON, or as a table: one row per item, or key/value rows."""
    if as_json:
        typer.echo(json.dumps(json_safe(result), indent=2, default=str))
        return
    table = Table(title=title)
    if isinstance(result, dict):
        table.add_column("quantity")
        table.add_column("value", justify="right")
        for key, value in result.items():
            table.add_row(key, fmt(json_safe(value)))
    elif result:
        for key in result[0]:
            table.add_column(key, justify="right")
        for row in result:
            table.add_row(*(fmt(json_safe(x)) for x in row.values()))
    Console(width=max(Console().width, 140)).print(table)


def fmt(value: Any) -> str:
    """A cell of a rich table: numbers to 4 digits, text escaped (``[...]`` is not markup)."""
    from rich.markup import escape

    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return escape("[" + ", ".join(fmt(x) for x in value) + "]")
    if isinstance(value, dict):
        return escape(", ".join(f"{k}: {fmt(x)}" for k, x in value.items()))
    return "n/a" if value is None else escape(str(value))


def stamp() -> str:
    """A timestamp for a fresh output directory (benchmarks measure anew every time)."""
    return time.strftime("%Y%m%d-%H%M%S")


# Options shared by several commands; their defaults are the reference configuration.
Agents = Annotated[int, typer.Option("--agents", help="Number of agents N (≥ 2).")]
Beta = Annotated[float, typer.Option("--beta", help="Congestion severity β (> 0).")]
Capacity = Annotated[float, typer.Option("--capacity", help="Capacity C (> 0).")]
XMax = Annotated[float, typer.Option("--x-max", help="Largest demand x_max (> 0).")]
Margin = Annotated[float, typer.Option("--margin", help="Safety margin m of the scorer.")]
Gamma = Annotated[float, typer.Option("--gamma", help="Centering strength γ (0 = off).")]
Alpha = Annotated[float, typer.Option("--alpha", help="EMA smoothing α of the belief.")]
Steps = Annotated[int, typer.Option("--steps", help="Horizon T.")]
Seeds = Annotated[int, typer.Option("--seeds", help="Seeds (episodes) per point.")]
Scorer = Annotated[str, typer.Option("--scorer", help="paper or consistent.")]
Candidates = Annotated[str, typer.Option("--candidates", help="grid (whole grid) or random.")]
Out = Annotated[
    str | None, typer.Option("--out", help="Output directory (default: under results/).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
Weights = Annotated[
    str | None, typer.Option("--weights", help="Impacts w_i on the load, comma list.")
]
Values = Annotated[str | None, typer.Option("--values", help="Private values v_i, comma list.")]

REFERENCE_LAMS = ",".join(f"{x:g}" for x in ref.LAMBDAS)
