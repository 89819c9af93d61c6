"""Scheduler overhead: what starting a due scheduled run costs beyond an immediate execute.

N processes are armed to run once at the same due time and one scheduler round starts them
all (lease, due query, per run: the creator's actor, claim under the row lock, charge, record,
submit); the baseline executes N like processes at once through ``Runtime.execute`` (lock,
charge, record, submit). Both submit to an executor that only reports each job done, so the
engine's own cost (measured by bench/processing.py) is left out and the two differ by the
scheduler's work alone. Rounds alternate scheduled and direct.

Goal (issue #16): scheduler overhead <= 50 ms per execution. Prints detail lines, then
`scheduler: cairn X, baseline Y, ratio Z` (best totals of the rounds).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import _common
from _common import detail, report, scratch_dir

_common.use_source_tree()

from cairn.processing._engine import Event, Executor, Job  # noqa: E402


class DoneAtOnce(Executor):
    """Reports every job done as it is submitted (the engine is not what is measured)."""

    def submit(self, job: Job, on_event: Callable[[Event], None]) -> None:
        on_event(Event(job.execution_id, "done"))

    def cancel(self, execution_id: str) -> bool:
        return False

    def shutdown(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50, help="Executions per round.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from cairn.accounts import service as accounts
    from cairn.blobs import open_blob_store
    from cairn.config import Settings
    from cairn.db import UnitOfWork, make_engine, make_sessionmaker, migrate, session_scope
    from cairn.db.base import utcnow
    from cairn.processing import service
    from cairn.processing._runtime import Runtime
    from cairn.processing._scheduler import Scheduler
    from cairn.processing.builtin import REGION_STATISTICS
    from cairn.processing.models import DataFile, DataItem

    with scratch_dir() as root:
        settings = Settings(data_dir=root / "data", storage_credits_per_gib_day=0)
        engine = make_engine(settings)
        migrate(engine)
        factory = make_sessionmaker(engine)
        uow = UnitOfWork(factory)
        with session_scope(factory) as session:
            org = accounts.create_organisation(session, name="Bench")
            user = accounts.create_user(
                session, email="bench@example.org", password="Bench-password-1"
            )
            accounts.add_member(session, user=user, organisation=org, privilege="manage")
            accounts.grant_credits(session, organisation=org, amount=10**9, reason="bench")
            org_id, user_id = org.id, user.id
            item = DataItem(organisation_id=org_id, name="R", file_type="GeoJSON")
            session.add(item)
            session.flush()
            session.add(
                DataFile(
                    organisation_id=org_id,
                    data_id=item.id,
                    file_name="r.geojson",
                    file_type="GeoJSON",
                    state="analysed",
                    sha256="0" * 64,
                    size=10,
                )
            )
            data_id = item.id
        runtime = Runtime(
            uow=uow, blobs=open_blob_store(settings.blob_url), settings=settings,
            executor=DoneAtOnce(),
        )  # fmt: skip

        def processes(count: int, **schedule: Any) -> list[str]:
            made = []
            with session_scope(factory) as session:
                actor = accounts.authenticate_user(
                    session, accounts.find_user(session, user_id=user_id)
                )
                for n in range(count):
                    changes = service.ProcessChanges(name=f"P{n}", inputs={1: data_id}, **schedule)
                    made.append(
                        service.create_process(
                            session, actor, org_id, service_id=REGION_STATISTICS.id,
                            changes=changes,
                        ).id
                    )  # fmt: skip
            return made

        def actor() -> Any:
            with uow.read() as session:
                return accounts.authenticate_user(
                    session, accounts.find_user(session, user_id=user_id)
                )

        def direct() -> float:
            ids = processes(args.runs)
            who = actor()
            start = time.perf_counter()
            for process_id in ids:
                runtime.execute(who, org_id, process_id)
            return time.perf_counter() - start

        def scheduled() -> float:
            due = utcnow() + timedelta(hours=1)
            ids = processes(args.runs, repeat_start=due)
            who = actor()
            for process_id in ids:
                with uow.transaction() as session:
                    service.arm_schedule(session, who, org_id, process_id, now=utcnow())
            scheduler = Scheduler(
                uow=uow, settings=settings, runtime=lambda: runtime, clock=lambda: due
            )
            start = time.perf_counter()
            started = scheduler.run_due(due)
            took = time.perf_counter() - start
            assert len(started) == args.runs, started
            return took

        direct()  # warm up
        cairn_totals, baseline_totals = [], []
        for round_number in range(args.rounds):
            order = [scheduled, direct] if round_number % 2 == 0 else [direct, scheduled]
            for fn in order:
                took = fn()
                (cairn_totals if fn is scheduled else baseline_totals).append(took)
        per_cairn = [t / args.runs * 1000 for t in cairn_totals]
        per_base = [t / args.runs * 1000 for t in baseline_totals]
        overhead = [(c - b) for c, b in zip(per_cairn, per_base, strict=True)]
        detail(f"runs per round {args.runs}, rounds {args.rounds} (alternating)")
        detail(
            "scheduled start per run: "
            + ", ".join(f"{v:.1f}" for v in per_cairn)
            + f" ms (median {statistics.median(per_cairn):.1f})"
        )
        detail(
            "direct execute per run: "
            + ", ".join(f"{v:.1f}" for v in per_base)
            + f" ms (median {statistics.median(per_base):.1f})"
        )
        detail(
            f"scheduler overhead per execution: median {statistics.median(overhead):.1f} ms, "
            f"spread {min(overhead):.1f} to {max(overhead):.1f} ms (goal <= 50 ms)"
        )
        report("scheduler", min(cairn_totals), min(baseline_totals))


if __name__ == "__main__":
    main()
