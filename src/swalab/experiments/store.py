"""The result store: one directory per finished cell, appearing atomically, and a manifest.

Layout of an output directory, the same for every kind of study::

    manifest.json          kind, swalab version, git commit, machine, planned cells, models
    experiment.yaml        the study as run (file + overrides), for the record
    run.log                what each run did
    failures.json          cells that failed in the last runs, and why (until they finish)
    cells/<key>/           one finished cell: cell.json and one <table>.parquet per table
                           (a sweep: steps, episodes; a phase diagram: phase; …)
    .staging/              cells being written (never read; cleared on the next run)
    .damaged/              cells that did not read back, moved aside (nothing is deleted)
    .lock                  held (flock) by the one run writing here; readers need none

A cell is written into ``.staging`` and renamed into ``cells/`` in one ``rename``: a reader
(or a rerun after SIGKILL) sees either the whole cell or nothing. The rename is the commit
point, so a finished cell is never computed twice and a half-written one is never seen.
One run writes at a time: :meth:`ResultStore.writing` takes an exclusive ``flock`` that the
operating system releases when its process dies, so a lock left by a killed run is never
stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from swalab import __version__
from swalab.experiments.config import ConfigError

_LIST = pa.list_(pa.float64())

#: One row per (cell, seed, step, agent).
STEP_SCHEMA = pa.schema(
    [
        ("cell", pa.string()),
        ("seed", pa.int64()),
        ("step", pa.int64()),
        ("agent", pa.int64()),
        ("kind", pa.string()),
        ("prosocial", pa.bool_()),
        ("lam", pa.float64()),
        ("belief", pa.float64()),
        ("demand", pa.float64()),
        ("reward", pa.float64()),
        ("load", pa.float64()),
        ("welfare", pa.float64()),
        ("overloaded", pa.bool_()),
        ("candidates", _LIST),
        ("private", _LIST),
        ("group", _LIST),
        ("utility", _LIST),
        ("proposals", _LIST),
        ("proposal_error", pa.string()),
        ("fallback", pa.string()),
        ("argmax_demand", pa.float64()),
        ("llm_pick", pa.int64()),
        ("pick_error", pa.string()),
        ("pick_agrees", pa.bool_()),
        ("cached", pa.bool_()),
        ("tokens_in", pa.int64()),
        ("tokens_shared", pa.int64()),
        ("tokens_out", pa.int64()),
        ("latency_s", pa.float64()),
        ("text", pa.string()),
        ("judge", _LIST),
    ]
)

#: Swept and fixed parameters carried by every episode row.
PARAM_FIELDS: list[tuple[str, pa.DataType]] = [
    ("env", pa.string()),
    ("env_params", pa.string()),
    ("switch_point", pa.float64()),
    ("n_agents", pa.int64()),
    ("capacity", pa.float64()),
    ("beta", pa.float64()),
    ("x_max", pa.float64()),
    ("x_max_per_agent", _LIST),
    ("weights_per_agent", _LIST),
    ("values_per_agent", _LIST),
    ("steps", pa.int64()),
    ("horizon", pa.string()),
    ("population", pa.string()),
    ("heterogeneity", pa.string()),
    ("lam", pa.float64()),
    ("lam_per_agent", _LIST),
    ("scorer", pa.string()),
    ("candidates", pa.string()),
    ("k", pa.int64()),
    ("grid_step", pa.float64()),
    ("anchors", _LIST),
    ("margin", pa.float64()),
    ("gamma", pa.float64()),
    ("belief", pa.string()),
    ("alpha", pa.float64()),
    ("belief_window", pa.int64()),
    ("belief_private", pa.bool_()),
    ("belief_delay", pa.int64()),
    ("belief_noise", pa.float64()),
    ("initial_belief", pa.float64()),
    ("mode", pa.string()),
    ("selector", pa.string()),
    ("fallback", pa.string()),
    ("backend", pa.string()),
    ("model", pa.string()),
    ("temperature", pa.float64()),
]

#: Episode metrics (``docs/theory.md``, "Metrics") and LLM accounting.
METRIC_FIELDS: list[tuple[str, pa.DataType]] = [
    ("overload_rate", pa.float64()),
    ("mean_welfare", pa.float64()),
    ("mean_load", pa.float64()),
    ("utilisation", pa.float64()),
    ("fairness", pa.float64()),
    ("steps_to_stable", pa.float64()),
    ("completed", pa.float64()),
    ("rejected", pa.float64()),
    ("lockout_rate", pa.float64()),
    ("critical_loss", pa.float64()),
    ("survival_time", pa.float64()),
    ("total_harvest", pa.float64()),
    ("equality", pa.float64()),
    ("drift", pa.float64()),
    ("judge_agreement", pa.float64()),
    ("reward_gap", pa.float64()),
    ("prosocial_cut_share", pa.float64()),
    ("demand_per_agent", _LIST),
    ("reward_per_agent", _LIST),
    ("proposal_failure_rate", pa.float64()),
    ("fallback_rate", pa.float64()),
    ("pick_failure_rate", pa.float64()),
    ("pick_agreement", pa.float64()),
    ("prompts", pa.float64()),
    ("tokens_in", pa.float64()),
    ("tokens_shared", pa.float64()),
    ("tokens_out", pa.float64()),
    ("latency_s", pa.float64()),
    ("cached", pa.float64()),
]

#: One row per (cell, seed).
EPISODE_SCHEMA = pa.schema(
    [
        ("cell", pa.string()),
        ("seed", pa.int64()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("steps_played", pa.int64()),
        *PARAM_FIELDS,
        *METRIC_FIELDS,
    ]
)


def table(rows: Sequence[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows → a table of ``schema`` (missing keys are null; unknown keys are an error)."""
    names = set(schema.names)
    for row in rows[:1]:
        extra = set(row) - names
        if extra:
            raise KeyError(f"row has columns {sorted(extra)} not in the schema")
    return pa.Table.from_pylist([dict(r) for r in rows], schema=schema)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def git_commit() -> str | None:
    """The commit of the swalab source tree, if it is a git checkout (``+dirty`` if so)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        cmd = ["git", "-C", str(here), *args]
        return subprocess.run(
            cmd, check=True, capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    """What ran the cells (for the manifest)."""
    memory = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_bytes": memory,
    }


class StoreError(ValueError):
    """A store that is damaged, or cannot be written, described in one line."""


def _read_json(path: Path) -> Any:
    """A JSON file of the store, or a :class:`StoreError` naming it and what is wrong."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StoreError(
            f"{path}: damaged ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: cannot be read ({exc})") from None


class ResultStore:
    """An output directory of finished cells; only :meth:`write_cell` adds to it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.cells_dir = self.root / "cells"
        self.staging = self.root / ".staging"
        self.damaged = self.root / ".damaged"
        self.manifest_path = self.root / "manifest.json"
        self.failures_path = self.root / "failures.json"

    def manifest(self) -> dict[str, Any] | None:
        """The manifest, or ``None`` for a directory that holds no experiment yet.

        Raises:
            StoreError: The manifest is not valid JSON (the message names the file).
        """
        if not self.manifest_path.exists():
            return None
        data = _read_json(self.manifest_path)
        if not isinstance(data, dict):
            raise StoreError(f"{self.manifest_path}: damaged (not a JSON object)")
        return data

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the store's write lock for the block; refuse if another run holds it.

        Raises:
            StoreError: ``root`` cannot be written, or another live run writes here (the
                message says which process).
        """
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"--out {self.root}: is a file, not a directory")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / ".lock", "a+")  # noqa: SIM115 (held for the block)
        except OSError as exc:
            raise StoreError(f"--out {self.root}: cannot be written ({exc.strerror})") from None
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise StoreError(
                    f"--out {self.root}: another swalab run is writing here ({holder}); wait "
                    "for it to end or choose another directory"
                ) from None
            handle.seek(0)
            handle.truncate()
            started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {started}\n")
            handle.flush()
            yield
        finally:
            handle.close()  # releases the lock

    def failures(self) -> dict[str, dict[str, Any]]:
        """Cells that failed and have not finished since: key → ``{error, assignment, at}``."""
        if not self.failures_path.exists():
            return {}
        data = _read_json(self.failures_path)
        return data if isinstance(data, dict) else {}

    def record_failures(self, failed: dict[str, dict[str, Any]], finished: set[str]) -> None:
        """Add this run's failed cells and drop the ones that finished (atomically)."""
        known = {k: v for k, v in self.failures().items() if k not in finished}
        known |= failed
        if known or self.failures_path.exists():
            _write_json(self.failures_path, known)

    def kind(self) -> str:
        """The kind of study stored here (stores written before kinds existed: ``sweep``)."""
        return str((self.manifest() or {}).get("kind", "sweep"))

    def open(
        self, plan_hash: str, planned: list[str], experiment_yaml: str, kind: str = "sweep"
    ) -> None:
        """Create or reopen the directory for a plan; refuse one holding another plan.

        Raises:
            ConfigError: The directory holds results of a different experiment.
        """
        old = self.manifest()
        try:  # a store that cannot be written fails here, before any work
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe.{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"--out {self.root}: cannot be written ({exc.strerror})") from None
        if old is not None and old.get("plan") != plan_hash:
            raise ConfigError(
                f"--out {self.root}: holds another experiment (plan {old.get('plan')}, this "
                f"one is {plan_hash}); choose a new output directory"
            )
        if old is None and any(p.name != ".lock" for p in self.root.iterdir()):
            raise ConfigError(f"--out {self.root}: exists, is not empty and has no manifest")
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)  # leftovers of a killed run
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        manifest = old or {"created": now, "models": {}}
        manifest |= {
            "kind": kind,
            "plan": plan_hash,
            "planned_cells": planned,
            "swalab_version": __version__,
            "git_commit": git_commit(),
            "machine": machine(),
            "updated": now,
        }
        _write_json(self.manifest_path, manifest)
        if not (self.root / "experiment.yaml").exists():
            (self.root / "experiment.yaml").write_text(experiment_yaml)

    def record_model(self, key: str, identity: dict[str, Any]) -> None:
        """Add a loaded model's identity (backend, model, file hash) to the manifest."""
        manifest = self.manifest() or {}
        manifest.setdefault("models", {})[key] = identity
        _write_json(self.manifest_path, manifest)

    def finished(self) -> set[str]:
        """Keys of the cells already committed (a committed cell is always whole)."""
        if not self.cells_dir.exists():
            return set()
        return {p.name for p in self.cells_dir.iterdir() if (p / "cell.json").exists()}

    def table_files(self, name: str) -> list[Path]:
        """Every committed cell's ``<name>.parquet``, sorted by cell key, each checked.

        Raises:
            StoreError: A file does not read back as Parquet (the message names it).
        """
        files = sorted(self.cells_dir.glob(f"*/{name}.parquet"))
        for f in files:
            problem = _parquet_problem(f)
            if problem:
                raise StoreError(
                    f"{f}: damaged ({problem}); rerun the study to recompute its cell (the run "
                    "moves damaged cells aside, to .damaged/)"
                )
        return files

    def set_aside_damaged(self, keys: set[str]) -> dict[str, str]:
        """Move every committed cell among ``keys`` that does not read back to ``.damaged/``.

        Returns:
            Cell key → what was wrong, for the cells moved (they will be recomputed).
        """
        moved = {}
        for key in sorted(keys):
            cell = self.cells_dir / key
            problem = _cell_problem(cell)
            if problem is None:
                continue
            self.damaged.mkdir(parents=True, exist_ok=True)
            os.rename(cell, self.damaged / f"{key}.{time.strftime('%Y%m%d-%H%M%S')}")
            moved[key] = problem
        return moved

    def write_cell(self, key: str, cell: dict[str, Any], tables: dict[str, pa.Table]) -> None:
        """Write a cell's files in staging, then commit them with one rename."""
        target = self.cells_dir / key
        if target.exists():
            return  # committed earlier (a duplicate completion): never write twice
        work = self.staging / f"{key}.{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        (work / "cell.json").write_text(json.dumps(cell, indent=2, sort_keys=True))
        for name, data in tables.items():
            pq.write_table(data, work / f"{name}.parquet", compression="zstd")
        for f in work.iterdir():  # durable before the commit point
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        try:
            os.rename(work, target)
        except OSError:
            if not target.exists():
                raise
            shutil.rmtree(work)  # another run of this plan committed it first


def _parquet_problem(path: Path) -> str | None:
    """Why ``path`` does not read back as Parquet, or ``None``."""
    try:
        pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        return str(exc).splitlines()[0]
    return None


def _cell_problem(cell: Path) -> str | None:
    """Why a committed cell does not read back (its record or a table), or ``None``."""
    try:
        json.loads((cell / "cell.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"cell.json: {str(exc).splitlines()[0]}"
    for table in sorted(cell.glob("*.parquet")):
        problem = _parquet_problem(table)
        if problem:
            return f"{table.name}: {problem}"
    return None
