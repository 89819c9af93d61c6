"""The processing service on both databases: privileges, validation, credits and their race."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cairn.accounts import service as accounts
from cairn.accounts.service import Actor
from cairn.db import UnitOfWork, make_sessionmaker
from cairn.errors import Conflict, Forbidden, Invalid, NotFound, PaymentRequired
from cairn.processing import service
from cairn.processing.builtin import ELEVATION, REGION_STATISTICS
from cairn.processing.models import DataFile, Execution
from cairn.processing.ssd import OptionSpec, evaluate_price, parse_option
from tests.concurrency import race
from tests.factories import make_org, make_user


def _actor(session: Session, privilege: str = "manage", credits: int = 0) -> Actor:
    org = make_org(session)
    user = make_user(session)
    accounts.add_member(session, user=user, organisation=org, privilege=privilege)
    if credits:
        accounts.grant_credits(session, organisation=org, amount=credits, reason="test")
    return accounts.authenticate_user(session, user)


def _org(actor: Actor) -> str:
    return next(iter(actor.privileges))


def _analysed_item(session: Session, actor: Actor, file_type: str = "GeoJSON") -> str:
    org = _org(actor)
    item = service.create_data(session, actor, org, name="Region")
    file = service.add_file(
        session, actor, org, item.id, file_name="r.geojson", file_type=file_type
    )
    file.state, file.size, file.sha256 = "analysed", 10, "0" * 64
    session.flush()
    return item.id


def test_another_organisations_objects_are_not_found(session: Session) -> None:
    owner, stranger = _actor(session), _actor(session)
    data_id = _analysed_item(session, owner)
    with pytest.raises(NotFound):
        service.get_data(session, stranger, _org(owner), data_id)
    with pytest.raises(NotFound):
        service.get_data(session, stranger, _org(stranger), data_id)


def test_view_only_members_see_but_cannot_create(session: Session) -> None:
    owner = _actor(session)
    viewer_user = make_user(session)
    org = accounts.get_organisation(session, owner, _org(owner))
    accounts.add_member(session, user=viewer_user, organisation=org, privilege="view")
    viewer = accounts.authenticate_user(session, viewer_user)
    data_id = _analysed_item(session, owner)
    assert service.get_data(session, viewer, org.id, data_id).id == data_id
    with pytest.raises(Forbidden):
        service.create_data(session, viewer, org.id, name="No")
    with pytest.raises(Forbidden):
        service.delete_data(session, viewer, org.id, data_id)


def test_a_data_item_in_use_cannot_be_deleted(session: Session) -> None:
    actor = _actor(session)
    data_id = _analysed_item(session, actor)
    changes = service.ProcessChanges(name="P", inputs={1: data_id})
    process = service.create_process(
        session, actor, _org(actor), service_id=REGION_STATISTICS.id, changes=changes
    )
    with pytest.raises(Conflict, match="input of process 'P'"):
        service.delete_data(session, actor, _org(actor), data_id)
    assert process.price == 1


def test_a_data_item_holds_files_of_one_type(session: Session) -> None:
    actor = _actor(session)
    data_id = _analysed_item(session, actor)
    with pytest.raises(Invalid, match="one type"):
        service.add_file(session, actor, _org(actor), data_id, file_name="t.csv", file_type="CSV")
    with pytest.raises(Invalid, match="Unknown file type"):
        service.add_file(session, actor, _org(actor), data_id, file_name="x", file_type="EXE")
    with pytest.raises(Invalid, match="path"):
        service.add_file(
            session, actor, _org(actor), data_id, file_name="../x.geojson", file_type="GeoJSON"
        )


def test_pending_uploads_expire_into_an_incomplete_state(session: Session) -> None:
    actor = _actor(session)
    org = _org(actor)
    item = service.create_data(session, actor, org, name="Never")
    file = service.add_file(
        session, actor, org, item.id, file_name="r.geojson", file_type="GeoJSON"
    )
    file.upload_expires_at = file.created_at  # already past
    (listed,) = service.list_files(session, actor, org, item.id)
    assert listed.state == "incomplete" and "expired" in (listed.error or "")
    service.delete_data(session, actor, org, item.id)
    assert session.get(DataFile, file.id) is None


def test_too_few_credits_charge_nothing(session: Session) -> None:
    actor = _actor(session, credits=0)
    org = _org(actor)
    data_id = _analysed_item(session, actor)
    process = service.create_process(
        session,
        actor,
        org,
        service_id=ELEVATION.id,
        changes=service.ProcessChanges(name="E", inputs={1: data_id}),
    )
    with pytest.raises(PaymentRequired):
        service.prepare_execution(session, actor, org, process.id)
    assert accounts.credit_balance(session, org) == 0
    assert service.list_executions(session, actor, org, process.id) == []


def _processes(
    session: Session, actor: Actor, count: int, service_id: str = REGION_STATISTICS.id
) -> list[str]:
    """``count`` processes of ``service_id`` on one analysed region, ready to execute."""
    data_id = _analysed_item(session, actor)
    return [
        service.create_process(
            session,
            actor,
            _org(actor),
            service_id=service_id,
            changes=service.ProcessChanges(name=f"P{n}", inputs={1: data_id}),
        ).id
        for n in range(count)
    ]


@pytest.fixture
def committed(engine: Engine) -> Iterator[UnitOfWork]:
    """Transactions that really commit (for races), every table emptied afterwards."""
    from tests.conftest import _wipe

    yield UnitOfWork(make_sessionmaker(engine))
    _wipe(engine)


def test_two_executes_racing_for_one_credit_charge_once(committed: UnitOfWork) -> None:
    with committed.transaction() as session:
        actor = _actor(session, credits=1)
        org = _org(actor)
        ids = _processes(session, actor, 2)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def execute(process_id: str) -> None:
        barrier.wait()
        try:
            with committed.transaction() as session:
                service.prepare_execution(session, actor, org, process_id)
            outcomes.append("ran")
        except PaymentRequired:
            outcomes.append("402")

    threads = [threading.Thread(target=execute, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["402", "ran"]
    with committed.transaction() as session:
        assert accounts.credit_balance(session, org) == 0
        assert len(session.query(Execution).all()) == 1


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (OptionSpec("b", "boolean"), "True", True),
        (OptionSpec("n", "numeric", validation="min=1;max=3"), "2.5", 2.5),
        (OptionSpec("c", "constrained", validation="values=a,b;names=A,B"), "b", "b"),
        (OptionSpec("d", "datetime", nullable=True), None, None),
    ],
)
def test_options_parse_by_type(spec: OptionSpec, value: str | None, expected: object) -> None:
    assert parse_option(spec, value) == expected


def test_option_values_outside_their_constraint_are_invalid() -> None:
    with pytest.raises(Invalid, match="one of a, b"):
        parse_option(OptionSpec("c", "constrained", validation="values=a,b"), "z")
    with pytest.raises(Invalid, match="boolean"):
        parse_option(OptionSpec("b", "boolean"), "maybe")
    with pytest.raises(Invalid, match="datetime"):
        parse_option(OptionSpec("d", "datetime", validation="format=%Y-%m-%d"), "soon")


def test_price_expressions_cannot_run_code() -> None:
    assert evaluate_price("1 + resolution / 100", {"resolution": 250}) == 4
    assert evaluate_price("max(1, inputs * 2)", {"inputs": 1}) == 2
    with pytest.raises(Invalid):
        evaluate_price("__import__('os').system('true')", {})


def test_a_change_racing_the_first_execution_never_rewrites_what_it_ran(
    committed: UnitOfWork,
) -> None:
    """Five rounds of an update (new options and dispatchers) against an execute of one
    process: either the change lands first and the execution runs with it, or it is refused;
    the executed process always holds what its execution ran with."""
    with committed.transaction() as session:
        actor = _actor(session, credits=5)
        org = _org(actor)
        ids = _processes(session, actor, 5, service_id=ELEVATION.id)
    local = {"name": "Local folder", "options": {"folder": "raced"}}
    for process_id in ids:

        def execute(process_id: str = process_id) -> None:
            with committed.transaction() as session:
                service.prepare_execution(session, actor, org, process_id)

        def change(process_id: str = process_id) -> None:
            with committed.transaction() as session:
                service.update_process(
                    session,
                    actor,
                    org,
                    process_id,
                    service.ProcessChanges(options={"resolution": "50"}, dispatchers=[local]),
                )

        failed = race(execute, change)
        assert all(isinstance(e, Conflict) for e in failed), failed
        with committed.transaction() as session:
            process = service.get_process(session, actor, org, process_id)
            (execution,) = service.list_executions(session, actor, org, process_id)
            assert process.options == execution.options
            changed = process.options["resolution"] == "50"
            assert bool(process.dispatchers) == changed
            assert changed == (not failed)


def test_a_change_read_before_the_first_execution_is_refused_after_it(
    committed: UnitOfWork, engine: Engine
) -> None:
    """The interleaving the race above may or may not hit, made exact: the change has read the
    process, the execution commits, then the change is applied: it must see the execution."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): the change would hold the lock")
    with committed.transaction() as session:
        actor = _actor(session, credits=1)
        org = _org(actor)
        (process_id,) = _processes(session, actor, 1, service_id=ELEVATION.id)
    with committed.transaction() as changing:
        # Read (and held, as a request holds it) before the execution commits.
        read = service.get_process(changing, actor, org, process_id)
        with committed.transaction() as executing:
            service.prepare_execution(executing, actor, org, process_id)
        with pytest.raises(Conflict, match="executing"):
            service.update_process(
                changing,
                actor,
                org,
                process_id,
                service.ProcessChanges(options={"resolution": "50"}),
            )
        assert read.has_executed  # the change saw the execution
