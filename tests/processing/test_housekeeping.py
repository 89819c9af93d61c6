"""The daily jobs on both databases: storage charged once a day from the bytes stored, expired
executions deleted after a warning, an organisation in debt past its grace period losing its
outputs after a warning, uploads refused in debt, partial charges for aborted executions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cairn.accounts import service as accounts
from cairn.accounts.models import CreditEntry, Organisation
from cairn.accounts.service import Actor
from cairn.config import Settings
from cairn.db import UnitOfWork, make_sessionmaker
from cairn.errors import PaymentRequired
from cairn.processing import _housekeeping as housekeeping
from cairn.processing import service
from cairn.processing.builtin import CLOUD_CLASSIFICATION
from cairn.processing.models import DailyRun, DataFile, DataItem, Execution
from tests.concurrency import race
from tests.factories import Member, make_org, make_user
from tests.notices import Collecting, registered
from tests.processing.fusion_helpers import create_process, execute, upload_data

GIB = 1 << 30


@pytest.fixture
def notices() -> Iterator[Collecting]:
    collecting = Collecting()
    with registered(collecting):
        yield collecting


@pytest.fixture
def uow(engine: Engine) -> Iterator[UnitOfWork]:
    yield UnitOfWork(make_sessionmaker(engine))
    from tests.conftest import _wipe

    _wipe(engine)


def _lab(uow: UnitOfWork, credits: int = 0) -> tuple[str, str]:
    with uow.transaction() as session:
        org = make_org(session)
        user = make_user(session)
        accounts.add_member(session, user=user, organisation=org, privilege="manage")
        if credits:
            accounts.grant_credits(session, organisation=org, amount=credits, reason="test")
        return org.id, user.id


def _actor(session: Session, user_id: str) -> Actor:
    user = accounts.find_user(session, user_id=user_id)
    return accounts.authenticate_user(session, user)


def _file(
    session: Session, org: str, *, size: int, sha: str, execution_id: str | None = None
) -> str:
    item = DataItem(
        organisation_id=org, name="item", file_type="GeoJSON", execution_id=execution_id
    )
    session.add(item)
    session.flush()
    session.add(
        DataFile(
            organisation_id=org,
            data_id=item.id,
            file_name="f.geojson",
            file_type="GeoJSON",
            state="analysed",
            sha256=sha * 64,
            size=size,
        )
    )
    session.flush()
    return item.id


def _execution(session: Session, org: str, user_id: str, *, expiry: datetime) -> str:
    from cairn.processing.models import Process

    process = Process(
        organisation_id=org,
        service_id="s",
        ssd_id="s",
        name="P",
        options={},
        inputs={},
        created_by=user_id,
    )
    session.add(process)
    session.flush()
    execution = Execution(
        organisation_id=org,
        process_id=process.id,
        service_id="s",
        options={},
        inputs={},
        ended_at=expiry - timedelta(days=10),
        delete_expiry=expiry,
    )
    session.add(execution)
    session.flush()
    return execution.id


def _ledger(uow: UnitOfWork, org: str, prefix: str) -> list[int]:
    with uow.read() as session:
        return [
            e.amount
            for e in session.scalars(
                select(CreditEntry).where(
                    CreditEntry.organisation_id == org, CreditEntry.reason.startswith(prefix)
                )
            )
        ]


def test_storage_is_charged_once_a_day_per_started_gib(uow: UnitOfWork, settings: Settings) -> None:
    org, _ = _lab(uow, credits=100)
    with uow.transaction() as session:
        _file(session, org, size=GIB + 1, sha="a")  # an upload
        copy = _file(session, org, size=GIB + 1, sha="a")  # the same blob again: counts once
        _file(session, org, size=10, sha="b", execution_id="e1")  # an output
        assert copy
    day = datetime(2030, 5, 1, 23, 0, tzinfo=UTC)
    # (Organisations other tests left in the database are charged too: look at this one.)
    assert housekeeping.charge_storage(uow, settings, day=day.date())[org] == 2
    assert housekeeping.charge_storage(uow, settings, day=day.date()) == {}  # same day: nothing
    # Two leaders the next day at once: charged once.
    results: list[dict[str, int]] = []
    errors = race(
        lambda: results.append(
            housekeeping.charge_storage(uow, settings, day=day.date() + timedelta(days=1))
        ),
        lambda: results.append(
            housekeeping.charge_storage(uow, settings, day=day.date() + timedelta(days=1))
        ),
    )
    assert errors == []
    assert sorted(r.get(org, 0) for r in results) == [0, 2]
    assert _ledger(uow, org, "Storage on") == [-2, -2]
    with uow.read() as session:
        runs = session.scalars(select(DailyRun).where(DailyRun.organisation_id == org)).all()
        assert {r.detail["bytes"] for r in runs if r.detail} == {GIB + 11}


def test_expired_executions_are_deleted_after_a_warning(
    uow: UnitOfWork, settings: Settings, notices: Collecting
) -> None:
    org, user = _lab(uow)
    now = datetime(2030, 5, 1, tzinfo=UTC)
    with uow.transaction() as session:
        soon = _execution(session, org, user, expiry=now + timedelta(days=1))
        later = _execution(session, org, user, expiry=now + timedelta(days=30))
        output = _file(session, org, size=5, sha="c", execution_id=soon)
    mine = {soon, later}

    def delete_expired(at: datetime) -> tuple[list[str], list[str]]:
        """Only this test's executions: others' rows may share the database."""
        warned, expired = housekeeping.delete_expired(uow, settings, now=at)
        return [e for e in warned if e in mine], [e for e in expired if e in mine]

    warned, expired = delete_expired(now)
    assert (warned, expired) == ([soon], [])
    assert [n.kind for n in notices.got if n.organisation_id == org] == ["execution.expiring"]
    assert delete_expired(now + timedelta(hours=1)) == ([], [])
    # The user moves the expiry later: the old warning no longer counts.
    with uow.transaction() as session:
        session.get(Execution, soon).delete_expiry = now + timedelta(days=20)  # type: ignore[union-attr]
    assert delete_expired(now + timedelta(days=2)) == ([], [])
    warned, _ = delete_expired(now + timedelta(days=19))
    assert warned == [soon]
    warned, expired = delete_expired(now + timedelta(days=21))
    assert expired == [soon]
    with uow.read() as session:
        assert session.get(Execution, soon) is None
        assert session.get(DataItem, output) is None  # its outputs went with it
        assert session.get(Execution, later) is not None
    assert len([n for n in notices.got if n.organisation_id == org]) == 2


def test_an_organisation_in_debt_past_its_grace_loses_its_outputs_after_a_warning(
    uow: UnitOfWork, settings: Settings, notices: Collecting
) -> None:
    org, user = _lab(uow, credits=1)
    now = datetime(2030, 5, 1, tzinfo=UTC)
    with uow.transaction() as session:
        ended = _execution(session, org, user, expiry=now + timedelta(days=300))
        output = _file(session, org, size=5, sha="d", execution_id=ended)
        upload = _file(session, org, size=5, sha="e")
        organisation = session.get(Organisation, org)
        assert organisation is not None
        accounts.grant_credits(session, organisation=organisation, amount=-6, reason="charge")
    warned, deleted = housekeeping.settle_debts(uow, settings, now=now)
    assert (warned, deleted) == ([org], {})
    assert notices.got[-1].kind == "credits.negative" and "-5" in notices.got[-1].text
    grace = settings.credit_grace_period
    assert housekeeping.settle_debts(uow, settings, now=now + grace / 2) == ([], {})
    assert housekeeping.settle_debts(uow, settings, now=now + grace) == ([], {org: 1})
    with uow.read() as session:
        assert session.get(DataItem, output) is None
        assert session.get(DataItem, upload) is not None  # uploads stay
    assert [n.kind for n in notices.got] == ["credits.negative", "credits.negative"]
    # Uploads are refused while the balance is negative.
    with uow.transaction() as session:
        actor = _actor(session, user)
        item = service.create_data(session, actor, org, name="more")
        item_id = item.id
    with pytest.raises(PaymentRequired, match="balance is -5"), uow.transaction() as session:
        service.add_file(
            session,
            _actor(session, user),
            org,
            item_id,
            file_name="x.geojson",
            file_type="GeoJSON",
        )
    # Topped up: the record clears.
    with uow.transaction() as session:
        organisation = session.get(Organisation, org)
        assert organisation is not None
        accounts.grant_credits(session, organisation=organisation, amount=10, reason="top up")
    assert housekeeping.settle_debts(uow, settings, now=now + grace * 2) == ([], {})


def test_an_aborted_execution_pays_only_for_the_components_that_finished(
    uow: UnitOfWork,
) -> None:
    from cairn.processing.models import Component

    org, user = _lab(uow, credits=10)
    with uow.transaction() as session:
        execution_id = _execution(session, org, user, expiry=datetime(2031, 1, 1, tzinfo=UTC))
        execution = session.get(Execution, execution_id)
        assert execution is not None
        execution.price, execution.success = 5, False
        for index, success in enumerate([True, False, None]):
            session.add(
                Component(
                    organisation_id=org,
                    execution_id=execution_id,
                    process_id=execution.process_id,
                    service_id="s",
                    chain_index=index,
                    name=f"c{index}",
                    inputs=[],
                    outputs=[],
                    success=success,
                )
            )
        session.flush()
        assert service.refund_unrun(session, execution) == 3  # 1 of 3 ran: 2 of 5 kept
        assert execution.price == 2
        assert service.refund_unrun(session, execution) == 0  # nothing twice
    assert _ledger(uow, org, "Refund") == [3]


def test_a_failed_execution_on_the_engine_is_refunded_its_unrun_share(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member(credits=5)
    region_id = upload_data(client, member)
    process = create_process(
        client,
        member,
        region_id,
        service_id=CLOUD_CLASSIFICATION.id,
        options=[{"name": "latest_date", "value": "false"}],  # no date: its first step fails
    )
    execution = execute(client, member, process["id"])
    assert execution["success"] is False
    credits = client.get(
        f"/api/v1/organisations/{member.organisation_id}/credits", headers=member.headers
    ).json()
    reasons = [(e["amount"], e["reason"]) for e in credits["items"]]
    assert (1, f"Refund: 2 of 2 component(s) of execution {execution['id']} did not run") in reasons
    assert credits["balance"] == 5  # charged 1 when it started, all of it back
