"""Running the plugin calls owed to containers (the reference's document-consumer): saves to
storage plugins and post-processing after enhancement, in the background, with back-off.

A plugin is called with no transaction open. Whatever it does (a failure ``Result``, an
exception) is recorded on the task and as a container event; nothing is lost, because the
document stays in cairn's blob store until a save succeeded. Saves are retried until they
succeed; a post-processor at most ``POST_PROCESS_ATTEMPTS`` times, and it never changes the
container's status.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from cairn.archive.errors import PluginUnavailable
from cairn.archive.log import record_event
from cairn.archive.models import ArchiveContainer, ArchivePluginTask, ArchiveSignature
from cairn.archive.plugins import ArchivePlugins, Container, Document, Result, Signature
from cairn.archive.statuses import ContainerStatus
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork, utcnow

__all__ = [
    "POST_PROCESS",
    "POST_PROCESS_ATTEMPTS",
    "STORE",
    "backoff",
    "document_bytes",
    "run_plugin_tasks",
    "schedule_post_processing",
]

log = logging.getLogger(__name__)
STORE, POST_PROCESS = "store", "post-process"
POST_PROCESS_ATTEMPTS = 5
LEASE = timedelta(minutes=10)


def backoff(attempts: int) -> timedelta:
    """The wait before the next try: 10 s, doubling, at most an hour."""
    return timedelta(seconds=min(3600, 10 * 2 ** max(0, attempts - 1)))


def schedule_post_processing(session: Session, container_id: str, plugins: ArchivePlugins) -> None:
    """Owe every enabled post-processor a run for this container (again, after a re-stamp)."""
    now = utcnow()
    for name in plugins.post_processors:
        task = session.scalars(
            select(ArchivePluginTask).where(
                ArchivePluginTask.container_id == container_id,
                ArchivePluginTask.kind == POST_PROCESS,
                ArchivePluginTask.plugin_name == name,
            )
        ).one_or_none()
        if task is None:
            session.add(
                ArchivePluginTask(
                    container_id=container_id,
                    kind=POST_PROCESS,
                    plugin_name=name,
                    attempts=0,
                    next_at=now,
                    gave_up=False,
                )
            )
        else:
            task.attempts, task.next_at, task.done_at, task.gave_up = 0, now, None, False


def _claim(uow: UnitOfWork, now: datetime, limit: int) -> list[int]:
    claimed = []
    with uow.transaction() as session:
        due = session.scalars(
            select(ArchivePluginTask.id)
            .where(
                ArchivePluginTask.done_at.is_(None),
                ArchivePluginTask.gave_up.is_(False),
                ArchivePluginTask.next_at <= now,
                or_(ArchivePluginTask.lease_until.is_(None), ArchivePluginTask.lease_until < now),
            )
            .order_by(ArchivePluginTask.next_at)
            .limit(limit)
        ).all()
        for task_id in due:
            result = session.execute(
                update(ArchivePluginTask)
                .where(
                    ArchivePluginTask.id == task_id,
                    or_(
                        ArchivePluginTask.lease_until.is_(None),
                        ArchivePluginTask.lease_until < now,
                    ),
                )
                .values(lease_until=now + LEASE)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(task_id)
    return claimed


def _container(
    session: Session, blobs: BlobStore, plugins: ArchivePlugins, container: ArchiveContainer
) -> Container:
    """The plugin-facing container: the document when the archive keeps it (from the blob
    store, or from its storage plugin once saved there), and each signature as served."""
    archived = container.status in (ContainerStatus.ARCHIVED, ContainerStatus.RESTAMP_DUE)
    signatures = []
    for row in session.scalars(
        select(ArchiveSignature)
        .where(ArchiveSignature.container_id == container.id)
        .order_by(ArchiveSignature.position)
    ):
        sha = row.enhanced_sha256 if archived and row.enhanced_sha256 else row.raw_sha256
        signatures.append(Signature(blobs.read_bytes(sha), row.expires_at))
    raw = document_bytes(blobs, plugins, container)
    document = None if raw is None else Document(raw)
    return Container(container.id, document, signatures, ContainerStatus(container.status))


def document_bytes(
    blobs: BlobStore, plugins: ArchivePlugins, container: ArchiveContainer
) -> bytes | None:
    """The document's bytes: from the blob store until a storage plugin saved it, then from
    that plugin (read-only plugins serve reads too); None when the client keeps it.

    Raises:
        PluginUnavailable: the plugin holding it is not configured, or its ``get`` failed.
    """
    if container.document_sha256 is not None:
        return blobs.read_bytes(container.document_sha256)
    if container.document_path is None or container.plugin_name is None:
        return None
    entry = plugins.storage_for_reading(container.plugin_name)
    if entry is None:
        raise PluginUnavailable(
            f"Storage plugin {container.plugin_name!r}, which holds this document, is not "
            "configured."
        )
    try:
        answer = entry.plugin.get(container.document_path)
    except Exception as exc:
        answer = Result.failure(f"raised {type(exc).__name__}: {exc}")
    if not isinstance(answer, Result) or answer.is_failure or answer.value is None:
        error = answer.error if isinstance(answer, Result) else "returned no Result"
        raise PluginUnavailable(f"Storage plugin {container.plugin_name!r}: {error}")
    return bytes(answer.value.raw)


def _call(kind: str, plugin: Any, container: Container) -> Result[Any]:
    """The plugin's answer; an exception or a wrong return type becomes a failure."""
    try:
        if kind == STORE:
            answer = plugin.save(container)
        elif callable(getattr(plugin, "process", None)):
            answer = plugin.process(container)
        else:
            answer = plugin.process_async(container)
        if inspect.isawaitable(answer):
            answer = asyncio.run(_awaited(answer))
    except Exception as exc:
        return Result.failure(f"raised {type(exc).__name__}: {exc}")
    if not isinstance(answer, Result):
        return Result.failure(f"returned {type(answer).__name__}, not a Result")
    if kind == STORE and answer.is_success and not isinstance(answer.value, str):
        return Result.failure("save succeeded but returned no path")
    return answer


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _run_one(uow: UnitOfWork, blobs: BlobStore, plugins: ArchivePlugins, task_id: int) -> None:
    with uow.transaction() as session:
        task = session.get(ArchivePluginTask, task_id)
        container = session.get(ArchiveContainer, task.container_id) if task else None
        if task is None or container is None:
            return
        kind, name, container_id = task.kind, task.plugin_name, container.id
        entry = (plugins.storages if kind == STORE else plugins.post_processors).get(name)
        try:
            view: Container | None = _container(session, blobs, plugins, container)
        except PluginUnavailable as exc:  # the storage plugin holding the document failed
            view = None
            unreadable = str(exc)
    if view is None:
        answer: Result[Any] = Result.failure(unreadable)
    elif entry is None:
        answer = Result.failure(f"plugin {name!r} is not configured (any more)")
    elif kind == STORE and view.document is None:
        answer = Result.failure("the document is no longer in cairn's blob store")
    else:
        answer = _call(kind, entry.plugin, view)
    now = utcnow()
    with uow.transaction() as session:
        task = session.get(ArchivePluginTask, task_id)
        container = session.get(ArchiveContainer, container_id)
        if task is None or container is None:
            return
        task.lease_until = None
        task.attempts += 1
        if answer.is_success:
            task.done_at, task.last_error = now, None
            if kind == STORE:
                # The plugin holds the document now; the blob store's copy is collected by gc.
                container.document_path, container.document_sha256 = answer.value, None
                container.modified_at = now
            event, detail = ("stored" if kind == STORE else "post-processed"), name
        else:
            task.last_error = answer.error
            if kind == POST_PROCESS and task.attempts >= POST_PROCESS_ATTEMPTS:
                task.gave_up = True
            else:
                task.next_at = now + backoff(task.attempts)
            event = "storage-failed" if kind == STORE else "post-process-failed"
            detail = f"{name}, attempt {task.attempts}: {answer.error}"
        record_event(session, container, event, detail, at=now)


def run_plugin_tasks(
    uow: UnitOfWork,
    blobs: BlobStore,
    plugins: ArchivePlugins,
    *,
    now: datetime | None = None,
    limit: int = 10,
) -> int:
    """Run up to ``limit`` due plugin tasks; returns how many ran."""
    claimed = _claim(uow, now or utcnow(), limit)
    for task_id in claimed:
        try:
            _run_one(uow, blobs, plugins, task_id)
        except Exception:  # a broken blob or row must not stop the other tasks
            log.exception("archive plugin task %s failed; its lease will run out", task_id)
    return len(claimed)
