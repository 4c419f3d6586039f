"""Where tasks run: local processes or a Ray cluster, with the same task functions.

Both executors hand every finished task to one ``on_done`` callback in the driver, which
writes the store; workers never touch the output directory. A task's placement says where
it may run (:data:`~swalab.experiments.cells.Placement`): ``engine`` tasks go to workers;
``llm`` tasks need a loaded model — locally it is loaded once in the driver and reused by
every task that names it, on Ray one actor per model holds it and runs that model's tasks in
turn; ``driver`` tasks (live servers, benchmarks) run in the driver alone, one after
another. Every task is computed by :func:`~swalab.experiments.kinds.run_task`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, wait
from typing import Any

from swalab.experiments.cells import CellResult, Roster, Task
from swalab.experiments.config import ModelConfig
from swalab.experiments.kinds import run_task

OnDone = Callable[[Task, "list[CellResult] | BaseException"], None]
OnModel = Callable[[str, dict[str, Any]], None]
OnStep = Callable[[int], None]


def open_stack(config: ModelConfig) -> Any:
    """Load a model with its counter and (unless ``cache: false``) the response cache."""
    from swalab.llm.stack import open_model

    cache = config.cache
    return open_model(
        config.backend,
        config.name,
        cache=cache if isinstance(cache, str) else None,
        use_cache=cache is not False,
        attempts=config.attempts,
        **config.options,
    )


def _load(task: Task, stacks: dict[str, Any], on_model: OnModel) -> Any:
    """The model a task needs (a :class:`Roster` for a mixed-model one), loading what is new.

    ``stacks`` holds every model loaded so far, by its config's JSON: a model shared by
    several tasks (alone or in rosters) is loaded once.
    """
    models = []
    for config in task.cells[0].config.model_roster():
        key = json.dumps(config.model_dump(mode="json"), sort_keys=True)
        if key not in stacks:
            stacks[key] = open_stack(config)
            on_model(key, vars(stacks[key].model.identity))
        models.append(stacks[key].model)
    return models[0] if len(models) == 1 else Roster(tuple(models))


def _init_worker(threads: int) -> None:
    """Share the machine between worker processes instead of oversubscribing it.

    Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and the driver alone
    decides what happens (it terminates the workers), so no worker prints a traceback.
    """
    import signal

    import numba

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]


def _attempt(task: Task) -> list[CellResult] | BaseException:
    """Compute a task here; its exception is its result (one task failing fails its cells)."""
    try:
        return run_task(task)
    except Exception as exc:
        return exc


class LocalExecutor:
    """Model-based tasks on a process pool; LLM tasks in the driver with one model each."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._stopping = False

    def _reporter(self, task: Task, on_done: OnDone) -> Callable[[Future[list[CellResult]]], None]:
        def report(fut: Future[list[CellResult]]) -> None:
            # Cancelled (never ran) or cut short by stop(): neither finished nor failed.
            if fut.cancelled() or self._stopping:
                return
            on_done(task, fut.exception() or fut.result())

        return report

    def stop(self) -> None:
        """Cancel what has not started and end the workers now (an interrupted run)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        self._stopping = True
        processes = list(getattr(pool, "_processes", {}).values())  # no public handle
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        # A worker killed while sending its result leaves half a message in the result pipe,
        # and the pool's manager thread would wait for the rest forever. The workers' ends of
        # the pipe died with them; closing the driver's own (it never writes there) turns that
        # wait into end-of-file, which the pool handles as a broken pool and ends the thread.
        queue = getattr(pool, "_result_queue", None)
        if queue is not None:
            queue._writer.close()
        # Returns at once: joins the manager thread and releases the queues (a thread left
        # running would keep the process alive).
        pool.shutdown(wait=True, cancel_futures=True)

    def run(
        self, tasks: list[Task], on_done: OnDone, on_model: OnModel, on_step: OnStep | None = None
    ) -> None:
        """Run ``tasks``; each result (or exception) goes to ``on_done`` as it finishes."""
        self._stopping = False
        for task in (t for t in tasks if t.kind == "driver"):  # alone, before anything else
            on_done(task, _attempt(task))
        engine = [t for t in tasks if t.kind == "engine"]
        llm = [t for t in tasks if t.kind == "llm"]
        workers = min(self.workers, len(engine))
        pool: ProcessPoolExecutor | None = None
        futures: list[Future[list[CellResult]]] = []
        if workers > 1:
            threads = max(1, (os.cpu_count() or 1) // workers)
            pool = self._pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(threads,),
            )
            for task in engine:
                fut = pool.submit(run_task, task)
                fut.add_done_callback(self._reporter(task, on_done))
                futures.append(fut)
        try:
            stacks: dict[str, Any] = {}
            for task in llm:
                try:
                    model = _load(task, stacks, on_model)
                    result: list[CellResult] | BaseException = run_task(task, model, on_step)
                except Exception as exc:
                    result = exc
                on_done(task, result)
            if pool is None:
                for task in engine:
                    on_done(task, _attempt(task))
            else:
                wait(futures)
        except BaseException:
            self.stop()  # interrupted: do not wait for the workers' tasks
            raise
        if pool is not None:
            pool.shutdown(wait=True)
            self._pool = None


class _ModelWorker:
    """A Ray actor holding a task's models; runs the LLM tasks that need them in turn."""

    def __init__(self, task: Task) -> None:
        self.stacks: dict[str, Any] = {}
        self.loaded: dict[str, dict[str, Any]] = {}
        self.model = _load(task, self.stacks, self.loaded.__setitem__)

    def identity(self) -> dict[str, dict[str, Any]]:
        return self.loaded

    def run(self, task: Task) -> list[CellResult]:
        return run_task(task, self.model)


class RayExecutor:
    """Tasks as Ray tasks (model-based) and actors (one per model, for LLM cells).

    Connects to ``address`` (a running cluster) or starts a local instance sized to
    ``workers`` CPUs, and shuts down only an instance it started.
    """

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.address = address
        self.workers = workers

    def stop(self) -> None:
        """Nothing to end here: :meth:`run` shuts down the Ray instance it started."""

    def run(
        self, tasks: list[Task], on_done: OnDone, on_model: OnModel, on_step: OnStep | None = None
    ) -> None:
        """Run ``tasks`` on Ray; results reach ``on_done`` in the driver as they finish."""
        from swalab.llm.registry import MissingExtraError

        try:
            import ray
        except ImportError:
            raise MissingExtraError(
                "executor 'ray' needs ray: install the extra with pip install 'swalab[ray]'"
            ) from None
        started = not ray.is_initialized()
        if started:
            ray.init(
                address=self.address,
                num_cpus=None if self.address else self.workers,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        try:
            remote_engine = ray.remote(num_cpus=1)(run_task)
            actor_cls = ray.remote(num_cpus=1)(_ModelWorker)
            refs: dict[Any, Task] = {}
            actors: dict[str, Any] = {}
            for task in tasks:
                if task.kind == "driver":
                    on_done(task, _attempt(task))
                    continue
                if task.kind == "engine":
                    refs[remote_engine.remote(task)] = task
                    continue
                key = task.model_key
                assert key is not None
                if key not in actors:
                    try:  # a model that cannot load fails its tasks, not the sweep
                        actors[key] = actor_cls.remote(task)
                        for one, identity in ray.get(actors[key].identity.remote()).items():
                            on_model(one, identity)
                    except Exception as exc:
                        actors[key] = exc
                if isinstance(actors[key], Exception):
                    on_done(task, actors[key])
                    continue
                refs[actors[key].run.remote(task)] = task
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    task = refs.pop(ref)
                    try:
                        result: list[CellResult] | BaseException = ray.get(ref)
                    except Exception as exc:
                        result = exc
                    on_done(task, result)
        finally:
            if started:
                ray.shutdown()


def make_executor(kind: str, *, workers: int | None, address: str | None) -> Any:
    """``local`` or ``ray``."""
    if kind == "ray":
        return RayExecutor(address=address, workers=workers)
    return LocalExecutor(workers=workers)
