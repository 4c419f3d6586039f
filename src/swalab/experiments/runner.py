"""Run a study of any kind: plan the cells, skip the finished ones, execute the rest, store.

Rerunning the same study over the same output directory resumes it: finished cells are
committed directories (see :mod:`~swalab.experiments.store`), so a study killed at any
moment — even with SIGKILL — ends, after a rerun, with exactly its planned cells. Before it
resumes, a run checks the cells it would skip and sets aside (never deletes) the ones that
do not read back, which it then recomputes.

A cell is finished only when every one of its episodes is: a task that raised, an episode
that failed (a dead endpoint) or a cell that could not be written (a full disk) fails its
cells, which are not stored, are listed in ``failures.json`` and the summary, and are
retried by the next run. One run writes a store at a time (its lock); SIGINT and SIGTERM
stop a run within seconds — workers included — and raise :class:`RunInterrupted`, which
says what finished.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from swalab.experiments.cells import Cell, CellResult, Task, digest, plan_hash
from swalab.experiments.config import StudyConfig
from swalab.experiments.executors import make_executor
from swalab.experiments.kinds import get_kind
from swalab.experiments.kinds import plan as plan_study
from swalab.experiments.limits import Work
from swalab.experiments.store import ResultStore


@dataclass
class RunSummary:
    """What one run did.

    Attributes:
        out: The output directory.
        planned: Cells in the plan.
        skipped: Cells already finished before this run.
        ran: Cells finished by this run.
        failed: ``(cell key, error)`` of cells that did not finish (not stored; a rerun
            retries them).
        repaired: ``(cell key, problem)`` of finished cells that did not read back: set
            aside to ``.damaged/`` and recomputed.
        seconds: Wall time of this run.
    """

    out: Path
    planned: int
    skipped: int
    ran: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    repaired: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def finished(self) -> int:
        """Cells of the plan that are finished now."""
        return self.skipped + self.ran


class RunInterrupted(Exception):  # noqa: N818 (it is what happened, not an error)
    """A run stopped by SIGINT or SIGTERM; everything committed before it stays.

    Attributes:
        summary: What the run had done.
        signum: The signal.
    """

    def __init__(self, summary: RunSummary, signum: int) -> None:
        self.summary = summary
        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted ({name}): {summary.finished} of {summary.planned} cells finished "
            f"in {summary.out}; rerun the same command to resume"
        )

    @property
    def exit_code(self) -> int:
        """128 + the signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


class _Signal(BaseException):
    """Raised in the main thread by the run's signal handler.

    A ``BaseException`` like ``KeyboardInterrupt``, so no task's ``except Exception`` takes
    it for a failure of that task.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`_Signal` in the main thread for the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Signal(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def default_out(config: StudyConfig) -> Path:
    """``results/<name>/<plan hash>``: the same study resumes, a different one never collides.

    Commands that build a study from their flags write here unless told otherwise.
    """
    cells = plan_study(config, config.name)
    return Path("results") / config.name / plan_hash(cells)[:8]


class _RunLog(logging.FileHandler):
    """``run.log``: a record that cannot be written (a full disk) is dropped, not printed."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        """Drop the record: the run reports the failure itself."""

    def flush(self) -> None:
        """Flush what can be written."""
        with contextlib.suppress(OSError):
            super().flush()

    def close(self) -> None:
        """Close the file, whatever the disk says."""
        with contextlib.suppress(OSError):
            super().close()


def _logger(out: Path) -> logging.Logger:
    log = logging.getLogger(f"swalab.run.{out.resolve()}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    handler = _RunLog(out / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return log


def _si(x: float) -> str:
    """A rate in three digits with an SI prefix (12.3k, 4.56M): progress, not a report."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _episode_failures(result: CellResult) -> str | None:
    """Why a computed cell is not finished: its failed episodes, or ``None``."""
    episodes = result.tables.get("episodes")
    if episodes is None or "status" not in episodes.column_names:
        return None
    rows = [
        (s, e)
        for s, e in zip(
            episodes.column("status").to_pylist(),
            episodes.column("error").to_pylist(),
            strict=True,
        )
        if s != "ok"
    ]
    if not rows:
        return None
    return f"{len(rows)} of {episodes.num_rows} episodes failed: {rows[0][1]}"


class _Recorder:
    """Commits finished cells, records failed ones, keeps the progress bars and the log."""

    def __init__(
        self,
        store: ResultStore,
        summary: RunSummary,
        log: logging.Logger,
        progress: Progress,
        todo: list[Cell],
        llm_steps: int,
        sizes: dict[str, Work],
    ) -> None:
        self.store, self.summary, self.log, self.progress = store, summary, log, progress
        self.cells = progress.add_task("cells", total=len(todo), rate="")
        self.sizes = sizes
        self.episodes = 0
        self.decisions = 0.0
        self.steps = progress.add_task("LLM steps", total=llm_steps, rate="", visible=llm_steps > 0)
        self.lock = threading.Lock()
        self.tokens_out = 0.0
        self.since = time.perf_counter()
        self.failed: dict[str, dict[str, Any]] = {}
        self.committed: set[str] = set()

    def fail(self, cell: Cell, error: str) -> None:
        self.summary.failed.append((cell.key, error))
        self.failed[cell.key] = {
            "error": error,
            "assignment": cell.assignment,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.log.error("cell %s (%s) failed: %s", cell.key, cell.assignment, error)
        self.progress.advance(self.cells)

    def done(self, task: Task, result: list[CellResult] | BaseException) -> None:
        """One task's outcome (called from worker threads: never raises)."""
        with self.lock:
            if isinstance(result, BaseException):
                text = "".join(traceback.format_exception_only(type(result), result)).strip()
                self.log.error(
                    "task of %d cell(s) raised:\n%s",
                    len(task.cells),
                    "".join(traceback.format_exception(result)),
                )
                for cell in task.cells:
                    self.fail(cell, text)
                return
            for res in result:
                self._commit(res)

    def _commit(self, res: CellResult) -> None:
        cell = res.cell
        why = _episode_failures(res)
        if why is not None:
            self.fail(cell, why)
            return
        record = {
            "key": cell.key,
            "assignment": cell.assignment,
            "config": cell.config.model_dump(mode="json"),
            "seconds": res.seconds,
        }
        try:
            self.store.write_cell(cell.key, record, res.tables)
        except OSError as exc:  # a full disk, a store made read-only mid-run
            self.fail(cell, f"cannot be written: {exc.strerror or exc}")
            return
        self.summary.ran += 1
        self.committed.add(cell.key)
        size = self.sizes.get(cell.key)
        if size is not None:
            self.episodes += size.episodes
            self.decisions += size.decisions
            rate = self.decisions / (time.perf_counter() - self.since)
            self.progress.update(
                self.cells, rate=f"{self.episodes:,} episodes, {_si(rate)} decisions/s"
            )
        steps = res.tables.get("steps")
        if steps is not None:
            self.tokens_out += sum(x or 0 for x in steps.column("tokens_out").to_pylist())
            rate = self.tokens_out / (time.perf_counter() - self.since)
            self.progress.update(self.steps, rate=f"{rate:.0f} tok/s" if rate else "")
        rows = ", ".join(f"{n}: {t.num_rows} rows" for n, t in res.tables.items())
        self.log.info("cell %s done (%s; %s; %.2f s)", cell.key, cell.assignment, rows, res.seconds)
        self.progress.advance(self.cells)

    def step(self, done: int) -> None:
        """An LLM step of a task finished."""
        self.progress.advance(self.steps)
        self.log.info("LLM step %d done", done)


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
        show_progress: Draw progress bars (cells; steps and tokens/s of LLM cells) when the
            console is a terminal.
        console: Where progress goes (default stderr).

    Raises:
        ConfigError: A grid value or combination the library refuses, or an output
            directory that holds another experiment; nothing has been written then.
        StoreError: The directory cannot be written, or another run is writing it.
        RunInterrupted: SIGINT or SIGTERM stopped the run (what finished is stored).
    """
    start = time.perf_counter()
    kind = get_kind(config.kind)
    cells = plan_study(config, source)
    root = Path(out or config.out or f"results/{config.name}")
    store = ResultStore(root)
    as_yaml = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    with store.writing():
        store.open(plan_hash(cells), [c.key for c in cells], as_yaml, kind=kind.name)
        log = _logger(root)
        planned = {c.key for c in cells}
        done = store.finished() & planned
        repaired = store.set_aside_damaged(done)
        todo = [c for c in cells if c.key not in done or c.key in repaired]
        summary = RunSummary(
            out=root,
            planned=len(cells),
            skipped=len(cells) - len(todo),
            repaired=sorted(repaired.items()),
        )
        for key, problem in summary.repaired:
            log.warning("cell %s did not read back (%s): set aside, recomputing", key, problem)
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
        console = console or Console(stderr=True)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not (show_progress and console.is_terminal),
        )
        sizes = {c.key: kind.work(c.config) for c in todo}
        recorder = _Recorder(store, summary, log, progress, todo, llm_steps, sizes)
        executor = make_executor(ex.kind, workers=ex.workers, address=ex.address)
        on_model = _model_recorder(store, log)
        try:
            with _interruptible(), progress:
                executor.run(tasks, recorder.done, on_model, recorder.step)
        except _Signal as stop:
            executor.stop()
            summary.seconds = time.perf_counter() - start
            _keep_failures(store, recorder, log)
            log.warning(
                "run interrupted by %s after %d cells",
                signal.Signals(stop.signum).name,
                summary.ran,
            )
            _close(log)
            raise RunInterrupted(summary, stop.signum) from None
        except BaseException:
            _close(log)
            raise
        _keep_failures(store, recorder, log)
        summary.seconds = time.perf_counter() - start
        log.info(
            "run ended: %d ran, %d failed, %.1f s, %d episodes, %s decisions/s",
            summary.ran,
            len(summary.failed),
            summary.seconds,
            recorder.episodes,
            _si(recorder.decisions / max(summary.seconds, 1e-9)),
        )
        _close(log)
    return summary


def _close(log: logging.Logger) -> None:
    """Close ``run.log`` (an open file would keep the store's file system busy)."""
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def _keep_failures(store: ResultStore, recorder: _Recorder, log: logging.Logger) -> None:
    """Record this run's failed cells in the store (best effort: the disk may be full)."""
    try:
        store.record_failures(recorder.failed, recorder.committed)
    except OSError as exc:
        log.error("cannot record the failed cells: %s", exc)


def _model_recorder(store: ResultStore, log: logging.Logger) -> Any:
    def on_model(key: str, identity: dict[str, Any]) -> None:
        config = json.loads(key)
        store.record_model(digest(config), {**identity, "config": config})
        log.info("model loaded: %s", identity)

    return on_model
