"""The running side of processing: the engine, background analysis and signed transfers.

One ``Runtime`` per server. Its workflows take short transactions of their own (a
``UnitOfWork``): execute commits the charge and the execution before the engine starts it;
engine events are stamped when they happen and queued to one recorder thread, which writes
each execution's waiting events in one transaction (and, if that fails, each event alone), so
the engine's threads never wait on the database; analysis reads the blob with no transaction
open, then re-reads the file row before it writes the result.
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cairn.accounts.service import Actor, Privilege
from cairn.blobs import BlobStore
from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.db.base import utcnow
from cairn.errors import CairnError, Conflict, Forbidden, NotFound
from cairn.processing import groups, service
from cairn.processing._dispatch import dispatch_execution
from cairn.processing._engine import ComponentJob, Event, Executor, Job, make_executor
from cairn.processing._notices import notify_ended, wait_for_notices
from cairn.processing._registry import get_service
from cairn.processing._signing import SignedUrl, Signer
from cairn.processing.models import (
    Component,
    ComponentLog,
    DataFile,
    DataItem,
    Execution,
    Process,
)
from cairn.processing.ssd import parse_option

__all__ = ["DOWNLOAD_LIFETIME", "SERVER_STOPPED", "Runtime"]

DOWNLOAD_LIFETIME = service.UPLOAD_LIFETIME
SERVER_STOPPED = "The server stopped while it ran."
SHUTDOWN_WAIT = 15.0  # seconds shutdown waits, in all, for the engine's and its own threads
RECORD_BATCH = 500  # events the recorder takes from its queue at most per round

logger = logging.getLogger(__name__)


_CREATING = threading.Lock()


@dataclass(frozen=True)
class Download:
    """The bytes a download serves."""

    sha256: str
    size: int | None
    file_name: str
    modified: datetime
    media_type: str = "application/octet-stream"


@dataclass
class _Progress:
    components: int
    done: int = 0
    dispatch: bool = False  # the process has dispatchers to run when the chain succeeds


@dataclass(frozen=True)
class _Ending:
    """What an execution's recorded end sets going once committed."""

    follow: tuple[Job, bool] | None  # a group's aggregator to start, and whether it dispatches
    summary: groups.GroupSummary | None  # the completion notice is due


class Runtime:
    """Executes processes on an ``Executor`` and records what happens."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        blobs: BlobStore,
        settings: Settings,
        executor: Executor | None = None,
    ) -> None:
        self.uow = uow
        self.blobs = blobs
        self.settings = settings
        self.executor = executor or make_executor(settings)
        self.signer = Signer(settings.data_dir)
        self._analysis = ThreadPoolExecutor(max_workers=2, thread_name_prefix="analysis")
        self._progress: dict[str, _Progress] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._closing = False
        self._events: queue.SimpleQueue[tuple[datetime, Event] | None] = queue.SimpleQueue()
        self._recover()
        self._recorder = threading.Thread(
            target=self._record_loop, name="processing-recorder", daemon=True
        )
        self._recorder.start()

    def _recover(self) -> None:
        """Executions a previous server left running can never finish: mark them failed, so
        nothing waits forever."""
        with self.uow.transaction() as session:
            now = utcnow()
            for execution in session.scalars(
                select(Execution).where(Execution.ended_at.is_(None)).with_for_update()
            ):
                execution.ended_at, execution.progress = now, 100
                execution.success, execution.abort = False, True
                execution.abort_reason = "The server restarted while it ran."
                service.refund_unrun(session, execution)
                process = session.get(Process, execution.process_id)
                if process is not None and process.next_due_at is None:  # not still scheduled
                    process.process_status = "stop"

    @classmethod
    def for_app(cls, state: Any) -> Runtime:
        """The runtime of a server (its ``app.state``), started on first use."""
        with _CREATING:
            runtime: Runtime | None = getattr(state, "processing_runtime", None)
            if runtime is None:
                runtime = cls(
                    uow=UnitOfWork(state.sessionmaker), blobs=state.blobs, settings=state.settings
                )
                state.processing_runtime = runtime
            return runtime

    # --- uploads and downloads ---------------------------------------------------------------

    def sign(self, action: str, file_id: str, blob: str | None = None) -> SignedUrl:
        """A signed URL for ``action`` on a file; a download's also names the file's blob."""
        signed_action = f"{action}:{blob}" if blob else action
        return self.signer.sign(signed_action, file_id, service.UPLOAD_LIFETIME)

    def _spend(
        self, session: Any, action: str, file_id: str, signed: Mapping[str, Any] | None
    ) -> None:
        if signed is not None:
            given = dict(signed)
            if given.pop("blob", None) is not None:  # only download URLs name a blob
                raise Forbidden("This signed URL is not valid.")
            self.signer.check(session, action=action, file_id=file_id, **given)

    def begin_upload(
        self,
        file_id: str,
        *,
        signed: Mapping[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> None:
        """Accept the upload of a file: its signed URL is spent (or the actor, if no URL,
        must hold ``execute``) before a byte of the body is read."""
        with self.uow.transaction() as session:
            file = session.get(DataFile, file_id)
            if actor is not None:
                if file is None:
                    raise NotFound("File not found.")
                actor.require(file.organisation_id, Privilege.execute)
            self._spend(session, "upload", file_id, signed)
            if file is None:
                raise Forbidden("This signed URL is not valid.")
            if file.state != "pending":
                raise Forbidden("This file has been uploaded already.")
            file.state = "uploading"

    def finish_upload(self, file_id: str, body: Path) -> None:
        """Store the received body as the file's blob, then analyse it in the background."""
        ref = self.blobs.put_file(body)
        with self.uow.transaction() as session:
            file = session.get(DataFile, file_id, with_for_update=True)
            if file is None:  # its data item was deleted meanwhile
                raise NotFound("This file no longer exists.")
            file.sha256, file.size, file.state = ref.sha256, ref.size, "analysing"
        self._analysis.submit(self._analyse, file_id)

    def abort_upload(self, file_id: str, reason: str) -> None:
        """A body cut off half-way: nothing stored, the file is left ``incomplete``."""
        with self.uow.transaction() as session:
            file = session.get(DataFile, file_id, with_for_update=True)
            if file is not None and file.state == "uploading":
                file.state = "incomplete"
                file.error = reason

    def _analyse(self, file_id: str) -> None:
        with self.uow.transaction() as session:
            file = session.get(DataFile, file_id)
            if file is None or file.sha256 is None:
                return
            sha256, file_type, file_name = file.sha256, file.file_type, file.file_name
        from cairn.processing._analysis import analyse_file  # GDAL and PROJ: only when needed

        folder = Path(tempfile.mkdtemp(prefix="analysis-", dir=self._scratch()))
        analysis: dict[str, Any] | None = None
        error: str | None = None
        try:
            local = folder / Path(file_name).name
            with self.blobs.open(sha256) as source, local.open("wb") as out:
                shutil.copyfileobj(source, out)
            analysis = analyse_file(
                local, file_type, file_name, store=lambda png: self.blobs.put_file(png).sha256
            )
        except CairnError as exc:
            error = exc.message
        except Exception as exc:  # a library crashing on odd input is still an analysis error
            error = f"Analysis failed: {type(exc).__name__}: {exc}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        with self.uow.transaction() as session:
            file = session.get(DataFile, file_id, with_for_update=True)
            if file is None:
                return
            file.analysis = analysis
            file.error = error
            file.state = "failed" if error else "analysed"

    def check_download(
        self,
        file_id: str,
        *,
        signed: Mapping[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> Download:
        """What a download serves: a signed URL is spent and serves its blob for its hour even
        if the file was deleted meanwhile (the SDK downloads in background threads while a
        script goes on to delete the process, as the Quick Example does); without a URL the
        actor must be a member of the file's organisation (another's file is not found)."""
        with self.uow.transaction() as session:
            file = session.get(DataFile, file_id)
            if actor is not None:
                if file is None:
                    raise NotFound("File not found.")
                actor.require(file.organisation_id, Privilege.view)
            if signed is not None:
                given = dict(signed)
                blob = given.pop("blob", None)
                action = f"download:{blob}" if blob else "download"
                self.signer.check(session, action=action, file_id=file_id, **given)
                if blob and file is not None and blob == service.preview_of(file):
                    name = f"{file.file_name}.png"
                    return Download(blob, None, name, file.updated_at, "image/png")
                if blob and (file is None or file.sha256 == blob):
                    name = file.file_name if file is not None else file_id
                    return Download(blob, file.size if file else None, name, utcnow())
            if file is None or file.sha256 is None:
                raise Forbidden("This signed URL is not valid.")
            return Download(file.sha256, file.size, file.file_name, file.updated_at)

    def _scratch(self) -> Path:
        folder = self.settings.work_dir / "processing"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # --- executions ----------------------------------------------------------------------------

    def execute(
        self,
        actor: Actor,
        organisation_id: str,
        process_id: str,
        *,
        charge: service.Charge | None = None,
    ) -> str:
        """Charge, record and start an execution of the process (a group of them when its
        region is larger than the service takes, see ``cairn.processing.groups``); answers
        the (first) execution's id once it is queued. ``charge`` replaces
        ``service.charge_process`` (the scheduler's claims a due run in the same
        transaction)."""
        region = groups.split_process_region(
            self.uow.read, self.blobs, actor, organisation_id, process_id
        )
        with self.uow.transaction() as session:
            if region is None:
                process, execution, components = service.prepare_execution(
                    session, actor, organisation_id, process_id, charge=charge
                )
                members = [(execution, components)]
            else:
                process, members = groups.prepare_group(
                    session, actor, organisation_id, process_id, region=region, charge=charge
                )
            dispatch = bool(process.dispatchers)
            jobs = [self._job(session, e, c) for e, c in members if not e.waiting]
        for job in jobs:
            self._start(job, dispatch=dispatch)
        return members[0][0].id

    def _job(
        self,
        session: Any,
        execution: Execution,
        components: list[Component],
        extra_inputs: Sequence[Sequence[tuple[str, str]]] = (),
    ) -> Job:
        """What the engine needs to run ``components`` of ``execution``."""
        svc = get_service(execution.service_id)
        specs = {spec.name: spec for spec in svc.components}
        options = {
            spec.name: parse_option(spec, execution.options.get(spec.name, spec.default))
            for spec in svc.options
        }
        if svc.context is not None:  # server-side facts, e.g. Elevation's DEM sources
            options.update(svc.context(session))
        inputs = []
        for spec in svc.inputs:
            data_id = execution.inputs[str(spec.number)]
            files = session.scalars(
                select(DataFile).where(DataFile.data_id == data_id).order_by(DataFile.id)
            ).all()
            inputs.append([(f.file_name, f.sha256 or "") for f in files])
        return Job(
            execution_id=execution.id,
            components=[
                ComponentJob(c.id, c.name, specs[c.name].function, options) for c in components
            ],
            inputs=[*inputs, *extra_inputs],
            blob_url=self.settings.blob_url or str(self.settings.data_dir / "blobs"),
            scratch=self._scratch(),
        )

    def _start(self, job: Job, *, dispatch: bool) -> None:
        with self._lock:
            self._progress[job.execution_id] = _Progress(len(job.components), dispatch=dispatch)
        self.executor.submit(job, self._on_event)

    def _continue_group(self, session: Any, execution_id: str) -> tuple[Job, bool] | None:
        """A group member ended (in the transaction recording it): refund it if it did not
        succeed; once every slice has ended, the aggregator's job to start (with whether
        to dispatch), or it is ended unrun."""
        found = groups.after_member_done(session, execution_id)
        if found is None:
            return None
        process = session.get(Process, found.execution.process_id)
        dispatch = bool(process is not None and process.dispatchers)
        return self._job(session, found.execution, found.components, found.extra_inputs), dispatch

    def stop(self, actor: Actor, organisation_id: str, process_id: str) -> Process:
        """Stop the process: its running executions are aborted for real."""
        with self.uow.transaction() as session:
            actor.require(organisation_id, Privilege.execute)
            process = service.get_process(session, actor, organisation_id, process_id)
            runs = [
                e
                for e in service.list_executions(session, actor, organisation_id, process_id)
                if service.running(e)
            ]
            for execution in runs:
                execution.stopped = True
            process.process_status = "stop"
            process.process_status_at = utcnow()
            process.next_due_at = None  # a stopped schedule is disarmed
        for execution in runs:
            self.executor.cancel(execution.id)
        return process

    def delete_process(self, actor: Actor, organisation_id: str, process_id: str) -> None:
        """Stop, then delete the process with its executions and their outputs."""
        self.stop(actor, organisation_id, process_id)
        self.wait_idle(process_id=process_id, timeout=30)
        with self.uow.transaction() as session:
            process = service.get_process(session, actor, organisation_id, process_id)
            for execution in service.list_executions(session, actor, organisation_id, process_id):
                if service.running(execution):
                    raise Conflict("An execution is still stopping; try again shortly.")
                service._delete_execution(session, execution)
            session.delete(process)

    def wait_idle(self, *, process_id: str | None = None, timeout: float = 60) -> bool:
        """Wait until no execution (of ``process_id``, if given) is running here."""
        with self.uow.transaction() as session:
            query = select(Execution.id).where(Execution.ended_at.is_(None))
            if process_id is not None:
                query = query.where(Execution.process_id == process_id)
            wanted = set(session.scalars(query))
        with self._idle:
            return self._idle.wait_for(lambda: not (wanted & set(self._progress)), timeout=timeout)

    def _on_event(self, event: Event) -> None:
        """Called on the engine's threads: stamp the event and queue it for the recorder."""
        self._events.put((utcnow(), event))

    def _record_loop(self) -> None:
        """The recorder thread: take what is queued, record it per execution, until the stop
        mark (``None``) arrives."""
        while True:
            first = self._events.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < RECORD_BATCH:
                try:
                    item = self._events.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            by_execution: dict[str, list[tuple[datetime, Event]]] = {}
            for stamped in batch:
                by_execution.setdefault(stamped[1].execution_id, []).append(stamped)
            for execution_id, events in by_execution.items():
                try:
                    self._record_batch(execution_id, events)
                except Exception:  # the recorder must outlive any one bad batch
                    logger.exception("recording events of execution %s failed", execution_id)
            if stop:
                return

    def _record_batch(self, execution_id: str, events: list[tuple[datetime, Event]]) -> None:
        """One execution's waiting events: one transaction for those before ``done``; then, if
        the chain succeeded, its dispatchers run (before the execution is marked ended, so a
        client that sees it end finds its outputs dispatched: docs/processing.md); then ``done``."""
        done = next((i for i, (_, e) in enumerate(events) if e.kind == "done"), None)
        head = events if done is None else events[:done]
        tail = [] if done is None else events[done:]
        tracker = self._progress.get(execution_id)
        dispatch = tail and tail[0][1].value is None and tracker is not None and tracker.dispatch
        try:
            if dispatch:
                self._write(head, tracker)
                dispatch_execution(self.uow, self.blobs, self.settings, execution_id)
                self._write(tail, tracker)
            else:
                self._write(events, tracker)
        finally:
            if tail:
                with self._idle:
                    self._progress.pop(execution_id, None)
                    self._idle.notify_all()

    def _write(self, events: list[tuple[datetime, Event]], tracker: _Progress | None) -> None:
        """Record events in one transaction; if it fails, each alone (one bad event, e.g. an
        output too odd to store, loses only itself). Once an end is committed, what follows it
        happens: a group's aggregator starts, the completion notice goes. Never raises."""
        if not events:
            return
        done = tracker.done if tracker is not None else 0
        try:
            with self.uow.transaction() as session:
                endings = [self._record_one(session, event, stamp) for stamp, event in events]
        except Exception:
            if tracker is not None:
                tracker.done = done  # the batch's finished components were not recorded
            if len(events) > 1:
                logger.warning("recording a batch of %d events failed; each alone", len(events))
        else:
            self._after_ends(endings)
            return
        for stamp, event in events:
            try:
                with self.uow.transaction() as session:
                    ending = self._record_one(session, event, stamp)
            except Exception as exc:
                logger.exception(
                    "recording %s of execution %s failed", event.kind, event.execution_id
                )
                if event.kind == "done":
                    self._end_plainly(event.execution_id, stamp, exc)
            else:
                self._after_ends([ending])

    def _record_one(self, session: Any, event: Event, now: datetime) -> _Ending | None:
        """Record one event; for an end, also decide in the same transaction what follows it:
        the group's next step, and whether the completion notice is due (one per execution,
        or one per group once every member has ended)."""
        self._record(session, event, now)
        if event.kind != "done":
            return None
        follow = self._continue_group(session, event.execution_id)
        return _Ending(follow, groups.group_ended(session, event.execution_id))

    def _after_ends(self, endings: Sequence[_Ending | None]) -> None:
        for ending in endings:
            if ending is None:
                continue
            if ending.follow is not None:
                self._start(ending.follow[0], dispatch=ending.follow[1])
            if ending.summary is not None:
                notify_ended(self.uow, self.settings, ending.summary)

    def _end_plainly(self, execution_id: str, now: datetime, exc: Exception) -> None:
        """The last resort when recording an execution's end failed: end it, saying why, so
        nothing waits for it forever."""
        try:
            with self.uow.transaction() as session:
                execution = session.get(Execution, execution_id, with_for_update=True)
                if execution is None or execution.ended_at is not None:
                    return
                execution.ended_at, execution.progress = now, 100
                execution.success, execution.abort = False, True
                execution.abort_reason = f"Recording its end failed: {type(exc).__name__}."
                process = session.get(Process, execution.process_id, with_for_update=True)
                if process is not None and process.process_status == "execute":
                    process.process_status, process.process_status_at = "stop", now
        except Exception:
            logger.exception("ending execution %s failed", execution_id)

    def _record(self, session: Any, event: Event, now: datetime) -> None:
        execution = session.get(Execution, event.execution_id, with_for_update=True)
        if execution is None:  # deleted while running
            return
        component = session.get(Component, event.component_id) if event.component_id else None
        tracker = self._progress.get(event.execution_id)
        if event.kind == "started" and component is not None:
            component.started_at = now
            session.add(
                ComponentLog(
                    component_id=component.id, logged_at=now, message=f"Started {component.name}"
                )
            )
        elif event.kind == "log" and component is not None:
            session.add(
                ComponentLog(
                    component_id=component.id, logged_at=now, message=str(event.value)[:10_000]
                )
            )
        elif event.kind == "progress" and tracker is not None:
            share = (tracker.done + int(event.value) / 100) / max(1, tracker.components)
            execution.progress = min(99, max(execution.progress, int(share * 100)))
        elif event.kind == "finished" and component is not None:
            outputs = []
            for output in event.value["outputs"]:
                item = DataItem(
                    organisation_id=execution.organisation_id,
                    name=output["name"],
                    file_type=output["file_type"],
                    execution_id=execution.id,
                )
                session.add(item)
                session.flush()
                for f in output["files"]:
                    session.add(
                        DataFile(
                            organisation_id=execution.organisation_id,
                            data_id=item.id,
                            file_name=f["file_name"],
                            file_type=output["file_type"],
                            state="failed" if f["error"] else "analysed",
                            sha256=f["sha256"],
                            size=f["size"],
                            error=f["error"],
                            analysis=f["analysis"],
                        )
                    )
                outputs.append(item.id)
            component.outputs = outputs
            self._end(component, now, success=True)
            component.cpu = round(float(event.value.get("cpu", 0.0)), 3)
            component.memory = int(event.value.get("memory", 0))
            if tracker is not None:
                tracker.done += 1
                execution.progress = min(99, int(100 * tracker.done / tracker.components))
        elif event.kind == "failed" and component is not None:
            self._end(component, now, success=False)
            session.add(
                ComponentLog(component_id=component.id, logged_at=now, message=str(event.value))
            )
        elif event.kind == "done":
            execution.ended_at = now
            execution.progress = 100
            execution.success = event.value is None and not execution.stopped
            if not execution.success:
                execution.abort = True
                if execution.stopped:
                    execution.abort_reason = "Stopped by a user."
                elif self._closing:
                    execution.abort_reason = SERVER_STOPPED
                else:
                    execution.abort_reason = str(event.value)
            process = session.get(Process, execution.process_id, with_for_update=True)
            # A process whose schedule has runs to come stays "execute" (armed), as does
            # one whose group still has members running.
            running = groups.group_running(session, execution)
            if (
                process is not None
                and process.process_status == "execute"
                and process.next_due_at is None
                and not running
            ):
                process.process_status = "stop"
                process.process_status_at = now
            service.refund_unrun(session, execution)  # partial charge (issue #16)
            service.record_execution(session, execution)

    @staticmethod
    def _end(component: Component, now: Any, *, success: bool) -> None:
        component.ended_at = now
        component.success = success
        component.runtime = max(0, int((now - component.started_at).total_seconds()))

    def shutdown(self) -> None:
        """Stop for good: kill the workers, then wait (``SHUTDOWN_WAIT`` in all) for the
        engine's monitor threads, the recorder, the analysis threads and the completion notices
        queued so far, so no process, thread or database connection outlives the server.
        Executions cut off end with ``SERVER_STOPPED``."""
        deadline = time.monotonic() + SHUTDOWN_WAIT
        self._closing = True
        self._analysis.shutdown(wait=False, cancel_futures=True)
        self.executor.shutdown(timeout=SHUTDOWN_WAIT)
        self._events.put(None)
        self._recorder.join(max(0.0, deadline - time.monotonic()))
        for thread in list(getattr(self._analysis, "_threads", ())):
            thread.join(max(0.0, deadline - time.monotonic()))
        wait_for_notices(max(0.0, deadline - time.monotonic()))
