"""Run a study of any kind: plan the cells, skip the finished ones, execute the rest, store.

Rerunning the same study over the same output directory resumes it: finished cells are
committed directories (see :mod:`~swalab.experiments.store`), so a study killed at any
moment — even with SIGKILL — ends, after a rerun, with exactly its planned cells.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from swalab.experiments.cells import CellResult, Task, digest, plan_hash
from swalab.experiments.config import StudyConfig
from swalab.experiments.executors import make_executor
from swalab.experiments.kinds import get_kind
from swalab.experiments.store import ResultStore


@dataclass
class RunSummary:
    """What one run did.

    Attributes:
        out: The output directory.
        planned: Cells in the plan.
        skipped: Cells already finished before this run.
        ran: Cells finished by this run.
        failed: ``(cell key, error)`` of cells whose task raised (not stored; a rerun
            retries them).
        seconds: Wall time of this run.
    """

    out: Path
    planned: int
    skipped: int
    ran: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def default_out(config: StudyConfig) -> Path:
    """``results/<name>/<plan hash>``: the same study resumes, a different one never collides.

    Commands that build a study from their flags write here unless told otherwise.
    """
    cells = get_kind(config.kind).plan(config, config.name)
    return Path("results") / config.name / plan_hash(cells)[:8]


def _logger(out: Path) -> logging.Logger:
    log = logging.getLogger(f"swalab.run.{out.resolve()}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    handler = logging.FileHandler(out / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return log


def run_experiment(
    config: StudyConfig,
    *,
    out: str | Path | None = None,
    source: str = "config",
    show_progress: bool = False,
    console: Console | None = None,
) -> RunSummary:
    """Run every unfinished cell of ``config`` (any kind) and store it in ``out``.

    Args:
        config: The validated study.
        out: Output directory (default: ``config.out``, else ``results/<name>``).
        source: Where the config came from, for error messages.
        show_progress: Draw progress bars (cells; steps and tokens/s of LLM cells).
        console: Where progress goes (default stderr).

    Raises:
        ConfigError: A grid value or combination the library refuses, or an output
            directory that holds another experiment; nothing has been written then.
    """
    start = time.perf_counter()
    kind = get_kind(config.kind)
    cells = kind.plan(config, source)
    root = Path(out or config.out or f"results/{config.name}")
    store = ResultStore(root)
    as_yaml = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    store.open(plan_hash(cells), [c.key for c in cells], as_yaml, kind=kind.name)
    log = _logger(root)
    done = store.finished()
    todo = [c for c in cells if c.key not in done]
    summary = RunSummary(out=root, planned=len(cells), skipped=len(cells) - len(todo))
    ex = config.executor
    log.info(
        "plan %s: %d cells, %d finished before, %d to run on %s",
        plan_hash(cells),
        len(cells),
        summary.skipped,
        len(todo),
        ex.kind,
    )
    tasks = kind.tasks(todo, ex)
    llm_steps = sum(t.cells[0].config.game.steps for t in tasks if t.kind == "llm")
    lock = threading.Lock()
    console = console or Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not (show_progress and console.is_terminal),
    )
    cells_bar = progress.add_task("cells", total=len(todo), rate="")
    steps_bar = progress.add_task("LLM steps", total=llm_steps, rate="", visible=llm_steps > 0)
    tokens = {"out": 0.0, "since": time.perf_counter()}

    def on_model(key: str, identity: dict[str, Any]) -> None:
        config = json.loads(key)
        store.record_model(digest(config), {**identity, "config": config})
        log.info("model loaded: %s", identity)

    def on_done(task: Task, result: list[CellResult] | BaseException) -> None:
        with lock:
            if isinstance(result, BaseException):
                text = "".join(traceback.format_exception_only(type(result), result)).strip()
                log.error(
                    "task of %d cell(s) failed: %s\n%s",
                    len(task.cells),
                    text,
                    "".join(traceback.format_exception(result)),
                )
                summary.failed += [(c.key, text) for c in task.cells]
                progress.advance(cells_bar, len(task.cells))
                return
            for res in result:
                cell = res.cell
                record = {
                    "key": cell.key,
                    "assignment": cell.assignment,
                    "config": cell.config.model_dump(mode="json"),
                    "seconds": res.seconds,
                }
                store.write_cell(cell.key, record, res.tables)
                summary.ran += 1
                steps = res.tables.get("steps")
                if steps is not None:
                    tokens["out"] += sum(x or 0 for x in steps.column("tokens_out").to_pylist())
                rows = ", ".join(f"{n}: {t.num_rows} rows" for n, t in res.tables.items())
                log.info(
                    "cell %s done (%s; %s; %.2f s)", cell.key, cell.assignment, rows, res.seconds
                )
                progress.advance(cells_bar)
            if tokens["out"]:
                rate = tokens["out"] / (time.perf_counter() - tokens["since"])
                progress.update(steps_bar, rate=f"{rate:.0f} tok/s")

    def on_step(_: int) -> None:
        progress.advance(steps_bar)

    executor = make_executor(ex.kind, workers=ex.workers, address=ex.address)
    with progress:
        executor.run(tasks, on_done, on_model, on_step)
    summary.seconds = time.perf_counter() - start
    log.info(
        "run ended: %d ran, %d failed, %.1f s", summary.ran, len(summary.failed), summary.seconds
    )
    return summary
