"""``swalab replicate paper``: run the paper's presets, then report where each system switched.

``--quick`` runs the embedded-model preset and the model-based sweeps of the reference
game and of the severity β (minutes on a laptop CPU); the full replication runs the paper's
figure presets on the backend the user has, plus the same model-based sweeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swalab.analysis.report import Report, write_report
from swalab.experiments.config import ConfigError, read_yaml
from swalab.experiments.kinds import load_config
from swalab.experiments.kinds import plan as plan_study
from swalab.experiments.presets import preset_path
from swalab.experiments.runner import RunSummary, run_experiment

QUICK = ("quick", "reference_model_based", "severity_model_based")
FULL = ("paper_fig1_2", "paper_fig3_4", "reference_model_based", "severity_model_based")


@dataclass
class Replication:
    """Results of one replication.

    Attributes:
        runs: Preset name → its run summary.
        report: The report over every preset's results (``out/report.html``).
    """

    runs: dict[str, RunSummary]
    report: Report


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
    """Run the presets into ``out/<preset>``, then write the report into ``out``.

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
    for name, config in configs.items():
        plan_study(config, f"preset {name}")
    root = Path(out)
    runs: dict[str, RunSummary] = {}
    for name, config in configs.items():
        if on_start is not None:
            on_start(name, root / name)
        runs[name] = run_experiment(
            config, out=root / name, source=f"preset {name}", show_progress=show_progress
        )
    return Replication(runs=runs, report=write_report(root))
