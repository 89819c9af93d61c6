"""The scheduler: one leader among the servers starts due scheduled runs and the daily jobs.

Every ``cairn serve`` runs a :class:`Scheduler` thread that wakes every
``scheduler_interval``. Only the holder of the lease row ``processing_leases.scheduler``
(taken under a row lock, renewed on every tick, given up on shutdown, taken over once it has
expired) acts, so several servers sharing one PostgreSQL start each run once. Even two leaders
at once (a lease expired mid-tick) cannot double-start a run: each run is claimed in the
transaction that charges and records it, by moving the process's ``next_due_at`` on from the
value read, under the process's row lock (``service.charge_scheduled``). The state lives in
the database (``next_due_at``, ``runs_done``), so a restart neither repeats nor loses a run.

The clock is injectable (``clock``) and :meth:`Scheduler.tick` runs one round, so tests drive
the scheduler without sleeping.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from cairn.accounts import service as accounts
from cairn.accounts.models import User
from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.db.base import utcnow
from cairn.errors import CairnError
from cairn.notify import Notice, notify
from cairn.processing import _housekeeping as housekeeping
from cairn.processing import service
from cairn.processing.models import Lease, Process

__all__ = ["LEASE", "Scheduler", "acquire_lease", "execute_or_arm", "release_lease"]

logger = logging.getLogger(__name__)

LEASE = "scheduler"
Clock = Callable[[], datetime]


def acquire_lease(
    uow: UnitOfWork, *, name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until ``now + ttl``; False while
    another holder's lease runs."""
    try:
        with uow.transaction() as session:
            lease = session.get(Lease, name, with_for_update=True, populate_existing=True)
            if lease is None:
                session.add(Lease(name=name, holder=holder, expires_at=now + ttl))
                session.flush()
                return True
            if lease.holder != holder and lease.expires_at > now:
                return False
            lease.holder, lease.expires_at = holder, now + ttl
            return True
    except (IntegrityError, OperationalError):
        # Another server inserted the row (or held SQLite's write lock) at the same moment.
        return False


def release_lease(uow: UnitOfWork, *, name: str, holder: str, now: datetime) -> None:
    """Give the lease up at once (shutdown), so another server need not wait for it to expire."""
    with uow.transaction() as session:
        lease = session.get(Lease, name, with_for_update=True, populate_existing=True)
        if lease is not None and lease.holder == holder:
            lease.expires_at = now


def execute_or_arm(runtime: Any, actor: Any, organisation_id: str, process_id: str) -> str | None:
    """What "execute" does: start the process now (the new execution's id), or, when it has
    a schedule or a later start, arm it for the scheduler (None)."""
    with runtime.uow.read() as session:
        process = service.get_process(session, actor, organisation_id, process_id)
        scheduled = service.is_scheduled(process)
    if not scheduled:
        return str(runtime.execute(actor, organisation_id, process_id))
    with runtime.uow.transaction() as session:
        service.arm_schedule(session, actor, organisation_id, process_id, now=utcnow())
    return None


class Scheduler:
    """Starts due scheduled runs and the daily jobs while it holds the lease.

    Args:
        uow: transactions on the server's database.
        settings: ``scheduler_interval``, ``scheduler_lease`` and the daily jobs' settings.
        runtime: a callable answering the server's ``Runtime`` (made on first need).
        clock: the current time (tests pass their own).
    """

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        settings: Settings,
        runtime: Callable[[], Any],
        clock: Clock = utcnow,
        holder: str | None = None,
    ) -> None:
        self.uow = uow
        self.settings = settings
        self.runtime = runtime
        self.clock = clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._daily_done: date | None = None

    # --- one round ---------------------------------------------------------------------------

    def tick(self) -> list[str]:
        """One round: if this scheduler leads, start what is due (answers the executions it
        started) and, once a day, the daily jobs."""
        now = self.clock()
        if not acquire_lease(
            self.uow,
            name=LEASE,
            holder=self.holder,
            now=now,
            ttl=timedelta(seconds=self.settings.scheduler_lease),
        ):
            return []
        started = self.run_due(now)
        today = now.date()
        if self._daily_done != today:
            housekeeping.run_daily(self.uow, self.settings, now=now)
            self._daily_done = today
        return started

    def run_due(self, now: datetime) -> list[str]:
        """Start every run due at ``now``; a run that cannot start is skipped and said why."""
        with self.uow.read() as session:
            due = service.due_processes(session, now=now)
        started = []
        for organisation_id, process_id, at in due:
            execution_id = self._start(organisation_id, process_id, at, now)
            if execution_id is not None:
                started.append(execution_id)
        return started

    def _start(
        self, organisation_id: str, process_id: str, due: datetime, now: datetime
    ) -> str | None:
        try:
            with self.uow.read() as session:
                process = session.get(Process, process_id)
                if process is None:
                    return None
                user = session.get(User, process.created_by) if process.created_by else None
                if user is None:
                    raise CairnError("the user who created the process no longer exists")
                actor = accounts.authenticate_user(session, user)

            claim = functools.partial(service.charge_scheduled, due=due, now=now)
            execution_id = self.runtime().execute(actor, organisation_id, process_id, charge=claim)
        except service.RunTaken:
            return None
        except CairnError as exc:
            self._skip(organisation_id, process_id, due, now, exc.message)
            return None
        logger.info(
            "scheduled run of process %s (due %s) started as execution %s",
            process_id,
            due.isoformat(),
            execution_id,
            extra={"organisation_id": organisation_id, "process_id": process_id},
        )
        return str(execution_id)

    def _skip(
        self, organisation_id: str, process_id: str, due: datetime, now: datetime, reason: str
    ) -> None:
        with self.uow.transaction() as session:
            process = service.skip_scheduled(session, organisation_id, process_id, due=due, now=now)
            if process is None:
                return  # another scheduler dealt with this run
            name, creator, following = process.name, process.created_by, process.next_due_at
        logger.warning(
            "scheduled run of process %s due %s skipped: %s",
            process_id,
            due.isoformat(),
            reason,
            extra={"organisation_id": organisation_id, "process_id": process_id},
        )
        then = f" The next run is due at {following.isoformat()}." if following else ""
        notify(
            self.uow,
            self.settings,
            Notice(
                organisation_id,
                "schedule.skipped",
                f"Scheduled run of '{name}' skipped",
                f"The run of process '{name}' ({process_id}) due at {due.isoformat()} did not "
                f"start: {reason}{then}",
                user_ids=[creator] if creator else None,
            ),
        )

    # --- the loop ----------------------------------------------------------------------------

    def start(self) -> None:
        """Run rounds every ``scheduler_interval`` in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        interval = self.settings.scheduler_interval
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must outlive a bad round (the database restarting)
                logger.exception("scheduler round failed")
            self._stop.wait(interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            release_lease(self.uow, name=LEASE, holder=self.holder, now=self.clock())
        except Exception:
            logger.exception("scheduler lease not released")
