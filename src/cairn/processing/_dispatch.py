"""Dispatchers at work: once an execution's chain has succeeded, each dispatcher its process
added sends the outputs on (part 1 has the built-in ``Local folder``; part 2 adds S3, email and
webhooks, and evaluates every dispatcher's ``condition``, which part 1 only stores).

A dispatcher runs in the server, after the chain and before the execution is marked ended, so
a client that sees the execution end also finds its outputs dispatched. A dispatcher that fails
is a line in the execution's log (its last component's) and never fails the execution.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from cairn.blobs import BlobStore
from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.db.base import utcnow
from cairn.processing._context import DispatchContext, DispatchedFile
from cairn.processing._registry import get_dispatcher
from cairn.processing.models import Component, ComponentLog, DataFile, DataItem, Execution, Process
from cairn.processing.ssd import parse_option

__all__ = ["dispatch_execution"]

logger = logging.getLogger(__name__)


def dispatch_execution(
    uow: UnitOfWork, blobs: BlobStore, settings: Settings, execution_id: str
) -> None:
    """Run the dispatchers of the execution's process; what each did (or why it failed) goes
    to the log of the execution's last component. Never raises."""
    try:
        _dispatch(uow, blobs, settings, execution_id)
    except Exception:  # the database went away: the execution still ends
        logger.exception("dispatching execution %s failed", execution_id)


def _dispatch(uow: UnitOfWork, blobs: BlobStore, settings: Settings, execution_id: str) -> None:
    with uow.transaction() as session:
        execution = session.get(Execution, execution_id)
        process = session.get(Process, execution.process_id) if execution else None
        if execution is None or execution.stopped or process is None or not process.dispatchers:
            return
        components = session.scalars(
            select(Component)
            .where(Component.execution_id == execution_id)
            .order_by(Component.chain_index)
        ).all()
        if not components:
            return
        made: list[DispatchedFile] = []
        for component in components:
            for data_id in component.outputs:
                item = session.get(DataItem, data_id)
                files = session.scalars(
                    select(DataFile).where(DataFile.data_id == data_id).order_by(DataFile.id)
                ).all()
                made.extend(
                    DispatchedFile(
                        component.name,
                        component.chain_index,
                        item.name if item else data_id,
                        f.file_name,
                        f.file_type,
                        f.sha256,
                    )
                    for f in files
                    if f.sha256
                )
        chosen: list[dict[str, Any]] = list(process.dispatchers)
        last, process_name = components[-1], process.name
        final = last.chain_index
    lines: list[str] = []
    for entry in chosen:
        name = str(entry.get("ssd_id"))
        try:
            dispatcher = get_dispatcher(entry["ssd_id"])
            name = dispatcher.name
            options = entry.get("options") or {}
            typed = {
                o.name: parse_option(o, options.get(o.name, o.default)) for o in dispatcher.options
            }
            context = DispatchContext(
                execution_id=execution_id,
                process_name=process_name,
                options=typed,
                files=[
                    f for f in made if entry.get("dispatch_intermediate") or f.chain_index == final
                ],
                settings=settings,
                blobs=blobs,
            )
            if dispatcher.dispatch is None:
                raise NotImplementedError("it has no dispatch function")
            dispatcher.dispatch(context)
            lines.extend(f"Dispatcher '{name}': {message}" for message in context.messages)
        except Exception as exc:  # a dispatcher's failure is logged, never the execution's
            logger.warning("dispatcher %s of %s failed", name, execution_id, exc_info=True)
            lines.append(f"Dispatcher '{name}' failed: {type(exc).__name__}: {exc}")
    with uow.transaction() as session:
        now = utcnow()
        for line in lines:
            session.add(ComponentLog(component_id=last.id, logged_at=now, message=line[:10_000]))
