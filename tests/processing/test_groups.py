"""Split groups (issue #16): a region larger than its service takes runs as one execution per
slice plus the aggregator, on real workers, through `/fusion` and the native API, on SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import box, shape
from shapely.ops import unary_union
from sqlalchemy import select

from cairn.accounts.models import CreditEntry
from cairn.blobs import BlobStore
from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.db.base import utcnow
from cairn.db.engine import make_engine, make_sessionmaker
from cairn.errors import Invalid
from cairn.plugins import get_plugin_manager
from cairn.processing import groups, slicing
from cairn.processing._runtime import Runtime
from cairn.processing._scheduler import Scheduler
from cairn.processing.builtin import CLOUD_CLASSIFICATION
from cairn.processing.models import Execution
from tests.factories import Member
from tests.processing import group_services
from tests.processing.fusion_helpers import (
    create_process,
    org_path,
    outputs,
    upload_data,
    wait_execution,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning"),
]

# A synthetic rectangle over the Lake District, about 2,500 km² (the demo takes 1,000 km²).
LAKES = box(-3.4, 54.2, -2.7, 54.7)


def _collection(*geometries: Any) -> bytes:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": {"n": n}, "geometry": g.__geo_interface__}
                for n, g in enumerate(geometries)
            ],
        }
    ).encode()


# --- splitting -------------------------------------------------------------------------------


def test_a_large_feature_is_cut_by_an_equal_area_grid_into_slices_under_the_maximum() -> None:
    total = slicing.area_km2(LAKES)
    assert 2000 < total < 3000
    slices = slicing.split_region([(LAKES, {"name": "lakes"})], 1000.0)
    assert len(slices) >= 3
    for features in slices:
        assert sum(slicing.area_km2(g) for g, _ in features) <= 1000.0
        assert all(p == {"name": "lakes"} for _, p in features)
    pieces = [g for features in slices for g, _ in features]
    # Together the slices are the region: same area, and nothing outside it.
    assert sum(slicing.area_km2(g) for g in pieces) == pytest.approx(total, rel=1e-4)
    assert unary_union(pieces).symmetric_difference(LAKES).area < 1e-6 * LAKES.area
    # The same region always splits the same way.
    again = slicing.split_region([(LAKES, {"name": "lakes"})], 1000.0)
    assert [[g.wkt for g, _ in s] for s in again] == [[g.wkt for g, _ in s] for s in slices]


def test_small_features_are_packed_in_order_and_a_small_region_is_one_slice() -> None:
    squares = [box(-3.0 + 0.2 * i, 54.0, -2.9 + 0.2 * i, 54.1) for i in range(6)]  # ~72 km²
    assert len(slicing.split_region([(s, {}) for s in squares], 1000.0)) == 1
    packed = slicing.split_region([(s, {"i": i}) for i, s in enumerate(squares)], 150.0)
    assert [[p["i"] for _, p in features] for features in packed] == [[0, 1], [2, 3], [4, 5]]


def test_a_region_needing_too_many_slices_or_a_bad_maximum_is_refused() -> None:
    europe = box(-10, 35, 30, 70)
    with pytest.raises(Invalid, match="at most 256"):
        slicing.split_region([(europe, {})], 10.0)
    with pytest.raises(Invalid, match="positive"):
        slicing.split_region([(LAKES, {})], 0.0)


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=300))
def test_price_shares_sum_exactly_to_the_price(price: int, members: int) -> None:
    shares = groups.price_shares(price, members)
    assert len(shares) == members and sum(shares) == price
    assert max(shares) - min(shares) <= 1


# --- running a group -------------------------------------------------------------------------


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member(credits=10)


@pytest.fixture
def split_service() -> Iterator[None]:
    manager = get_plugin_manager()
    manager.register(group_services, name="processing-group-services")
    yield
    manager.unregister(name="processing-group-services")


def _start(client: TestClient, member: Member, process_id: str) -> list[dict[str, Any]]:
    """Execute, then wait for the whole group; its executions by group_index."""
    base = org_path(member)
    answer = client.post(f"{base}/processes/{process_id}/execute", headers=member.headers)
    assert answer.status_code == 200, answer.text
    return _newest_group(client, member, process_id)


def _newest_group(client: TestClient, member: Member, process_id: str) -> list[dict[str, Any]]:
    """The process's newest group, once every member has ended, by group_index."""
    base = org_path(member)
    newest = client.get(
        f"{base}/processes/{process_id}/executions",
        params={"reverse": "True", "limit": 1},
        headers=member.headers,
    ).json()["list"][0]
    assert newest["group_id"], newest
    found = client.get(
        f"{base}/processes/{process_id}/executions",
        params={"filter[group_id__eq]": newest["group_id"]},
        headers=member.headers,
    )
    assert found.status_code == 200, found.text
    members = found.json()["list"]
    assert len(members) == newest["group_count"]
    ended = [wait_execution(client, member, m["id"]) for m in members]
    return sorted(ended, key=lambda m: m["group_index"])


@pytest.mark.usefixtures("split_service")
def test_a_scheduled_run_of_a_large_region_runs_as_a_group_charged_once(
    app: Any, client: TestClient, member: Member
) -> None:
    region = upload_data(client, member, _collection(LAKES))
    process = create_process(client, member, region, service_id=group_services.SPLIT_ID)
    base = f"{org_path(member)}/processes/{process['id']}"
    later = (utcnow() + timedelta(hours=3)).isoformat()
    body = {"Process[run_type]": "run_once", "Process[repeat_start]": later}
    assert client.patch(base, headers=member.headers, json=body).status_code == 200
    armed = client.post(f"{base}/execute", headers=member.headers)
    assert armed.status_code == 200, armed.text
    due = datetime.fromisoformat(armed.json()["model"]["next_due_at"])
    scheduler = Scheduler(
        uow=UnitOfWork(app.state.sessionmaker),
        settings=app.state.settings,
        runtime=lambda: Runtime.for_app(app.state),
        clock=lambda: due,
        holder="a",
    )

    assert len(scheduler.tick()) == 1
    assert scheduler.tick() == []  # the run is claimed: not started twice

    members = _newest_group(client, member, process["id"])
    assert len(members) >= 3 and all(m["success"] for m in members), members
    with UnitOfWork(app.state.sessionmaker).read() as session:
        charged = session.scalars(
            select(CreditEntry.amount).where(
                CreditEntry.organisation_id == member.organisation_id,
                CreditEntry.reason.startswith("Scheduled execution"),
            )
        ).all()
    assert charged == [-4]  # the price once, for the whole group
    shown = client.get(base, headers=member.headers).json()["model"]
    assert shown["process_status"] == "stop"  # a run-once process stops after running


def _balance(client: TestClient, member: Member) -> Any:
    org = member.organisation_id
    answer = client.get(f"{org_path(member)}/credits/{org}", headers=member.headers)
    return answer.json()["model"]["any_credits"]


def _table(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode())))


def test_the_demo_splits_a_large_region_into_a_group_with_its_aggregator(
    client: TestClient, member: Member
) -> None:
    region = upload_data(client, member, _collection(LAKES))
    process = create_process(
        client,
        member,
        region,
        service_id=CLOUD_CLASSIFICATION.id,
        options=[
            {"name": "latest_date", "value": "false"},
            {"name": "start_date", "value": "2021-03-27T00:00:00Z"},
        ],
    )
    members = _start(client, member, process["id"])
    *slices, aggregator = members
    count = len(members)
    assert len(slices) == len(slicing.split_region([(LAKES, {})], 1000.0))
    assert [m["group_index"] for m in members] == list(range(count))
    assert {m["group_count"] for m in members} == {count}
    assert [m["aggregator"] for m in members] == [False] * len(slices) + [True]
    assert all(m["success"] for m in members), members
    # Shares of the price (1 credit) sum to it; one charge, no refund.
    assert sum(m["price"] for m in members) == process["price"] == 1
    assert _balance(client, member) == 10 - 1
    # Each slice classified its own part; the aggregator counted every slice's pixels.
    import numpy as np
    from rasterio.io import MemoryFile

    counted = dict.fromkeys(range(4), 0)
    for execution in slices:
        found = outputs(client, member, execution["id"])
        assert set(found) == {"Sentinel-2 Cloud Classification"}
        (tif,) = found["Sentinel-2 Cloud Classification"]
        with MemoryFile(tif) as memory, memory.open() as dataset:
            values, numbers = np.unique(dataset.read(1), return_counts=True)
        for value, number in zip(values.tolist(), numbers.tolist(), strict=True):
            if value in counted:
                counted[value] += number
    (statistics,) = outputs(client, member, aggregator["id"])["Statistics Aggregator"]
    assert {int(r["class"]): int(r["pixels"]) for r in _table(statistics)} == counted
    # The process record lists the group's executions with their group fields.
    shown = client.get(f"{org_path(member)}/processes/{process['id']}", headers=member.headers)
    listed = shown.json()["model"]["executions"]
    assert {e["group_id"] for e in listed} == {aggregator["group_id"]}
    assert shown.json()["model"]["non_aggregator_count"] == len(slices)
    assert shown.json()["model"]["aggregator_count"] == 1
    assert shown.json()["model"]["process_status"] == "stop"
    # The native API lists the group too.
    native = client.get(
        f"/api/v1/processing/organisations/{member.organisation_id}/processes/"
        f"{process['id']}/executions",
        params={"group_id": aggregator["group_id"]},
        headers=member.headers,
    )
    assert native.status_code == 200, native.text
    assert native.json()["total"] == count
    other = client.get(
        f"/api/v1/processing/organisations/{member.organisation_id}/processes/"
        f"{process['id']}/executions",
        params={"group_id": "no-such-group"},
        headers=member.headers,
    )
    assert other.json()["total"] == 0


@pytest.mark.usefixtures("split_service")
def test_a_failed_slice_fails_the_group_keeps_the_others_and_refunds_what_did_not_run(
    client: TestClient, member: Member
) -> None:
    region = upload_data(client, member, _collection(LAKES))
    process = create_process(
        client,
        member,
        region,
        service_id=group_services.SPLIT_ID,
        options=[{"name": "fail_slice", "value": "2"}],
    )
    assert process["price"] == 4
    members = _start(client, member, process["id"])
    *slices, aggregator = members
    assert [s["success"] for s in slices] == [i != 1 for i in range(len(slices))]
    assert "fails on purpose" in slices[1]["abort_reason"]
    assert aggregator["success"] is False
    assert aggregator["abort_reason"] == f"Not run: slice 2 of {len(slices)} failed."
    # The slices that ran keep their outputs.
    for index, execution in enumerate(slices):
        found = outputs(client, member, execution["id"])
        assert bool(found["Measure"]) == (index != 1)
    assert outputs(client, member, aggregator["id"])["Add up"] == []
    # Charged 4 up front; the failed slice's share and the aggregator's come back (neither
    # finished a component), and each member's price shows what it paid.
    shares = groups.price_shares(4, len(members))
    paid = [0 if i in (1, len(members) - 1) else share for i, share in enumerate(shares)]
    assert [m["price"] for m in members] == paid
    assert _balance(client, member) == 10 - 4 + shares[1] + shares[-1]
    shown = client.get(f"{org_path(member)}/processes/{process['id']}", headers=member.headers)
    assert shown.json()["model"]["process_status"] == "stop"


@pytest.mark.usefixtures("split_service")
def test_the_aggregator_adds_up_every_slice_and_delete_expiry_moves_the_whole_group(
    client: TestClient, member: Member
) -> None:
    region = upload_data(client, member, _collection(LAKES))
    process = create_process(client, member, region, service_id=group_services.SPLIT_ID)
    members = _start(client, member, process["id"])
    *slices, aggregator = members
    assert all(m["success"] for m in members), members
    (total,) = _table(outputs(client, member, aggregator["id"])["Add up"][0])
    assert int(total["tables"]) == len(slices)
    assert float(total["area_km2"]) == pytest.approx(slicing.area_km2(LAKES), rel=1e-4)
    assert _balance(client, member) == 10 - 4
    later = (utcnow() + timedelta(days=40)).replace(microsecond=0)
    moved = client.post(
        f"{org_path(member)}/process_executions/{slices[0]['id']}/change_delete_expiry",
        headers=member.headers,
        json={"ProcessExecution": {"delete_expiry": later.isoformat()}},
    )
    assert moved.status_code == 200, moved.text
    for execution in members:
        again = client.get(
            f"{org_path(member)}/process_executions/{execution['id']}", headers=member.headers
        ).json()["model"]
        assert again["delete_expiry"].startswith(later.isoformat()[:19])


def test_another_organisations_group_is_not_found(
    client: TestClient, member: Member, make_member: Callable[..., Member]
) -> None:
    stranger = make_member(credits=1)
    region = upload_data(client, member, _collection(LAKES))
    process = create_process(client, member, region, service_id=CLOUD_CLASSIFICATION.id)
    answer = client.get(
        f"/fusion/organisations/{stranger.organisation_id}/processes/{process['id']}/executions",
        params={"filter[group_id__eq]": "x"},
        headers=stranger.headers,
    )
    assert answer.status_code == 404


# --- announcing a group's end once ----------------------------------------------------------


def test_group_ended_is_claimed_once_even_by_racing_callers(settings: Any, session: Any) -> None:
    """Two threads ask at once whether the group has ended: exactly one gets the summary
    (on PostgreSQL the row locks decide, on SQLite the writer lock). ``session`` empties the
    tables afterwards."""
    engine = make_engine(settings)
    uow = UnitOfWork(make_sessionmaker(engine))
    from tests.factories import make_org

    with uow.transaction() as session:
        org = make_org(session)
        from cairn.processing.models import Process

        process = Process(
            organisation_id=org.id, service_id="s", ssd_id="s", name="p", options={}, inputs={}
        )
        session.add(process)
        session.flush()
        ids = []
        for index in range(3):
            execution = Execution(
                organisation_id=org.id,
                process_id=process.id,
                service_id="s",
                options={},
                inputs={},
                delete_expiry=utcnow() + timedelta(days=1),
                group_id="g1",
                group_index=index,
                group_count=3,
                aggregator=index == 2,
                success=index != 1,
                abort_reason="boom" if index == 1 else None,
                ended_at=None if index == 2 else utcnow(),
            )
            session.add(execution)
            session.flush()
            ids.append(execution.id)
    with uow.transaction() as session:
        assert groups.group_ended(session, ids[0]) is None  # the aggregator still runs
    with uow.transaction() as session:
        last = session.get(Execution, ids[2])
        assert last is not None
        last.ended_at = utcnow()
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def claim(execution_id: str) -> None:
        barrier.wait()
        with uow.transaction() as session:
            results.append(groups.group_ended(session, execution_id))

    threads = [threading.Thread(target=claim, args=(i,)) for i in (ids[1], ids[2])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summaries = [r for r in results if r is not None]
    assert len(results) == 2 and len(summaries) == 1
    (summary,) = summaries
    assert summary.execution_ids == ids and summary.group_id == "g1"
    assert (summary.succeeded, summary.failed, summary.success) == (2, 1, False)
    assert summary.abort_reasons == ["boom"]
    with uow.transaction() as session:
        flags = session.scalars(
            select(Execution.group_notified)
            .where(Execution.group_id == "g1")
            .order_by(Execution.group_index)
        )
        assert sorted(flags) == [False, False, True]
    engine.dispose()


def test_a_slice_region_is_valid_geojson_marked_with_its_slice() -> None:
    slices = slicing.split_region([(LAKES, {"name": "lakes"})], 1000.0)
    documents = slicing.slice_documents(slices)
    for index, document in enumerate(documents):
        parsed = json.loads(document)
        for feature in parsed["features"]:
            assert feature["properties"]["cairn_slice"] == index + 1
            assert feature["properties"]["cairn_slices"] == len(slices)
            assert shape(feature["geometry"]).within(LAKES.buffer(1e-9))


@pytest.mark.usefixtures("split_service")
def test_stopping_a_group_ends_every_member_and_refunds_them_all(
    client: TestClient, member: Member
) -> None:
    region = upload_data(client, member, _collection(LAKES))
    process = create_process(
        client,
        member,
        region,
        service_id=group_services.SPLIT_ID,
        options=[{"name": "seconds", "value": "60"}],
    )
    base = org_path(member)
    answer = client.post(f"{base}/processes/{process['id']}/execute", headers=member.headers)
    assert answer.status_code == 200, answer.text
    assert _balance(client, member) == 10 - 4
    # A second execute while the group runs is refused: the process is executing.
    again = client.post(f"{base}/processes/{process['id']}/execute", headers=member.headers)
    assert again.status_code == 409, again.text
    stopped = client.post(f"{base}/processes/{process['id']}/stop", headers=member.headers)
    assert stopped.status_code == 200, stopped.text
    listed = client.get(
        f"{base}/processes/{process['id']}/executions", headers=member.headers
    ).json()["list"]
    ended = sorted(
        (wait_execution(client, member, e["id"]) for e in listed),
        key=lambda e: e["group_index"],
    )
    assert len(ended) == ended[0]["group_count"] >= 4
    assert all(e["success"] is False for e in ended)
    assert {e["abort_reason"] for e in ended} == {"Stopped by a user."}
    assert _balance(client, member) == 10  # nothing ran to the end: every share came back
    shown = client.get(f"{base}/processes/{process['id']}", headers=member.headers)
    assert shown.json()["model"]["process_status"] == "stop"


def test_a_region_too_large_for_the_service_is_refused_and_nothing_is_charged(
    client: TestClient, member: Member
) -> None:
    region = upload_data(client, member, _collection(box(-10, 35, 30, 70)))
    process = create_process(client, member, region, service_id=CLOUD_CLASSIFICATION.id)
    base = org_path(member)
    answer = client.post(f"{base}/processes/{process['id']}/execute", headers=member.headers)
    assert answer.status_code == 422, answer.text
    assert "at most 256" in answer.json()["error_message"]
    assert _balance(client, member) == 10
    listed = client.get(f"{base}/processes/{process['id']}/executions", headers=member.headers)
    assert listed.json()["list"] == []


def _group_rows(uow: UnitOfWork, *, slices: int) -> list[str]:
    """A group whose slices have all ended well, with its aggregator waiting: the ids."""
    from cairn.processing.models import Component, Process
    from tests.factories import make_org

    with uow.transaction() as session:
        org = make_org(session)
        process = Process(
            organisation_id=org.id,
            service_id=CLOUD_CLASSIFICATION.id,
            ssd_id=CLOUD_CLASSIFICATION.ssd_id,
            name="p",
            options={},
            inputs={"1": "region"},
            process_status="execute",
        )
        session.add(process)
        session.flush()
        ids = []
        for index in range(slices + 1):
            aggregator = index == slices
            execution = Execution(
                organisation_id=org.id,
                process_id=process.id,
                service_id=CLOUD_CLASSIFICATION.id,
                options={},
                inputs={"1": "region"},
                delete_expiry=utcnow() + timedelta(days=1),
                group_id="g2",
                group_index=index,
                group_count=slices + 1,
                aggregator=aggregator,
                waiting=aggregator,
                success=not aggregator,
                ended_at=None if aggregator else utcnow(),
            )
            session.add(execution)
            session.flush()
            session.add(
                Component(
                    organisation_id=org.id,
                    execution_id=execution.id,
                    process_id=process.id,
                    service_id=CLOUD_CLASSIFICATION.id,
                    chain_index=1 if aggregator else 0,
                    name="Statistics Aggregator" if aggregator else "Classify",
                    inputs=["region"],
                    outputs=[],
                )
            )
            ids.append(execution.id)
    return ids


def test_slices_ending_at_once_start_the_aggregator_once(settings: Any, session: Any) -> None:
    """``session`` empties the tables afterwards."""
    engine = make_engine(settings)
    uow = UnitOfWork(make_sessionmaker(engine))
    ids = _group_rows(uow, slices=3)
    results: list[Any] = []
    barrier = threading.Barrier(3)

    def done(execution_id: str) -> None:
        barrier.wait()
        with uow.transaction() as session:
            results.append(groups.after_member_done(session, execution_id))

    threads = [threading.Thread(target=done, args=(i,)) for i in ids[:3]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started = [r for r in results if r is not None]
    assert len(results) == 3 and len(started) == 1
    assert started[0].execution.id == ids[3]
    with uow.transaction() as session:
        aggregator = session.get(Execution, ids[3])
        assert aggregator is not None and aggregator.waiting is False
    engine.dispose()


def _lakes_process(session: Any, *, credits: int) -> tuple[Any, str, str, groups.Region]:
    """A Sentinel-2 demo process on a region item (its blob is not read here) and the Region
    a split of it would give: 3 slices of made-up blobs."""
    from cairn.processing import service
    from tests.processing.test_service import _actor, _analysed_item, _org

    actor = _actor(session, credits=credits)
    org = _org(actor)
    data_id = _analysed_item(session, actor)
    process = service.create_process(
        session,
        actor,
        org,
        service_id=CLOUD_CLASSIFICATION.id,
        changes=service.ProcessChanges(name="L", inputs={1: data_id}),
    )
    slices = [slicing.SliceFile(f"{n}" * 64, 10, {}) for n in range(3)]
    return actor, org, process.id, groups.Region(1, data_id, "Region", ("0" * 64,), slices)


def test_a_region_changed_since_its_split_is_refused_and_nothing_is_charged(
    session: Any,
) -> None:
    from cairn.accounts import service as accounts
    from cairn.errors import Conflict

    actor, org, process_id, region = _lakes_process(session, credits=5)
    stale = groups.Region(1, region.data_id, "Region", ("f" * 64,), region.slices)
    # The unit of work rolls back what a raising service did: here, a savepoint.
    refused = pytest.raises(Conflict, match="changed while it was being split")
    with refused, session.begin_nested():
        groups.prepare_group(session, actor, org, process_id, region=stale)
    assert accounts.credit_balance(session, org) == 5
    assert session.scalars(select(Execution).where(Execution.process_id == process_id)).all() == []
    process, members = groups.prepare_group(session, actor, org, process_id, region=region)
    assert [m.group_index for m, _ in members] == [0, 1, 2, 3]
    assert [m.waiting for m, _ in members] == [False, False, False, True]
    assert [len(c) for _, c in members] == [1, 1, 1, 1]
    assert members[3][1][0].name == "Statistics Aggregator"
    assert process.process_status == "execute"
    assert accounts.credit_balance(session, org) == 5 - 1


def test_too_few_credits_for_a_group_charge_and_record_nothing(session: Any) -> None:
    from cairn.accounts import service as accounts
    from cairn.errors import PaymentRequired

    actor, org, process_id, region = _lakes_process(session, credits=0)
    with pytest.raises(PaymentRequired), session.begin_nested():
        groups.prepare_group(session, actor, org, process_id, region=region)
    assert accounts.credit_balance(session, org) == 0
    assert session.scalars(select(Execution).where(Execution.process_id == process_id)).all() == []


def test_a_group_cut_off_by_a_restart_ends_and_is_refunded_in_full(
    settings: Settings, blobs: BlobStore
) -> None:
    from cairn.accounts import service as accounts

    engine = make_engine(settings)
    uow = UnitOfWork(make_sessionmaker(engine))
    try:
        with uow.transaction() as session:
            actor, org, process_id, region = _lakes_process(session, credits=5)
            groups.prepare_group(session, actor, org, process_id, region=region)
        # The server that recorded the group died before its members ran: the next one ends
        # every member, the waiting aggregator too, and gives back what none of them ran.
        Runtime(uow=uow, blobs=blobs, settings=settings).shutdown()
        with uow.read() as session:
            members = session.scalars(
                select(Execution).where(Execution.process_id == process_id)
            ).all()
            assert len(members) == 4
            assert all(m.ended_at is not None and not m.success for m in members)
            assert {m.abort_reason for m in members} == {"The server restarted while it ran."}
            assert accounts.credit_balance(session, org) == 5
    finally:
        engine.dispose()
