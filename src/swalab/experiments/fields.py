"""One map between a parameter's names: library argument, config path, flag, store column.

A user meets a parameter under several names — ``--agents`` on the command line,
``game.n_agents`` in a YAML file, ``n_agents`` as a library argument and in the episode
table — and an error raised under one name must reach them under the one they wrote. This
table is the only place those names are paired; the CLI, the planner's error messages and
the store read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Name:
    """The names of one parameter.

    Attributes:
        arg: Library argument (``SimulationConfig``, ``ProtocolConfig``, engine).
        path: Config path (dotted), or ``None`` where no config field holds it.
        flag: Command-line flag, or ``None`` where no command takes it.
        column: Episode-table column, or ``None`` where it is not stored as is.
    """

    arg: str
    path: str | None
    flag: str | None
    column: str | None


FIELDS: tuple[Name, ...] = (
    Name("n_agents", "game.n_agents", "--agents", "n_agents"),
    Name("capacity", "game.capacity", "--capacity", "capacity"),
    Name("beta", "game.beta", "--beta", "beta"),
    Name("x_max", "game.x_max", "--x-max", "x_max"),
    Name("weights", "game.weights", "--weights", "weights_per_agent"),
    Name("values", "game.values", "--values", "values_per_agent"),
    Name("steps", "game.steps", "--steps", "steps"),
    Name("horizon", "game.horizon", None, "horizon"),
    Name("k", "policy.k", "--k", "k"),
    Name("grid_step", "policy.grid_step", "--grid-step", "grid_step"),
    Name("resolution", "policy.grid_step", "--grid-step", "grid_step"),
    Name("anchors", "policy.anchors", "--anchors", "anchors"),
    Name("margin", "policy.margin", "--margin", "margin"),
    Name("gamma", "policy.gamma", "--gamma", "gamma"),
    Name("scorer", "policy.scorer", "--scorer", "scorer"),
    Name("candidates", "policy.candidates", "--candidates", "candidates"),
    Name("mode", "policy.mode", "--mode", "mode"),
    Name("selector", "policy.selector", "--selector", "selector"),
    Name("fallback", "policy.fallback", "--fallback", "fallback"),
    Name("alpha", "policy.belief.alpha", "--alpha", "alpha"),
    Name("belief_kind", "policy.belief.kind", None, "belief"),
    Name("window", "policy.belief.window", None, "belief_window"),
    Name("private", "policy.belief.private", "--private", "belief_private"),
    Name("delay", "policy.belief.delay", None, "belief_delay"),
    Name("noise", "policy.belief.noise", None, "belief_noise"),
    Name("initial_belief", "policy.belief.initial", "--initial-belief", "initial_belief"),
    Name("temperature", "model.temperature", "--temperature", "temperature"),
    Name("max_tokens", "model.max_tokens", None, None),
    Name("backend", "model.backend", "--backend", "backend"),
    Name("model", "model.name", "--model", "model"),
    Name("lam", "lam", "--lam", "lam"),
    Name("seeds", "seeds", "--seeds", None),
    Name("engine", None, "--engine", None),
    Name("structured", "model.options.structured", "--structured", None),
)

#: Library argument → its names.
BY_ARG: dict[str, Name] = {f.arg: f for f in FIELDS}

#: Config path → episode-table column, for the fields stored as they are (per-agent values
#: are stored per episode, as realised: ``*_per_agent``).
PATH_TO_COLUMN: dict[str, str] = {
    f.path: f.column
    for f in FIELDS
    if f.path is not None and f.column is not None and not f.column.endswith("_per_agent")
}


def column_values(config: dict[str, Any]) -> dict[str, Any]:
    """The episode-table columns a config holds as they are (its JSON dump, by path)."""
    out = {}
    for path, column in PATH_TO_COLUMN.items():
        node: Any = config
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        out[column] = node
    return out


#: Library argument → config path (planner errors name what the user wrote in YAML).
LIBRARY_TO_PATH: dict[str, str] = {f.arg: f.path for f in FIELDS if f.path is not None}

#: Library argument or config path → command-line flag (CLI errors name the flag).
TO_FLAG: dict[str, str] = {
    **{f.arg: f.flag for f in FIELDS if f.flag is not None},
    **{f.path: f.flag for f in FIELDS if f.flag is not None and f.path is not None},
}
