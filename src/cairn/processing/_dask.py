"""Scale-out on Dask (issue #16): the engine's ``Executor`` running components as Dask tasks.

Each component of an execution is one task on a Dask cluster (``distributed``), run in the
order of the chain by a monitor thread here, as the local pool does. A task fetches its inputs
from the blob store by URL and stores its outputs there, so workers need the same blob store
and the server the same database (PostgreSQL, and a folder both reach or an fsspec URL). What
a component logs and its progress travel as Dask events on one topic (``cairn-events``) to the
server, which records them. A worker that dies mid-task is Dask's to handle: the scheduler runs
the task again on another worker (``distributed.scheduler.allowed-failures`` times), then gives
up (``KilledWorker``) and the execution fails saying so; never stuck. ``stop`` cancels the
task and restarts the worker running it, so a running component stops for real.

A worker needs nothing of cairn's but the package: ``cairn worker tcp://host:8786`` starts one
(``dask worker`` with this module as its preload, which imports what components use first).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from importlib import import_module
from typing import Any

from cairn.errors import CairnError
from cairn.processing._engine import (
    PRELOAD,
    ComponentJob,
    Event,
    MonitoredExecutor,
    Outcome,
    Running,
    _run_component,
    run_chain,
)

__all__ = ["CONNECT_TIMEOUT", "DaskExecutor", "SchedulerUnreachable", "dask_setup"]

logger = logging.getLogger(__name__)

TOPIC = "cairn-events"
CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler at start
STOPPED = "Stopped by a user."


class SchedulerUnreachable(CairnError):
    """The Dask scheduler named in the settings cannot be reached."""

    code = "scheduler_unreachable"


class DaskExecutor(MonitoredExecutor):
    """Runs each component as a task on a Dask cluster; see the module's docstring."""

    def __init__(self, address: str, *, timeout: float | None = None) -> None:
        try:
            from distributed import Client as _Client
        except ImportError as exc:  # the optional extra is not installed
            raise SchedulerUnreachable(
                "The Dask executor needs the 'dask' extra: pip install 'cairn[dask]'."
            ) from exc
        try:
            client: Any = _Client  # untyped: distributed ships no type hints
            self.client: Any = client(
                address, timeout=timeout or CONNECT_TIMEOUT, set_as_default=False
            )
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachable(
                f"The Dask scheduler at {address} cannot be reached ({type(exc).__name__}: "
                f"{exc}). Start it (dask scheduler), or unset CAIRN_DASK_SCHEDULER, or set "
                "CAIRN_DASK_FALLBACK_LOCAL=true to run on the local pool instead."
            ) from exc
        super().__init__()
        self.address = address
        self.client.subscribe_topic(TOPIC, self._relay)

    # --- the Executor interface -----------------------------------------------------------------

    def shutdown(self, timeout: float | None = None) -> None:
        self._join(self._close(), timeout)
        try:
            self.client.close(timeout=5)
        except Exception:  # the scheduler may be gone already
            logger.debug("closing the Dask client failed", exc_info=True)

    # --- the monitor --------------------------------------------------------------------------

    def _abort(self, running: Running) -> None:
        """Cancel the running task, and restart the worker that runs it: a Dask task cannot
        be interrupted otherwise, and ``stop`` must stop a component for real."""
        future = running.future
        if future is None or future.done():
            return
        try:
            processing = self.client.processing()
            workers = [w for w, keys in processing.items() if future.key in keys]
            future.cancel()
            if workers:
                self.client.restart_workers(workers, raise_for_error=False)
        except Exception:
            logger.warning("aborting the Dask task of %s failed", running.job.execution_id)

    def _relay(self, event: tuple[float, Any]) -> None:
        """A component's log line or progress, from a worker (on the client's event loop)."""
        _, message = event
        try:
            execution_id, component_id, kind, value = message
        except (TypeError, ValueError):
            return
        with self._lock:
            running = self._running.get(execution_id)
        if running is not None and running.component_id == component_id:
            running.on_event(Event(execution_id, kind, component_id, value))

    def _run(self, running: Running) -> None:
        job, on_event = running.job, running.on_event
        reason: str | None = None
        try:
            reason = run_chain(
                job,
                on_event,
                running.cancelled,
                lambda component, previous: self._component(running, component, previous),
            )
        except Exception as exc:  # the monitor itself must never die silently
            reason = f"The engine failed: {type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._running.pop(job.execution_id, None)
            on_event(Event(job.execution_id, "done", None, reason))

    def _component(
        self, running: Running, component: ComponentJob, previous: list[list[tuple[str, str]]]
    ) -> Outcome:
        """Run one component as a Dask task: (its result, None) or (None, why it failed)."""
        from distributed import CancelledError, KilledWorker

        job = running.job
        inputs = [list(i) for i in job.inputs] + previous
        running.component_id = component.component_id
        future = self.client.submit(
            run_task,
            job.execution_id,
            component.component_id,
            component.function,
            component.options,
            inputs,
            job.blob_url,
            key=f"cairn-{component.component_id}",
            pure=False,
            retries=0,
        )
        running.future = future
        if running.cancelled.is_set():  # a stop that came while the task was submitted
            self._abort(running)
            return None, STOPPED
        try:
            kind, value = future.result()
        except KilledWorker as exc:
            return None, f"The Dask worker running it died ({exc})."
        except (CancelledError, Exception) as exc:
            if running.cancelled.is_set():
                return None, STOPPED
            return None, f"The Dask cluster failed to run it ({type(exc).__name__}: {exc})."
        finally:
            running.future = None
        if running.cancelled.is_set():
            return None, STOPPED
        if kind == "error":
            return None, str(value)
        result: dict[str, Any] = value
        return result, None


# --- on the worker ---------------------------------------------------------------------------


class _Relay:
    """What ``_run_component`` sends on: log and progress as Dask events, the end kept."""

    def __init__(self, execution_id: str, component_id: str) -> None:
        from distributed import get_worker

        self.worker = get_worker()
        self.ids = (execution_id, component_id)
        self.answer: tuple[str, Any] = ("error", "The component sent no result.")

    def send(self, message: tuple[str, Any]) -> None:
        kind, value = message
        if kind in ("log", "progress"):
            self.worker.log_event(TOPIC, (*self.ids, kind, value))
        else:
            self.answer = (kind, value)


_stores: dict[str, Any] = {}


def run_task(
    execution_id: str,
    component_id: str,
    function: str,
    options: dict[str, Any],
    inputs: list[list[tuple[str, str]]],
    blob_url: str,
) -> tuple[str, Any]:
    """The Dask task: run one component in a scratch folder of the worker's; answers
    ``("result", outputs and figures)`` or ``("error", why)``."""
    from cairn.blobs import open_blob_store

    if blob_url not in _stores:
        _stores[blob_url] = open_blob_store(blob_url)
    relay = _Relay(execution_id, component_id)
    work = tempfile.mkdtemp(prefix="cairn-execution-")
    try:
        _run_component(relay, function, options, inputs, _stores[blob_url], work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return relay.answer


def dask_setup(worker: Any) -> None:
    """Dask's preload hook (``dask worker --preload cairn.processing._dask``): import what
    components use before the first task, as the local pool's forkserver does."""
    for module in PRELOAD:
        try:
            import_module(module)
        except ImportError:  # pragma: no cover - a worker without GDAL still runs the rest
            logger.warning("preloading %s failed on worker %s", module, worker.address)
