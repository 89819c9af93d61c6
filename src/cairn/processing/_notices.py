"""The completion notice of an execution (kind ``execution.ended``), sent through
``cairn.notify`` to the organisation's members whose preferences ask for it."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.notify import Notice, notify
from cairn.processing.models import Execution, Process

__all__ = ["execution_ended_notice", "notify_execution_ended", "send_execution_ended"]

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
