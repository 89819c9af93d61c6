"""The engine: a small executor interface and the default, a local pool of worker processes.

Components run in worker processes forked from a clean forkserver (with GDAL, PROJ and
pystac imported), so a crash or ``stop`` never touches the server. A worker that finished a
component well stays warm and takes the next one (up to ``MAX_USES``), which saves its start-up
on every execution (issue #15's overhead goal); one that crashed or was stopped is gone, and a
fresh one replaces it. A monitor thread per execution relays the worker's messages as events;
at most ``max_workers`` executions run at once, the rest queue. Part 2 adds a Dask executor on
the same interface.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
import shutil
import signal
import tempfile
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cairn.config import Settings

__all__ = [
    "ComponentJob",
    "Event",
    "Executor",
    "Job",
    "LocalExecutor",
    "MonitoredExecutor",
    "Running",
    "make_executor",
]

logger = logging.getLogger(__name__)


PRELOAD = [
    "cairn.processing._engine",
    "cairn.blobs",
    "cairn.processing._analysis",
    "cairn.processing.builtin",
    "pystac",
    "numpy",
    "rasterio",
    "rasterio.features",
]


MAX_USES = 100  # components one warm worker runs before it is replaced
# A warm worker left idle this long exits by itself, so an executor nobody shuts down (an app
# in a test) leaves no processes behind; the executor reuses only workers idle for less than
# half of it, so it never sends work to one that is just exiting.
IDLE_EXIT = 60.0


@dataclass(frozen=True)
class ComponentJob:
    component_id: str
    name: str
    function: str  # module:name
    options: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """What one execution needs: its chain, and its inputs as (file name, blob hash) lists."""

    execution_id: str
    components: Sequence[ComponentJob]
    inputs: Sequence[Sequence[tuple[str, str]]]
    blob_url: str
    scratch: Path


@dataclass(frozen=True)
class Event:
    """``kind``: started, log, progress, finished (``value`` = outputs and figures), failed
    (``value`` = reason) for a component; done for the execution (``value`` = reason or None)."""

    execution_id: str
    kind: str
    component_id: str | None = None
    value: Any = None


class Executor(ABC):
    """Runs jobs and reports what happens as events, in order, from any thread."""

    @abstractmethod
    def submit(self, job: Job, on_event: Callable[[Event], None]) -> None: ...

    @abstractmethod
    def cancel(self, execution_id: str) -> bool:
        """Abort a queued or running execution for real; False if it is not known here."""

    @abstractmethod
    def shutdown(self, timeout: float | None = None) -> None:
        """Abort everything for good; wait up to ``timeout`` seconds until every execution has
        sent its ``done`` event (None: do not wait)."""


def make_executor(settings: Settings) -> Executor:
    """The executor the settings choose: the local pool, or Dask when ``dask_scheduler`` is
    set. An unreachable scheduler is ``SchedulerUnreachable``, unless ``dask_fallback_local``
    says to run on the local pool instead."""
    if settings.executor != "dask":
        return LocalExecutor()
    from cairn.processing._dask import DaskExecutor, SchedulerUnreachable

    try:
        return DaskExecutor(settings.dask_scheduler)
    except SchedulerUnreachable as exc:
        if not settings.dask_fallback_local:
            raise
        logger.warning("%s Running on the local process pool instead.", exc.message)
        return LocalExecutor()


Outcome = tuple[dict[str, Any], None] | tuple[None, str]


def run_chain(
    job: Job,
    on_event: Callable[[Event], None],
    cancelled: threading.Event,
    run_component: Callable[[ComponentJob, list[list[tuple[str, str]]]], Outcome],
) -> str | None:
    """Run a job's components in order, each on the outputs of the one before, through
    ``run_component`` (an executor's way of running one), and send their events; answers why
    the chain failed, or None. After a failure or a stop the rest are marked not run."""
    reason: str | None = None
    previous: list[list[tuple[str, str]]] = []
    for component in job.components:
        if reason is None and cancelled.is_set():
            reason = "Stopped by a user."
        if reason is not None:
            on_event(
                Event(
                    job.execution_id,
                    "failed",
                    component.component_id,
                    "Not run: an earlier step stopped or failed.",
                )
            )
            continue
        on_event(Event(job.execution_id, "started", component.component_id))
        outputs, failure = run_component(component, previous)
        if failure is not None:
            reason = f"{component.name}: {failure}"
            on_event(Event(job.execution_id, "failed", component.component_id, failure))
            continue
        assert outputs is not None
        on_event(Event(job.execution_id, "finished", component.component_id, outputs))
        previous = [[(f["file_name"], f["sha256"]) for f in o["files"]] for o in outputs["outputs"]]
    return reason


@dataclass
class Running:
    """A submitted job as an executor tracks it: its monitor thread, and what runs it now (a
    worker process here, a Dask future and component there)."""

    job: Job
    on_event: Callable[[Event], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    process: multiprocessing.process.BaseProcess | None = None
    future: Any = None  # distributed.Future (distributed ships no type hints)
    component_id: str | None = None


class MonitoredExecutor(Executor):
    """An executor that follows each job on a monitor thread of its own (``_run``) and aborts
    what runs it with ``_abort``: submit, cancel and the end of shutdown are the same for the
    local pool and Dask."""

    def __init__(self) -> None:
        self._running: dict[str, Running] = {}
        self._lock = threading.Lock()
        self._closed = False

    @abstractmethod
    def _run(self, running: Running) -> None:
        """Run the job's chain, send its events and ``done``, then forget it."""

    @abstractmethod
    def _abort(self, running: Running) -> None:
        """Stop what runs the job now, for real."""

    def submit(self, job: Job, on_event: Callable[[Event], None]) -> None:
        running = Running(job, on_event)
        with self._lock:
            self._running[job.execution_id] = running
            if self._closed:  # nothing starts after shutdown; the job ends at once
                running.cancelled.set()
        running.thread = threading.Thread(
            target=self._run, args=(running,), name=f"execution-{job.execution_id}", daemon=True
        )
        running.thread.start()

    def cancel(self, execution_id: str) -> bool:
        with self._lock:
            running = self._running.get(execution_id)
        if running is None:
            return False
        running.cancelled.set()
        self._abort(running)
        return True

    def _close(self) -> list[Running]:
        """Refuse new jobs and abort the running ones; answers them."""
        with self._lock:
            self._closed = True
            running = list(self._running.values())
        for item in running:
            item.cancelled.set()
            self._abort(item)
        return running

    @staticmethod
    def _join(running: list[Running], timeout: float | None) -> None:
        """Wait for the monitors (each sends ``done`` as it ends), ``timeout`` in all."""
        if timeout is None:
            return
        deadline = time.monotonic() + timeout
        for item in running:
            if item.thread is not None:
                item.thread.join(max(0.0, deadline - time.monotonic()))


class LocalExecutor(MonitoredExecutor):
    """The default executor: worker processes on this machine, ``max_workers`` at a time."""

    def __init__(self, max_workers: int | None = None) -> None:
        self._context = multiprocessing.get_context("forkserver")
        # Workers fork from a server that has already imported what components use, so a
        # worker starts in milliseconds rather than re-importing GDAL, PROJ and pystac.
        self._context.set_forkserver_preload(PRELOAD)
        super().__init__()
        self._slots = threading.Semaphore(max_workers or max(1, (os.cpu_count() or 2)))
        self._idle: list[_Worker] = []
        atexit.register(self.shutdown)

    def _take_worker(self) -> _Worker:
        """A warm idle worker, else a new one."""
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                fresh = time.monotonic() - worker.idle_since < IDLE_EXIT / 2
                if fresh and worker.process.is_alive():
                    return worker
                worker.close()
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_worker_loop, args=(child,), name="cairn-worker")
        process.daemon = True
        process.start()
        child.close()
        return _Worker(process, parent)

    def _give_back(self, worker: _Worker) -> None:
        worker.uses += 1
        if worker.uses >= MAX_USES or not worker.process.is_alive():
            worker.close()
            return
        worker.idle_since = time.monotonic()
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.close()  # the executor shut down while the worker ran

    def _abort(self, running: Running) -> None:
        process = running.process
        if process is not None and process.is_alive():
            process.kill()

    def shutdown(self, timeout: float | None = None) -> None:
        running = self._close()
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()
        self._join(running, timeout)

    def _run(self, running: Running) -> None:
        job, on_event = running.job, running.on_event
        reason: str | None = None
        try:
            with self._slots:
                job.scratch.mkdir(parents=True, exist_ok=True)
                work = Path(tempfile.mkdtemp(prefix="execution-", dir=job.scratch))
                try:
                    reason = run_chain(
                        job,
                        on_event,
                        running.cancelled,
                        lambda component, previous: self._component(
                            running, component, work, previous
                        ),
                    )
                finally:
                    shutil.rmtree(work, ignore_errors=True)
        except Exception as exc:  # the monitor itself must never die silently
            reason = f"The engine failed: {type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._running.pop(job.execution_id, None)
            on_event(Event(job.execution_id, "done", None, reason))

    def _component(
        self,
        running: Running,
        component: ComponentJob,
        work: Path,
        previous: list[list[tuple[str, str]]],
    ) -> Outcome:
        """Run one component on a worker: (its result, None) or (None, why it failed)."""
        job = running.job
        inputs = [list(i) for i in job.inputs] + previous
        if running.cancelled.is_set():
            return None, "Stopped by a user."
        worker = self._take_worker()
        running.process = worker.process
        if running.cancelled.is_set():  # a stop that came while the worker started
            worker.close()
            return None, "Stopped by a user."
        result: dict[str, Any] | None = None
        failure: str | None = None
        answered = False
        try:
            worker.conn.send(
                (component.function, component.options, inputs, job.blob_url, str(work))
            )
            while True:
                kind, value = worker.conn.recv()
                if kind in ("log", "progress"):
                    running.on_event(Event(job.execution_id, kind, component.component_id, value))
                    continue
                if kind == "result":
                    result = value
                elif kind == "error":
                    failure = value
                answered = True
                break
        except (EOFError, OSError, BrokenPipeError):
            pass  # the worker died: killed by stop, or crashed
        finally:
            running.process = None
        if answered and not running.cancelled.is_set():
            self._give_back(worker)
        else:
            worker.process.join(timeout=10)
            code = worker.process.exitcode
            worker.close()
            if running.cancelled.is_set():
                return None, "Stopped by a user."
            how = (
                f"killed by signal {signal.Signals(-code).name}"
                if code is not None and code < 0
                else f"exit code {code}"
            )
            return None, f"The worker process crashed ({how})."
        if failure is not None:
            return None, failure
        assert result is not None
        return result, None


@dataclass
class _Worker:
    """A warm worker process and the parent's end of its pipe."""

    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    uses: int = 0
    idle_since: float = 0.0

    def close(self) -> None:
        """End the worker (killed if it still runs) and free its pipe."""
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=10)


# --- the worker process ------------------------------------------------------------------------


def _worker_loop(conn: multiprocessing.connection.Connection) -> None:
    """A warm worker: run the components the pipe sends, one at a time, until it closes."""
    from cairn.blobs import BlobStore, open_blob_store

    stores: dict[str, BlobStore] = {}
    while True:
        try:
            if not conn.poll(IDLE_EXIT):
                return  # idle too long: see IDLE_EXIT
            function, options, inputs, blob_url, work = conn.recv()
        except (EOFError, OSError):
            return
        if blob_url not in stores:
            stores[blob_url] = open_blob_store(blob_url)
        _run_component(conn, function, options, inputs, stores[blob_url], work)


class _Sender(Protocol):
    def send(self, obj: Any) -> None: ...


def _run_component(
    conn: _Sender,
    function: str,
    options: dict[str, Any],
    inputs: list[list[tuple[str, str]]],
    blobs: Any,
    work: str,
) -> None:
    """Run one component: fetch inputs from the blob store, call it, store and analyse outputs;
    the last message is ``result`` or ``error``."""
    from cairn.processing._analysis import analyse_file
    from cairn.processing._context import ComponentContext

    def send(kind: str, value: Any) -> None:
        conn.send((kind, value))

    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        root = Path(tempfile.mkdtemp(prefix="component-", dir=work))
        local: list[list[Path]] = []
        for number, files in enumerate(inputs, start=1):
            folder = root / "inputs" / str(number)
            folder.mkdir(parents=True)
            paths = []
            for file_name, sha256 in files:
                target = folder / Path(file_name).name
                with blobs.open(sha256) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
                paths.append(target)
            local.append(paths)
        out_dir = root / "outputs"
        out_dir.mkdir()
        module, _, name = function.partition(":")
        run: Callable[[ComponentContext], None] = getattr(import_module(module), name)
        ctx = ComponentContext(inputs=local, options=options, work_dir=out_dir, _send=send)
        run(ctx)
        outputs = []
        for output in ctx.outputs:
            stored = []
            for path in output.paths:
                try:
                    analysis: dict[str, Any] | None = analyse_file(
                        path,
                        output.file_type,
                        path.name,
                        store=lambda png: str(blobs.put_file(png).sha256),
                    )
                    error = None
                except Exception as exc:
                    analysis, error = None, str(exc)
                ref = blobs.put_file(path)
                stored.append(
                    {
                        "file_name": path.name,
                        "sha256": ref.sha256,
                        "size": ref.size,
                        "analysis": analysis,
                        "error": error,
                    }
                )
            outputs.append({"name": output.name, "file_type": output.file_type, "files": stored})
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage.ru_utime + usage.ru_stime) - (before.ru_utime + before.ru_stime)
        # Peak memory of the worker so far (a warm worker's peak may come from an earlier run).
        send("result", {"outputs": outputs, "cpu": cpu, "memory": usage.ru_maxrss * 1024})
    except Exception as exc:
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        send("error", detail[:2000])
