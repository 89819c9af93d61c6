"""The runtime's recorder and shutdown, on both databases, with real worker processes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient

from cairn.db import UnitOfWork, make_sessionmaker
from cairn.db.base import utcnow
from cairn.processing import service
from cairn.processing._engine import Event
from cairn.processing._runtime import SERVER_STOPPED, Runtime
from cairn.processing.models import Execution
from tests.factories import Member
from tests.processing import plugin_services
from tests.processing.fusion_helpers import (
    create_process,
    execute,
    org_path,
    upload_data,
    wait_for_log,
)

# Threads the runtime and its engine start: the recorder, the analysis pool, and one monitor
# per execution.
OWN_THREADS = ("processing-recorder", "analysis", "execution-")


def _workers() -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process().children(recursive=True)
        if p.status() != psutil.STATUS_ZOMBIE
        and not any(m in " ".join(p.cmdline()) for m in ("forkserver", "resource_tracker"))
    ]


@pytest.mark.usefixtures("test_services")
def test_nothing_outlives_shutdown_and_a_cut_off_execution_says_why(
    app: Any, make_member: Callable[..., Member]
) -> None:
    member = make_member(credits=5)
    before = {t.ident for t in threading.enumerate()}
    with TestClient(app, raise_server_exceptions=False) as client:
        data_id = upload_data(client, member)
        process = create_process(client, member, data_id, service_id=plugin_services.SLEEP_ID)
        base = f"{org_path(member)}/processes/{process['id']}"
        assert client.post(f"{base}/execute", headers=member.headers).status_code == 200
        execution_id = client.get(f"{base}/executions", headers=member.headers).json()["list"][0][
            "id"
        ]
        line = wait_for_log(client, member, execution_id, "sleeping in pid ")
        pid = int(line.rsplit(" ", 1)[1])
        # A second upload puts the analysis pool to work as the server stops.
        created = client.post(
            f"{org_path(member)}/data", headers=member.headers, json={"Data[name]": "Late"}
        ).json()["model"]["id"]
        url = client.post(
            f"{org_path(member)}/data/{created}/add_file",
            headers=member.headers,
            json={"Data": {"name": "late.geojson", "file_type": "GeoJSON"}},
        ).json()["extras"]["url"]
        assert client.put(url, content=b'{"type": "FeatureCollection", "features": []}').is_success
    # The client has left: the app's lifespan has shut the runtime down.
    left = [
        t.name
        for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and t.name.startswith(OWN_THREADS)
    ]
    assert left == []
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert [p.cmdline() for p in _workers()] == []
    assert app.state.engine.pool.checkedout() == 0
    with UnitOfWork(make_sessionmaker(app.state.engine)).read() as session:
        execution = session.get(Execution, execution_id)
        assert execution is not None and execution.ended_at is not None
        assert execution.success is False
        assert execution.abort_reason == SERVER_STOPPED


def test_a_batch_that_fails_is_recorded_event_by_event(app: Any) -> None:
    """One event the database refuses loses only itself: the others of its batch land."""
    runtime = Runtime.for_app(app.state)
    try:
        # No execution row: each event is recorded as a no-op, but for the one refused.
        stamp = utcnow()
        calls: list[str] = []
        original = runtime._record

        def record(session: Any, event: Event, now: Any) -> None:
            calls.append(event.kind)
            if event.kind == "log" and event.value == "bad":
                raise ValueError("refused")
            original(session, event, now)

        runtime._record = record  # type: ignore[method-assign]
        events = [
            (stamp, Event("no-such", "log", None, "good")),
            (stamp, Event("no-such", "log", None, "bad")),
            (stamp, Event("no-such", "progress", None, 50)),
        ]
        runtime._write(events, None)
        # The batch ran up to the bad event, then each event alone.
        assert calls == ["log", "log", "log", "log", "progress"]
    finally:
        runtime.shutdown()


def test_an_end_that_cannot_be_recorded_still_ends_the_execution(
    client: TestClient, make_member: Callable[..., Member], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Provenance refusing the record must not leave the execution running forever."""
    member = make_member(credits=5)
    data_id = upload_data(client, member)
    process = create_process(client, member, data_id)

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("provenance is down")

    monkeypatch.setattr(service, "record_execution", refuse)
    ended = execute(client, member, process["id"])
    assert ended["success"] is False
    assert ended["abort_reason"] == "Recording its end failed: RuntimeError."
