"""The completion notice of an execution (kind ``execution.ended``), sent through
``cairn.notify`` to the organisation's members whose preferences ask for it."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.notify import Notice, notify
from cairn.processing.models import Execution, Process

if TYPE_CHECKING:
    from cairn.processing.groups import GroupSummary

__all__ = [
    "execution_ended_notice",
    "group_ended_notice",
    "notify_ended",
    "notify_execution_ended",
    "send_execution_ended",
    "wait_for_notices",
]

logger = logging.getLogger(__name__)


def execution_ended_notice(execution: Execution, process: Process | None) -> Notice:
    """The notice telling the organisation how the execution ended."""
    name = process.name if process is not None else execution.process_id
    if execution.success:
        outcome, detail = "succeeded", "Its outputs are ready to download."
    elif execution.stopped:
        outcome, detail = "was stopped", execution.abort_reason or "Stopped by a user."
    else:
        outcome, detail = "failed", execution.abort_reason or "It failed."
    return Notice(
        execution.organisation_id,
        "execution.ended",
        f"cairn: '{name}' {outcome}",
        f"The execution {execution.id} of the process '{name}' {outcome}. {detail}",
    )


# One sender thread: a slow or unreachable SMTP server delays notices, never the recorder
# that ends executions (its timeout is up to CAIRN_SMTP_TIMEOUT per recipient).
_SENDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cairn-notices")


def group_ended_notice(summary: GroupSummary, process: Process | None) -> Notice:
    """The one notice telling the organisation how a whole group ended."""
    name = process.name if process is not None else summary.process_id
    count = len(summary.execution_ids)
    outcome = "succeeded" if summary.success else "failed"
    detail = (
        "Their outputs are ready to download."
        if summary.success
        else f"{summary.failed} of {count} did not succeed: " + "; ".join(summary.abort_reasons)
    )
    return Notice(
        summary.organisation_id,
        "execution.ended",
        f"cairn: '{name}' {outcome}",
        f"The {count} executions of group {summary.group_id} of the process '{name}' "
        f"{outcome}. {detail}",
    )


def notify_ended(uow: UnitOfWork, settings: Settings, summary: GroupSummary) -> Future[int]:
    """Send the completion notice of an ended execution or group (``groups.group_ended``),
    after its end was committed, in the background."""
    if summary.group_id is None:
        return notify_execution_ended(uow, settings, summary.execution_ids[0])
    return _SENDER.submit(_send_group_ended, uow, settings, summary)


def _send_group_ended(uow: UnitOfWork, settings: Settings, summary: GroupSummary) -> int:
    try:
        with uow.read() as session:
            notice = group_ended_notice(summary, session.get(Process, summary.process_id))
    except Exception:
        logger.exception("completion notice of group %s not sent", summary.group_id)
        return 0
    return notify(uow, settings, notice)


def wait_for_notices(timeout: float) -> bool:
    """Wait until the notices queued so far have been sent (the one sender thread takes them
    in order), so a server that stops holds no connection for them; False on timeout."""
    try:
        _SENDER.submit(lambda: None).result(timeout=timeout)
    except TimeoutError:
        return False
    return True


def notify_execution_ended(uow: UnitOfWork, settings: Settings, execution_id: str) -> Future[int]:
    """Send the completion notice of an ended execution (after its end was committed), in the
    background; the future gives the deliveries handed over and never fails."""
    return _SENDER.submit(send_execution_ended, uow, settings, execution_id)


def send_execution_ended(uow: UnitOfWork, settings: Settings, execution_id: str) -> int:
    """Send the completion notice now; returns the deliveries handed over. Never raises."""
    try:
        with uow.read() as session:
            execution = session.get(Execution, execution_id)
            if execution is None or execution.ended_at is None:
                return 0
            notice = execution_ended_notice(execution, session.get(Process, execution.process_id))
    except Exception:
        logger.exception("completion notice of execution %s not sent", execution_id)
        return 0
    return notify(uow, settings, notice)
