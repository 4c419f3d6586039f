"""A result directory as curves: one system, λ swept, seeds as replicates.

A *curve* is every finished episode of one experiment that shares all parameters but λ
(and the seed): one model, scorer, game, candidate setting… Whatever a sweep varied
besides λ splits curves, so the analysis needs no knowledge of the grid. A directory is one
experiment (it has a ``manifest.json``) or a folder of them, as ``swalab replicate``
writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from swalab import theory
from swalab.experiments.store import EPISODE_SCHEMA, PARAM_FIELDS, ResultStore
from swalab.stats import Estimate, bootstrap_mean, bootstrap_mean_diff

#: Metrics summarised per (curve, λ), with their display names. ``welfare_gain`` is
#: ΔW(λ) = W̄(λ) − W̄(0) of the paper, paired by seed.
METRICS: dict[str, str] = {
    "overload_rate": "overload rate",
    "mean_welfare": "mean welfare W̄",
    "welfare_gain": "ΔW vs λ = 0",
    "mean_load": "mean load X",
    "utilisation": "utilisation X/C",
    "fairness": "Jain fairness",
    "steps_to_stable": "steps until X ≤ C",
    "steps_played": "steps played T",
    "completed": "completed calls per step",
    "rejected": "429s per step",
    "lockout_rate": "share of steps locked out",
    "critical_loss": "critical context lost",
    "survival_time": "steps before collapse",
    "total_harvest": "total harvest",
    "equality": "equality of harvests (Jain)",
    "drift": "drift: late − early harvest",
    "judge_agreement": "judge vs closed form (ρ)",
    "reward_gap": "reward gap, others − prosocial",
    "prosocial_cut_share": "prosocial share of the cut",
    "proposal_failure_rate": "parse failures",
    "fallback_rate": "fallbacks",
    "pick_failure_rate": "pick failures",
    "pick_agreement": "pick = argmax",
}

#: Parameters that tell curves apart: λ is the x-axis, and per-agent values are named by
#: ``heterogeneity`` (they are drawn per seed when they come from a distribution).
CURVE_FIELDS = tuple(
    n
    for n, _ in PARAM_FIELDS
    if n not in ("lam", "lam_per_agent", "x_max_per_agent", "weights_per_agent", "values_per_agent")
)


@dataclass
class Experiment:
    """One experiment directory.

    Attributes:
        name: Its path relative to the analysed root (``.`` for the root itself).
        kind: Its kind of study (only sweeps have curves).
        root: Its directory.
        manifest: The store's manifest.
        config_yaml: The experiment as run.
        planned: Cells planned.
        finished: Cells committed.
    """

    name: str
    kind: str
    root: Path
    manifest: dict[str, Any]
    config_yaml: str
    planned: int
    finished: int


@dataclass
class Curve:
    """One system over λ.

    Attributes:
        experiment: Name of its experiment.
        params: Its fixed parameters (:data:`CURVE_FIELDS`).
        lams: Distinct λ, ascending.
        seeds: Per λ, the seeds of its finished episodes.
        values: Metric → per λ, the per-seed values (NaN where not defined).
        cells: Per λ, the cell keys behind it.
        failed: Episodes that did not finish (left out of every metric).
    """

    experiment: str
    params: dict[str, Any]
    lams: np.ndarray
    seeds: list[np.ndarray]
    values: dict[str, list[np.ndarray]]
    cells: list[list[str]]
    failed: int = 0

    @property
    def model(self) -> str:
        """The model, or ``model-based`` for a rule-only run."""
        return str(self.params.get("model") or "model-based")

    @property
    def lambda_star(self) -> float:
        """Theorem 1's threshold λ* of this game (NaN when agents differ in x_max, w or v)."""
        p = self.params
        if p.get("env", "congestion_v0") != "congestion_v0":
            return float("nan") if p.get("switch_point") is None else float(p["switch_point"])
        if p.get("heterogeneity"):
            return float("nan")
        return float(theory.lambda_star(p["n_agents"], p["beta"]))

    @property
    def lambda_tilde(self) -> float:
        """The paper scorer's switch λ̃ of this game (NaN for heterogeneous agents)."""
        p = self.params
        if p.get("heterogeneity") or p.get("env", "congestion_v0") != "congestion_v0":
            return float("nan")
        return float(theory.lambda_tilde(p["capacity"], p["beta"], p["x_max"], p["margin"]))

    @property
    def predicted(self) -> float:
        """The threshold this curve's scorer should switch at (:func:`theory.predicted_switch`).

        A dilemma's is its closed-form switch point; NaN for heterogeneous agents.
        """
        p = self.params
        if p.get("env", "congestion_v0") != "congestion_v0" or p.get("heterogeneity"):
            return self.lambda_star
        return float(
            theory.predicted_switch(
                str(p["scorer"]),
                n_agents=p["n_agents"],
                capacity=p["capacity"],
                beta=p["beta"],
                x_max=p["x_max"],
                margin=p["margin"],
            )
        )

    def per_episode(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """``(λ, value)`` of every finished episode (for the transition estimate)."""
        lam = np.concatenate(
            [np.full(s.size, x) for x, s in zip(self.lams, self.seeds, strict=True)]
        )
        return lam, np.concatenate(self.values[metric])


@dataclass
class Results:
    """Everything a report reads from a directory.

    Attributes:
        root: The analysed directory.
        experiments: Its experiments.
        curves: Every curve, in a stable order (experiment, then parameters).
    """

    root: Path
    experiments: list[Experiment]
    curves: list[Curve]

    def varying(self, curve: Curve) -> list[str]:
        """Parameters that differ between the curves of ``curve``'s experiment and model."""
        peers = [
            c for c in self.curves if (c.experiment, c.model) == (curve.experiment, curve.model)
        ]
        return [f for f in CURVE_FIELDS if len({_key(c.params[f]) for c in peers}) > 1]

    def label(self, curve: Curve, *, skip: Iterable[str] = ()) -> str:
        """A legend label: experiment (if several), model, scorer, then what else differs.

        Only parameters that vary within the curve's experiment and model are named, so a
        label stays short however many fields differ between an LLM and a rule-only run.
        """
        skip = {"model", "backend", "scorer", *skip}
        parts = [curve.experiment] if len(self.experiments) > 1 else []
        parts += [curve.model, str(curve.params["scorer"])]
        for name in self.varying(curve):
            if name not in skip:
                sign = "β" if name == "beta" else name
                parts.append(f"{sign}={_fmt(curve.params[name])}")
        return " · ".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def find_experiments(root: str | Path) -> list[Path]:
    """The experiment directories at ``root``: itself, or its subdirectories, sorted.

    Raises:
        FileNotFoundError: Neither ``root`` nor any subdirectory is a result directory.
    """
    base = Path(root)
    if (base / "manifest.json").is_file():
        return [base]
    found = sorted(p.parent for p in base.glob("*/manifest.json")) if base.is_dir() else []
    if not found:
        raise FileNotFoundError(
            f"{root}: not a swalab result directory (no manifest.json in it or in a "
            f"subdirectory); give the --out of `swalab run` or `swalab replicate`"
        )
    return found


def _episodes(store: ResultStore) -> pa.Table:
    files = store.table_files("episodes")
    if not files:
        return EPISODE_SCHEMA.empty_table()
    return pa.concat_tables([_conform(pq.read_table(f)) for f in files])


def _conform(t: pa.Table) -> pa.Table:
    """A stored episode table in today's schema.

    Columns an older swalab did not write are null: a store keeps its finished cells
    across upgrades.
    """
    cols = [
        t.column(f.name) if f.name in t.column_names else pa.nulls(t.num_rows, f.type)
        for f in EPISODE_SCHEMA
    ]
    return pa.Table.from_arrays(cols, schema=EPISODE_SCHEMA)


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def load_results(root: str | Path) -> Results:
    """Read every finished episode under ``root`` and group it into curves."""
    base = Path(root)
    experiments: list[Experiment] = []
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for path in find_experiments(base):
        store = ResultStore(path)
        manifest = store.manifest() or {}
        name = "." if path == base else str(path.relative_to(base))
        yaml_path = path / "experiment.yaml"
        experiments.append(
            Experiment(
                name=name,
                kind=store.kind(),
                root=path,
                manifest=manifest,
                config_yaml=yaml_path.read_text() if yaml_path.exists() else "",
                planned=len(manifest.get("planned_cells", [])),
                finished=len(store.finished()),
            )
        )
        if store.kind() != "sweep":
            continue
        for row in _episodes(store).to_pylist():
            key = (name, *(_key(row[f]) for f in CURVE_FIELDS))
            groups.setdefault(key, []).append(row)
    curves = [_curve(key, rows) for key, rows in sorted(groups.items(), key=_sort_key)]
    return Results(root=base, experiments=experiments, curves=curves)


def _sort_key(item: tuple[tuple[Any, ...], Any]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in item[0])


def _curve(key: tuple[Any, ...], rows: list[dict[str, Any]]) -> Curve:
    ok = [r for r in rows if r["status"] == "ok"]
    lams = np.unique(np.array([r["lam"] for r in ok], dtype=np.float64))
    seeds, cells = [], []
    values: dict[str, list[np.ndarray]] = {m: [] for m in METRICS if m != "welfare_gain"}
    for lam in lams:
        at = sorted((r for r in ok if r["lam"] == lam), key=lambda r: r["seed"])
        seeds.append(np.array([r["seed"] for r in at], dtype=np.int64))
        cells.append(sorted({r["cell"] for r in at}))
        for m in values:
            values[m].append(
                np.array([np.nan if r[m] is None else r[m] for r in at], dtype=np.float64)
            )
    params = dict(zip(CURVE_FIELDS, key[1:], strict=True))
    return Curve(
        experiment=key[0],
        params=params,
        lams=lams,
        seeds=seeds,
        values=values,
        cells=cells,
        failed=len(rows) - len(ok),
    )


def summarize(curve: Curve, *, seed: int = 0) -> list[dict[str, Any]]:
    """One row per λ: every metric's mean over seeds with its 95 % bootstrap interval.

    ``welfare_gain`` is paired by seed when λ and λ = 0 ran the same seeds, and missing
    (NaN) when the curve has no λ = 0.
    """
    base = next((i for i, x in enumerate(curve.lams) if x == 0.0), None)
    rows = []
    for i, lam in enumerate(curve.lams):
        est: dict[str, Estimate] = {
            m: bootstrap_mean(v[i], seed=seed) for m, v in curve.values.items()
        }
        if base is None:
            est["welfare_gain"] = Estimate(float("nan"), float("nan"), float("nan"), 0)
        else:
            w, w0 = curve.values["mean_welfare"][i], curve.values["mean_welfare"][base]
            paired = np.array_equal(curve.seeds[i], curve.seeds[base])
            est["welfare_gain"] = bootstrap_mean_diff(w, w0, paired=paired, seed=seed)
        row: dict[str, Any] = {"lam": float(lam), "seeds": int(curve.seeds[i].size)}
        for m in METRICS:
            e = est[m]
            row |= {m: e.mean, f"{m}_low": e.low, f"{m}_high": e.high}
        rows.append(row)
    return rows


def load_series(
    curve: Curve, root: Path, lams: list[float]
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Per-step loads at each of ``lams``: ``(λ, steps, loads[seed, step])``, one query.

    Read from the step rows (one per agent; the load is the step's). Episodes that stopped
    early are NaN after their last step; a λ whose cells stored no step rows is left out.
    """
    from swalab.experiments.query import connect

    lam_of = {
        c: lam for lam in lams for c in curve.cells[int(np.flatnonzero(curve.lams == lam)[0])]
    }
    listing = ", ".join("'" + c + "'" for c in lam_of)
    rows = (
        connect(root)
        .execute(
            f"SELECT cell, seed, step, any_value(load) FROM steps WHERE cell IN ({listing}) "
            "GROUP BY ALL ORDER BY ALL"
        )
        .fetchall()
    )
    out = []
    for lam in lams:
        mine = [r[1:] for r in rows if lam_of[r[0]] == lam]
        if not mine:
            continue
        seeds = sorted({s for s, _, _ in mine})
        steps = np.arange(max(t for _, t, _ in mine) + 1)
        loads = np.full((len(seeds), steps.size), np.nan)
        where = {s: j for j, s in enumerate(seeds)}
        for s, t, x in mine:
            loads[where[s], t] = x
        out.append((lam, steps, loads))
    return out


def manifest_summary(experiment: Experiment) -> dict[str, Any]:
    """What ran an experiment: version, commit, machine, models (for the report)."""
    m = experiment.manifest
    return {
        "experiment": experiment.name,
        "swalab_version": m.get("swalab_version"),
        "git_commit": m.get("git_commit"),
        "created": m.get("created"),
        "updated": m.get("updated"),
        "machine": m.get("machine"),
        "models": m.get("models", {}),
        "cells": f"{experiment.finished} of {experiment.planned}",
    }


def lambda_means(root: str | Path) -> list[dict[str, Any]]:
    """Per λ of a model-based sweep: seed means of its metrics, ΔW against λ = 0.

    ``delta_welfare`` subtracts the mean welfare of λ = 0 over the same seeds (``None``
    without a λ = 0).
    """
    from swalab.experiments.query import connect

    rows = (
        connect(root)
        .execute(
            "SELECT lam, avg(overload_rate), avg(mean_welfare), avg(mean_load), avg(fairness), "
            "avg(steps_to_stable) FROM episodes WHERE status = 'ok' GROUP BY lam ORDER BY lam"
        )
        .fetchall()
    )
    base = next((w for lam, _, w, *_ in rows if lam == 0.0), None)
    names = ("overload_rate", "mean_welfare", "mean_load", "fairness", "steps_to_stable")
    return [
        {"lam": lam, **dict(zip(names, rest, strict=True))}
        | {"delta_welfare": None if base is None else rest[1] - base}
        for lam, *rest in rows
    ]


#: What ``swalab simulate --backend`` prints per LLM episode.
EPISODE_COLUMNS = (
    "lam",
    "seed",
    "status",
    "overload_rate",
    "mean_welfare",
    "mean_load",
    "proposal_failure_rate",
    "fallback_rate",
    "pick_agreement",
    "prompts",
    "tokens_in",
    "tokens_out",
    "latency_s",
    "cached",
    "error",
)


def episode_table(root: str | Path) -> list[dict[str, Any]]:
    """Every episode of a sweep, in λ and seed order, with :data:`EPISODE_COLUMNS`."""
    from swalab.experiments.query import connect

    cur = connect(root).execute(
        f"SELECT {', '.join(EPISODE_COLUMNS)} FROM episodes ORDER BY lam, seed"
    )
    return [dict(zip(EPISODE_COLUMNS, r, strict=True)) for r in cur.fetchall()]


#: Above this share of LLM proposals that did not parse, a run warns: anchors (or the grid)
#: played instead of the model, so the results say little about the model.
PARSE_WARNING = 0.5

#: What to do about it, per backend.
PARSE_ADVICE = {
    "openai": "set model.options.structured to what the server enforces (llamacpp: a GBNF "
    "grammar, vllm: a regex, openai: a JSON schema on the chat endpoint)",
    "llamacpp": "keep model.constrained on (the grammar); a base model may need a larger "
    "max_tokens",
}


def parse_warnings(root: str | Path) -> list[str]:
    """One line per model whose proposals mostly failed to parse, under ``root``."""
    from swalab.experiments.query import connect

    out = []
    for path in find_experiments(root):
        store = ResultStore(path)
        if store.kind() != "sweep" or not store.finished():
            continue
        rows = (
            connect(path)
            .execute(
                "SELECT coalesce(model, 'default'), backend, avg(proposal_failure_rate), count(*) "
                "FROM episodes WHERE proposal_failure_rate IS NOT NULL GROUP BY ALL ORDER BY ALL"
            )
            .fetchall()
        )
        for model, backend, share, episodes in rows:
            if share is not None and share > PARSE_WARNING:
                advice = PARSE_ADVICE.get(str(backend), "constrain the model's output")
                out.append(
                    f"{path}: {share:.0%} of the proposals of {backend}/{model} did not parse "
                    f"({episodes} episodes): the fallback played instead of the model; "
                    f"{advice}"
                )
    return out
