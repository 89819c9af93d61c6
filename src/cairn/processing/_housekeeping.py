"""The daily jobs: storage charges, organisations in debt, expired executions.

The scheduler's leader runs :func:`run_daily` once a day (and again after a restart): each
job is idempotent per day. A storage charge is keyed by (job, day, organisation) in
``processing_daily_runs``, written in the transaction that charges it, so a second run the same
day, or a second leader, charges nothing twice. Warnings are stamped when they are sent and
deletions only follow a warning stamped in an earlier round. Notices go out after the
transaction that decided them has committed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from cairn.accounts import service as accounts
from cairn.accounts.models import CreditEntry, Organisation
from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.notify import Notice, notify
from cairn.processing import service
from cairn.processing.models import CreditState, DailyRun, DataFile, DataItem, Execution

__all__ = [
    "DailyReport",
    "charge_storage",
    "delete_expired",
    "run_daily",
    "settle_debts",
    "stored_bytes",
]

logger = logging.getLogger(__name__)

GIB = 1 << 30


@dataclass
class DailyReport:
    """What one daily round did."""

    charged: dict[str, int] = field(default_factory=dict)  # organisation -> credits
    warned: list[str] = field(default_factory=list)  # execution ids warned of expiry
    expired: list[str] = field(default_factory=list)  # execution ids deleted
    in_debt: list[str] = field(default_factory=list)  # organisations warned
    outputs_deleted: dict[str, int] = field(default_factory=dict)  # organisation -> items


def run_daily(uow: UnitOfWork, settings: Settings, *, now: datetime) -> DailyReport:
    """Every daily job for the day of ``now``."""
    report = DailyReport()
    report.charged = charge_storage(uow, settings, day=now.date())
    report.warned, report.expired = delete_expired(uow, settings, now=now)
    report.in_debt, report.outputs_deleted = settle_debts(uow, settings, now=now)
    return report


def stored_bytes(session: Any) -> dict[str, int]:
    """Bytes each organisation stores, uploads and outputs alike; a blob held by several of
    its files (a copied item) counts once."""
    rows = session.execute(
        select(DataFile.organisation_id, DataFile.sha256, func.max(DataFile.size))
        .where(DataFile.sha256.is_not(None))
        .group_by(DataFile.organisation_id, DataFile.sha256)
    ).all()
    found: dict[str, int] = {}
    for organisation_id, _sha256, size in rows:
        found[organisation_id] = found.get(organisation_id, 0) + int(size or 0)
    return found


def charge_storage(uow: UnitOfWork, settings: Settings, *, day: date) -> dict[str, int]:
    """Charge each organisation for the bytes it stores, once for ``day``: every started GiB
    costs ``storage_credits_per_gib_day``. Answers the credits charged now."""
    with uow.read() as session:
        stored = stored_bytes(session)
    price = settings.storage_credits_per_gib_day
    charged: dict[str, int] = {}
    for organisation_id, size in sorted(stored.items()):
        amount = math.ceil(size / GIB) * price if size else 0
        try:
            with uow.transaction() as session:
                organisation = session.get(Organisation, organisation_id, with_for_update=True)
                if organisation is None:
                    continue
                if session.get(DailyRun, ("storage", day, organisation_id)) is not None:
                    continue  # charged already today
                session.add(
                    DailyRun(
                        job="storage",
                        day=day,
                        organisation_id=organisation_id,
                        amount=amount,
                        detail={"bytes": size},
                    )
                )
                session.flush()
                if amount:
                    accounts.grant_credits(
                        session,
                        organisation=organisation,
                        amount=-amount,
                        reason=f"Storage on {day.isoformat()}: {size} bytes",
                    )
        except IntegrityError:
            continue  # another leader charged it at the same moment
        charged[organisation_id] = amount
    return charged


def delete_expired(
    uow: UnitOfWork, settings: Settings, *, now: datetime
) -> tuple[list[str], list[str]]:
    """Warn (``execution.expiring``) of ended executions whose ``delete_expiry`` is within
    ``expiry_warning``, and delete, with their outputs, those past it that were warned in an
    earlier round. A warning sent before the expiry was moved later counts for nothing."""
    ahead = settings.expiry_warning
    with uow.read() as session:
        candidates = session.execute(
            select(Execution.id)
            .where(Execution.ended_at.is_not(None), Execution.delete_expiry <= now + ahead)
            .order_by(Execution.delete_expiry, Execution.id)
        ).all()
    warned: list[str] = []
    expired: list[str] = []
    notices: list[Notice] = []
    for (execution_id,) in candidates:
        with uow.transaction() as session:
            execution = session.get(Execution, execution_id, with_for_update=True)
            if execution is None or execution.ended_at is None:
                continue
            stamp = execution.expiry_warned_at
            valid = stamp is not None and stamp >= execution.delete_expiry - ahead
            if valid and stamp is not None and stamp < now and execution.delete_expiry <= now:
                service._delete_execution(session, execution)
                expired.append(execution_id)
                logger.info(
                    "execution %s expired and was deleted with its outputs",
                    execution_id,
                    extra={"organisation_id": execution.organisation_id},
                )
            elif not valid and execution.delete_expiry <= now + ahead:
                execution.expiry_warned_at = now
                warned.append(execution_id)
                notices.append(_expiring(session, execution))
    for notice in notices:
        notify(uow, settings, notice)
    return warned, expired


def _expiring(session: Any, execution: Execution) -> Notice:
    from cairn.processing.models import Process

    process = session.get(Process, execution.process_id)
    name = process.name if process is not None else execution.process_id
    when = execution.delete_expiry.isoformat()
    return Notice(
        execution.organisation_id,
        "execution.expiring",
        f"Outputs of '{name}' will be deleted",
        f"The execution {execution.id} of process '{name}' and its outputs will be deleted "
        f"at {when}, when it expires. Download or copy what you need, or move its "
        "delete_expiry later.",
        user_ids=[process.created_by] if process is not None and process.created_by else None,
    )


def _balances(session: Any) -> dict[str, int]:
    rows = session.execute(
        select(CreditEntry.organisation_id, func.sum(CreditEntry.amount)).group_by(
            CreditEntry.organisation_id
        )
    ).all()
    return {organisation_id: int(total or 0) for organisation_id, total in rows}


def settle_debts(
    uow: UnitOfWork, settings: Settings, *, now: datetime
) -> tuple[list[str], dict[str, int]]:
    """Organisations whose balance is negative are warned (``credits.negative``) once; when it
    has stayed negative for ``credit_grace_period`` since, their stored outputs (components'
    output data items; uploads stay) are deleted, as the manual warns. A balance back at zero
    or above clears the record."""
    with uow.read() as session:
        balances = _balances(session)
        tracked = set(session.scalars(select(CreditState.organisation_id)))
    warned: list[str] = []
    deleted: dict[str, int] = {}
    notices: list[Notice] = []
    for organisation_id in sorted(set(balances) | tracked):
        with uow.transaction() as session:
            organisation = session.get(Organisation, organisation_id, with_for_update=True)
            if organisation is None:
                continue
            balance = accounts.credit_balance(session, organisation_id)
            state = session.get(CreditState, organisation_id, with_for_update=True)
            if balance >= 0:
                if state is not None:
                    session.delete(state)
                continue
            if state is None:
                state = CreditState(organisation_id=organisation_id, negative_since=now)
                session.add(state)
            if state.negative_since is None:
                state.negative_since = now
            deadline = state.negative_since + settings.credit_grace_period
            if state.warned_at is None:
                state.warned_at = now
                warned.append(organisation_id)
                notices.append(
                    Notice(
                        organisation_id,
                        "credits.negative",
                        f"'{organisation.name}' owes {-balance} credits",
                        f"The organisation's balance is {balance} credits. Unless it is topped "
                        f"up, its stored outputs will be deleted after {deadline.isoformat()}.",
                    )
                )
            elif state.warned_at < now and deadline <= now:
                count = _delete_outputs(session, organisation_id)
                if count:
                    deleted[organisation_id] = count
                    logger.warning(
                        "organisation %s in debt past its grace period: %d output item(s) deleted",
                        organisation_id,
                        count,
                        extra={"organisation_id": organisation_id},
                    )
                    notices.append(
                        Notice(
                            organisation_id,
                            "credits.negative",
                            f"Outputs of '{organisation.name}' deleted",
                            f"The balance stayed negative ({balance} credits) past the grace "
                            f"period, so {count} stored output item(s) were deleted.",
                        )
                    )
    for notice in notices:
        notify(uow, settings, notice)
    return warned, deleted


def _delete_outputs(session: Any, organisation_id: str) -> int:
    items: Sequence[DataItem] = session.scalars(
        select(DataItem).where(
            DataItem.organisation_id == organisation_id,
            DataItem.execution_id.in_(
                select(Execution.id).where(
                    Execution.organisation_id == organisation_id, Execution.ended_at.is_not(None)
                )
            ),
        )
    ).all()
    for item in items:
        service._delete_item(session, item)
    return len(items)
