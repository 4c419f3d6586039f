"""``swalab replicate paper``: run the paper's presets, then summarise where each system switched.

``--quick`` runs the embedded-model preset and the model-based reference sweep (minutes on
a laptop CPU); the full replication runs the paper's figure presets on the backend the
user has, plus the model-based sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swalab import theory
from swalab.experiments.config import ConfigError, load_config, read_yaml
from swalab.experiments.presets import preset_path
from swalab.experiments.query import query
from swalab.experiments.runner import RunSummary, run_experiment

QUICK = ("quick", "reference_model_based")
FULL = ("paper_fig1_2", "paper_fig3_4", "reference_model_based")


@dataclass
class Replication:
    """Results of one replication.

    Attributes:
        runs: Preset name → its run summary.
        switches: One row per (preset, scorer, model, β): the measured switch beside λ*
            and λ̃.
    """

    runs: dict[str, RunSummary]
    switches: list[dict[str, Any]]


def _preset_data(name: str, backend: str | None, model: str | None) -> dict[str, Any]:
    data = read_yaml(preset_path(name))
    if data.get("model") is None:  # model-based preset: nothing to choose
        return data
    if backend is not None:
        data["model"]["backend"] = backend
    if model is not None:
        data["model"]["name"] = model
        data.get("grid", {}).pop("model.name", None)
    return data


def switches(out: Path, preset: str) -> list[dict[str, Any]]:
    """Per (scorer, model, β): where the seed-mean overload rate drops below 0.5 for good.

    The switch is the smallest λ from which it stays below 0.5 (``None`` if it never
    does), put beside λ* and λ̃ of that game: a coarse, threshold-crossing summary.
    """
    _, rows = query(
        out,
        "SELECT scorer, coalesce(model, 'model-based') AS model, beta, n_agents, capacity, "
        "x_max, margin, lam, avg(overload_rate) AS overload_rate, count(*) AS episodes "
        "FROM episodes WHERE status = 'ok' GROUP BY ALL ORDER BY ALL",
    )
    groups: dict[tuple[Any, ...], list[tuple[float, float]]] = {}
    for scorer, model, beta, n, cap, x_max, margin, lam, rate, _ in rows:
        groups.setdefault((scorer, model, beta, n, cap, x_max, margin), []).append((lam, rate))
    out_rows = []
    for (scorer, model, beta, n, cap, x_max, margin), curve in groups.items():
        curve.sort()
        switch = None
        for i, (lam, _) in enumerate(curve):
            if all(r < 0.5 for _, r in curve[i:]):
                switch = lam
                break
        out_rows.append({
            "preset": preset, "scorer": scorer, "model": model, "beta": beta,
            "lambda_switch": switch, "lambda_star": theory.lambda_star(n, beta),
            "lambda_tilde": theory.lambda_tilde(cap, beta, x_max, margin),
            "lam_points": len(curve),
        })  # fmt: skip
    return out_rows


def replicate_paper(
    *,
    quick: bool,
    out: str | Path,
    backend: str | None = None,
    model: str | None = None,
    overrides: tuple[str, ...] = (),
    show_progress: bool = False,
    on_start: Callable[[str, Path], None] | None = None,
) -> Replication:
    """Run the presets into ``out/<preset>`` and summarise the switches.

    Every preset is loaded and planned before the first one runs, so a mistake in any of
    them (an unavailable backend, a model llama.cpp cannot load) stops everything early.

    Raises:
        ConfigError: A preset cannot run with the given backend/model.
    """
    names = QUICK if quick else FULL
    if not quick and backend is None:
        raise ConfigError(
            "--backend: the full replication runs the paper's 7B-class models; name the "
            "backend you have (vllm, transformers, or openai with --set "
            "model.options.base_url=...), or use --quick for the embedded model"
        )
    configs = {}
    for name in names:
        data = _preset_data(name, backend, model)
        extra = overrides if data.get("model") is not None else ()
        configs[name] = load_config(data, extra)
    from swalab.experiments.plan import plan

    for name, config in configs.items():
        plan(config, source=f"preset {name}")
    root = Path(out)
    runs: dict[str, RunSummary] = {}
    rows: list[dict[str, Any]] = []
    for name, config in configs.items():
        if on_start is not None:
            on_start(name, root / name)
        runs[name] = run_experiment(config, out=root / name, source=f"preset {name}",
                                    show_progress=show_progress)  # fmt: skip
        rows += switches(root / name, name)
    return Replication(runs=runs, switches=rows)
