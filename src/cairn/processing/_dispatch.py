"""Dispatchers at work: once an execution's chain has succeeded, each dispatcher its process
added sends the outputs on (the built-ins: ``Local folder``, ``AWS S3``, ``Storage URL``, ``Email``
and ``Webhook``), when the dispatcher's ``condition`` holds (``_conditions``).

A dispatcher runs in the server, after the chain and before the execution is marked ended, so
a client that sees the execution end also finds its outputs dispatched. A dispatcher that fails
is a line in the execution's log (its last component's) and never fails the execution.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from cairn.accounts.models import Membership, User
from cairn.blobs import BlobStore
from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.db.base import utcnow
from cairn.errors import NotFound
from cairn.processing._conditions import ConditionError, evaluate_condition
from cairn.processing._context import DispatchContext, DispatchedFile
from cairn.processing._registry import get_dispatcher, get_service
from cairn.processing._signing import Signer
from cairn.processing.models import Component, ComponentLog, DataFile, DataItem, Execution, Process
from cairn.processing.ssd import CONDITION, parse_option

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
                        file_id=f.id,
                        size=f.size or 0,
                    )
                    for f in files
                    if f.sha256
                )
        chosen: list[dict[str, Any]] = list(process.dispatchers)
        last, process_name = components[-1], process.name
        organisation_id = process.organisation_id
        final = last.chain_index
        members = frozenset(
            email.lower()
            for email in session.scalars(
                select(User.email)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.organisation_id == organisation_id)
            )
        )
        service_name = _service_name(process.service_id)
    signer = Signer(settings.data_dir)

    def link(file: DispatchedFile) -> str:
        signed = signer.sign(
            f"download:{file.sha256}", file.file_id, settings.dispatch_link_lifetime
        )
        return f"{settings.base_url}/fusion/transfers/{file.file_id}/download?{signed.query()}"

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
            given = [
                f for f in made if entry.get("dispatch_intermediate") or f.chain_index == final
            ]
            condition = typed.get(CONDITION.name)
            try:
                holds = evaluate_condition(condition, condition_names(blobs, given, service_name))
            except ConditionError as exc:
                lines.append(f"Dispatcher '{name}' skipped: {exc.message}")
                continue
            if not holds:
                lines.append(f"Dispatcher '{name}': the condition is false, nothing dispatched")
                continue
            context = DispatchContext(
                execution_id=execution_id,
                process_name=process_name,
                options=typed,
                files=given,
                settings=settings,
                blobs=blobs,
                organisation_id=organisation_id,
                service_name=service_name,
                member_emails=members,
                _link=link,
            )
            if dispatcher.dispatch is None:
                raise NotImplementedError("it has no dispatch function")
            dispatcher.dispatch(context)
            lines.extend(f"Dispatcher '{name}': {message}" for message in context.messages)
        except Exception as exc:  # a dispatcher's failure is logged, never the execution's
            logger.warning("dispatcher %s of %s failed", name, execution_id, exc_info=True)
            lines.append(f"Dispatcher '{name}' failed: {type(exc).__name__}: {_clean(exc)}")
    with uow.transaction() as session:
        now = utcnow()
        for line in lines:
            session.add(ComponentLog(component_id=last.id, logged_at=now, message=line[:10_000]))


def _service_name(service_id: str) -> str:
    try:
        return get_service(service_id).name
    except NotFound:  # a plugin's service that is no longer installed
        return ""


def _clean(exc: BaseException) -> str:
    """The error's message on one line (botocore's span several)."""
    return " ".join(str(exc).split())[:2_000]


def condition_names(
    blobs: BlobStore, files: Sequence[DispatchedFile], service_name: str
) -> dict[str, Callable[[], Any]]:
    """The names a condition may use over the files a dispatcher is given: each data item
    is an input (``input_<n>_...``, in chain and output order), each of its files numbered
    ``file_<m>``; lines are counted only when a condition asks for them."""
    items: dict[tuple[int, str], list[DispatchedFile]] = {}
    for file in files:
        items.setdefault((file.chain_index, file.data_name), []).append(file)
    names: dict[str, Callable[[], Any]] = {
        "inputs": functools.partial(len, items),
        "dispatching_service_name": functools.partial(str, service_name),
    }
    for n, item_files in enumerate(items.values(), start=1):
        names[f"input_{n}_files"] = functools.partial(len, item_files)
        for m, file in enumerate(item_files, start=1):
            names[f"input_{n}_file_{m}_name"] = functools.partial(str, file.file_name)
            names[f"input_{n}_file_{m}_lines"] = functools.partial(_count_lines, blobs, file.sha256)
    return names


def _count_lines(blobs: BlobStore, sha256: str) -> int:
    lines, last = 0, b"\n"
    with blobs.open(sha256) as source:
        while chunk := source.read(1024 * 1024):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")
