"""Schedules on both databases: the SDK's fields, the leader's lease, claiming each due run
once (across a restart, and with two schedulers racing), charging, and skipping when short.

The scheduler is driven with an injected clock (``Scheduler(clock=...)``) and ``tick()``, so
nothing sleeps until a run is due; executions run on the app's real engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cairn.accounts.models import CreditEntry
from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.errors import Invalid
from cairn.processing import _schedule as schedules
from cairn.processing._runtime import Runtime
from cairn.processing._scheduler import LEASE, Scheduler, acquire_lease
from cairn.processing.models import Execution, Process
from tests.concurrency import race
from tests.factories import Member
from tests.notices import Collecting, registered
from tests.processing.fusion_helpers import (
    create_process,
    org_path,
    upload_data,
    wait_execution,
)


@pytest.fixture
def notices() -> Iterator[Collecting]:
    collecting = Collecting()
    with registered(collecting):
        yield collecting


class Clock:
    """The scheduler's time, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _scheduler(app: Any, clock: Clock, holder: str) -> Scheduler:
    state = app.state
    return Scheduler(
        uow=UnitOfWork(state.sessionmaker),
        settings=state.settings,
        runtime=lambda: Runtime.for_app(state),
        clock=clock,
        holder=holder,
    )


def _scheduled(
    client: TestClient, member: Member, **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Region statistics process (price 1) with a schedule, created and executed through
    /fusion as the SDK does; answers the created and the executed process."""
    data_id = upload_data(client, member)
    created = create_process(client, member, data_id)
    body = {f"Process[{k}]": v for k, v in fields.items()}
    patched = client.patch(
        f"{org_path(member)}/processes/{created['id']}", headers=member.headers, json=body
    )
    assert patched.status_code == 200, patched.text
    executed = client.post(
        f"{org_path(member)}/processes/{created['id']}/execute", headers=member.headers
    )
    assert executed.status_code == 200, executed.text
    return created, executed.json()["model"]


def _executions(app: Any, process_id: str) -> list[Execution]:
    with UnitOfWork(app.state.sessionmaker).read() as session:
        return list(
            session.scalars(
                select(Execution)
                .where(Execution.process_id == process_id)
                .order_by(Execution.started_at)
            )
        )


def _process(app: Any, process_id: str) -> Process:
    with UnitOfWork(app.state.sessionmaker).read() as session:
        found = session.get(Process, process_id)
        assert found is not None
        session.expunge(found)
        return found


def _charges(app: Any, organisation_id: str) -> list[int]:
    with UnitOfWork(app.state.sessionmaker).read() as session:
        return [
            e.amount
            for e in session.scalars(
                select(CreditEntry).where(
                    CreditEntry.organisation_id == organisation_id,
                    CreditEntry.reason.startswith("Scheduled execution"),
                )
            )
        ]


def _wait_all(client: TestClient, member: Member, executions: Sequence[Execution]) -> None:
    for execution in executions:
        assert wait_execution(client, member, execution.id)["success"] is True


def test_every_minute_three_times_across_a_restart_each_charged_once(
    app: Any, client: TestClient, make_member: Callable[..., Member], settings: Settings
) -> None:
    member = make_member(credits=10)
    created, armed = _scheduled(
        client,
        member,
        run_type="run_schedule",
        repeat_gap='{"minutes": 1}',
        repeat_count=3,
    )
    assert armed["process_status"] == "execute" and armed["next_due_at"]
    first = datetime.fromisoformat(armed["next_due_at"])
    clock = Clock(first - timedelta(seconds=30))
    one = _scheduler(app, clock, "server-1")
    assert one.tick() == []  # not due yet
    clock.now = first
    started = one.tick()
    assert len(started) == 1
    assert one.tick() == []  # the same due run is not started twice
    _wait_all(client, member, _executions(app, created["id"]))
    assert _process(app, created["id"]).process_status == "execute"  # runs to come
    one.stop()  # the server stops: its lease is given up

    # The restarted server: a fresh app (runtime, recovery) and scheduler on the same database.
    from cairn.api import create_app

    Runtime.for_app(app.state).shutdown()
    again = create_app(settings)
    try:
        two = _scheduler(again, clock, "server-2")
        clock.now = first + timedelta(seconds=59)
        assert two.tick() == []
        clock.now = first + timedelta(minutes=1)
        assert len(two.tick()) == 1
        _wait_all(client, member, _executions(again, created["id"]))
        clock.now = first + timedelta(minutes=2, seconds=5)
        assert len(two.tick()) == 1
        clock.now = first + timedelta(minutes=10)
        assert two.tick() == []  # three runs done: the schedule has ended
        runs = _executions(again, created["id"])
        assert len(runs) == 3
        _wait_all(client, member, runs)
        assert _charges(again, member.organisation_id) == [-1, -1, -1]
        process = _process(again, created["id"])
        assert process.runs_done == 3 and process.next_due_at is None
        assert process.process_status == "stop"
    finally:
        Runtime.for_app(again.state).shutdown()
        again.state.engine.dispose()


def test_two_servers_racing_start_the_due_run_once(
    app: Any, client: TestClient, make_member: Callable[..., Member], settings: Settings
) -> None:
    from cairn.api import create_app

    member = make_member(credits=10)
    created, armed = _scheduled(
        client, member, run_type="run_schedule", repeat_gap='{"hours": 1}', repeat_count=2
    )
    clock = Clock(datetime.fromisoformat(armed["next_due_at"]))
    # Two servers (two apps: engines, runtimes) leading at once, as when a lease changes
    # hands mid-round: each looks for due runs itself.
    other = create_app(settings)
    try:
        one, two = _scheduler(app, clock, "a"), _scheduler(other, clock, "b")
        Runtime.for_app(other.state)  # started before the race, as a running server's is
        started: list[list[str]] = []
        errors = race(
            lambda: started.append(one.run_due(clock.now)),
            lambda: started.append(two.run_due(clock.now)),
        )
        assert errors == []
        assert sorted(len(s) for s in started) == [0, 1]
        runs = _executions(app, created["id"])
        assert len(runs) == 1
        _wait_all(client, member, runs)
        assert _charges(app, member.organisation_id) == [-1]
        assert _process(app, created["id"]).runs_done == 1
    finally:
        Runtime.for_app(other.state).shutdown()
        other.state.engine.dispose()


def test_only_the_lease_holder_leads_until_it_gives_up(app: Any, settings: Settings) -> None:
    uow = UnitOfWork(app.state.sessionmaker)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    ttl = timedelta(seconds=settings.scheduler_lease)
    assert acquire_lease(uow, name=LEASE, holder="a", now=now, ttl=ttl)
    assert not acquire_lease(uow, name=LEASE, holder="b", now=now, ttl=ttl)
    assert acquire_lease(uow, name=LEASE, holder="a", now=now + ttl / 2, ttl=ttl)  # renewed
    assert not acquire_lease(uow, name=LEASE, holder="b", now=now + ttl, ttl=ttl)
    # Not renewed: it expires and the other server takes over.
    assert acquire_lease(uow, name=LEASE, holder="b", now=now + ttl * 2, ttl=ttl)
    results = []
    race(
        lambda: results.append(acquire_lease(uow, name="other", holder="x", now=now, ttl=ttl)),
        lambda: results.append(acquire_lease(uow, name="other", holder="y", now=now, ttl=ttl)),
    )
    assert sorted(results) == [False, True]


def test_a_run_the_credits_cannot_pay_is_skipped_with_a_notice(
    app: Any,
    client: TestClient,
    make_member: Callable[..., Member],
    notices: Collecting,
    caplog: pytest.LogCaptureFixture,
) -> None:
    member = make_member(credits=1)  # one run of price 1
    created, armed = _scheduled(
        client, member, run_type="run_schedule", repeat_gap='{"days": 1}', repeat_count=2
    )
    first = datetime.fromisoformat(armed["next_due_at"])
    clock = Clock(first)
    scheduler = _scheduler(app, clock, "a")
    assert len(scheduler.tick()) == 1
    _wait_all(client, member, _executions(app, created["id"]))
    clock.now = first + timedelta(days=1)
    with caplog.at_level(logging.WARNING, logger="cairn.processing._scheduler"):
        assert scheduler.tick() == []
    assert "skipped: Executing costs 1 credits and the organisation holds" in caplog.text
    skipped = [n for n in notices.got if n.kind == "schedule.skipped"]
    assert len(skipped) == 1 and "costs 1 credits" in skipped[0].text
    assert len(_executions(app, created["id"])) == 1
    assert _charges(app, member.organisation_id) == [-1]
    process = _process(app, created["id"])
    assert process.runs_done == 1  # a skipped run does not count
    assert process.next_due_at == first + timedelta(days=2)


def test_a_run_once_at_a_time_runs_then_stops_and_can_run_again(
    app: Any, client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member(credits=10)
    later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    created, armed = _scheduled(client, member, run_type="run_once", repeat_start=later)
    assert armed["process_status"] == "execute" and armed["repeat_start"] == armed["next_due_at"]
    # wait_for_next_execution waits: no execution started at or after repeat_start yet.
    assert armed["has_executions"] == ""
    clock = Clock(datetime.fromisoformat(armed["next_due_at"]))
    scheduler = _scheduler(app, clock, "a")
    assert len(scheduler.tick()) == 1
    _wait_all(client, member, _executions(app, created["id"]))
    shown = client.get(
        f"{org_path(member)}/processes/{created['id']}", headers=member.headers
    ).json()["model"]
    assert shown["process_status"] == "stop"
    newest = shown["executions"][-1]
    assert newest["started_at"] >= shown["repeat_start"]  # what wait_for_next_execution reads
    again = client.post(
        f"{org_path(member)}/processes/{created['id']}/execute", headers=member.headers
    )
    assert again.status_code == 200, again.text  # runs now: its start has passed
    runs = _executions(app, created["id"])
    assert len(runs) == 2
    _wait_all(client, member, runs)


def test_a_stopped_schedule_starts_nothing(
    app: Any, client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member(credits=10)
    created, armed = _scheduled(client, member, run_type="run_schedule", repeat_gap='{"days": 1}')
    stopped = client.post(
        f"{org_path(member)}/processes/{created['id']}/stop", headers=member.headers
    )
    assert stopped.status_code == 200
    assert stopped.json()["model"]["next_due_at"] is None
    clock = Clock(datetime.fromisoformat(armed["next_due_at"]) + timedelta(days=5))
    assert _scheduler(app, clock, "a").tick() == []
    assert _executions(app, created["id"]) == []


# --- bad input ---------------------------------------------------------------------------------


def _native_process(client: TestClient, member: Member) -> str:
    data_id = upload_data(client, member)
    return str(create_process(client, member, data_id)["id"])


def test_a_schedule_in_the_past_or_ending_before_it_starts_is_refused(
    app: Any, client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member(credits=10)
    process_id = _native_process(client, member)
    url = f"/api/v1/processing/organisations/{member.organisation_id}/processes/{process_id}"
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    soon = datetime.now(UTC) + timedelta(hours=1)
    cases = [
        ({"run_type": "run_once", "repeat_start": past}, "is in the past"),
        (
            {
                "run_type": "run_schedule",
                "repeat_gap": {"hours": 1},
                "repeat_start": soon.isoformat(),
                "repeat_end": (soon - timedelta(minutes=5)).isoformat(),
            },
            "is before repeat_start",
        ),
        (
            {"run_type": "run_schedule", "repeat_gap": {"hours": 1}, "repeat_end": past},
            "in the past",
        ),
        ({"run_type": "run_schedule"}, "needs a repeat_gap"),
        ({"run_type": "run_schedule", "cron": "every tuesday"}, "not a cron expression"),
        ({"run_type": "run_schedule", "repeat_gap": {"seconds": 5}}, "at least 1 minute"),
        ({"run_type": "sometimes"}, "run_type is one of"),
    ]
    for body, message in cases:
        answer = client.patch(url, headers=member.headers, json=body)
        assert 400 <= answer.status_code < 500, (body, answer.text)
        assert message in answer.text, (body, answer.text)
    shown = client.get(url, headers=member.headers).json()
    assert shown["run_type"] == "run_once" and shown["repeat_end"] is None  # nothing kept
    # The same through /fusion, as the SDK sends it.
    answer = client.patch(
        f"{org_path(member)}/processes/{process_id}",
        headers=member.headers,
        json={
            "Process[run_type]": "run_schedule",
            "Process[repeat_gap]": '{"days": 1}',
            "Process[repeat_end]": past,
        },
    )
    assert 400 <= answer.status_code < 500 and "in the past" in answer.text


def test_a_cron_schedule_on_the_native_api(
    app: Any, client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member(credits=10)
    process_id = _native_process(client, member)
    url = f"/api/v1/processing/organisations/{member.organisation_id}/processes/{process_id}"
    answer = client.patch(
        url, headers=member.headers, json={"run_type": "run_schedule", "cron": "30 4 * * *"}
    )
    assert answer.status_code == 200, answer.text
    armed = client.post(url + "/execute", headers=member.headers)
    assert armed.status_code == 201, armed.text
    due = datetime.fromisoformat(armed.json()["next_due_at"])
    assert (due.hour, due.minute, due.second) == (4, 30, 0)
    assert timedelta(0) < due - datetime.now(UTC) <= timedelta(days=1)


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ('{"days": 1}', {"days": 1}),
        ("relativedelta(days=+1)", {"days": 1}),
        ("relativedelta(months=+1, hours=+2)", {"months": 1, "hours": 2}),
        ({"weeks": 2}, {"weeks": 2}),
        ("relativedelta()", None),
        (None, None),
    ],
)
def test_repeat_gap_is_read_in_every_form_the_sdk_sends(given: Any, expected: Any) -> None:
    assert schedules.parse_gap(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ('{"hours": 2}', 7200),
        ("datetime.timedelta(seconds=7200)", 7200),
        ("1 day, 2:00:00", 93600),
        ("0:00:00", None),
        (90, 90),
    ],
)
def test_repeat_offset_is_read_in_every_form_the_sdk_sends(given: Any, expected: Any) -> None:
    assert schedules.parse_offset(given) == expected


@pytest.mark.parametrize(
    "given",
    ["relativedelta(days=1.5)", '{"fortnights": 1}', "__import__('os')", '{"days": -1}', True],
)
def test_a_gap_that_is_no_duration_is_refused(given: Any) -> None:
    with pytest.raises(Invalid):
        schedules.parse_gap(given)


def test_runs_missed_while_no_server_ran_are_merged_into_one() -> None:
    due = datetime(2030, 1, 1, tzinfo=UTC)
    following = schedules.next_due(
        run_type="run_schedule",
        due=due,
        gap={"hours": 1},
        cron=None,
        end=None,
        count=0,
        runs_done=1,
        now=due + timedelta(hours=5, minutes=30),
    )
    assert following == due + timedelta(hours=6)


def test_a_run_whose_creator_lost_the_execute_privilege_is_skipped(
    app: Any, client: TestClient, make_member: Callable[..., Member], notices: Collecting
) -> None:
    from cairn.accounts.models import Membership

    member = make_member(credits=10)
    created, armed = _scheduled(client, member, run_type="run_schedule", repeat_gap='{"days": 1}')
    with UnitOfWork(app.state.sessionmaker).transaction() as session:
        for membership in session.scalars(
            select(Membership).where(Membership.user_id == member.user_id)
        ):
            membership.privilege = "view"
    clock = Clock(datetime.fromisoformat(armed["next_due_at"]))
    assert _scheduler(app, clock, "a").tick() == []
    assert _executions(app, created["id"]) == []
    assert _charges(app, member.organisation_id) == []
    (skipped,) = [n for n in notices.got if n.kind == "schedule.skipped"]
    assert "execute" in skipped.text and skipped.user_ids == [member.user_id]
    process = _process(app, created["id"])
    assert process.next_due_at == clock.now + timedelta(days=1)  # the schedule goes on
