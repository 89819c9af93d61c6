"""Dispatchers on `/fusion` in-process, as the Fusion SDK sends them: listed, offered by the
template, added to a process with validated options, run after a successful execution (the
built-in Local folder copies real files), and bad input refused.

Each test runs on SQLite and PostgreSQL (the ``client`` fixture's database) with real
components in worker processes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cairn.config import Settings
from cairn.plugins import get_plugin_manager
from cairn.processing.builtin import LOCAL_FOLDER
from cairn.processing.dispatchers import AWS_S3, EMAIL, STORAGE_URL, WEBHOOK
from tests.factories import Member
from tests.processing import plugin_services
from tests.processing.fusion_helpers import (
    STATISTICS,
    create_process,
    execute,
    org_path,
    outputs,
    upload_data,
)


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member(credits=5)


@pytest.fixture
def refusing() -> Iterator[None]:
    manager = get_plugin_manager()
    manager.register(plugin_services, name="processing-test-services")
    yield
    manager.unregister(name="processing-test-services")


def _offered(client: TestClient, member: Member) -> dict[str, dict[str, Any]]:
    """The template's available dispatchers (``extras.dispatchers``) by name."""
    template = client.get(
        f"{org_path(member)}/processes/new",
        params={"service_id": STATISTICS},
        headers=member.headers,
    )
    assert template.status_code == 200, template.text
    return {d["name"]: d for d in template.json()["extras"]["dispatchers"]}


def _with(dispatcher: dict[str, Any], **values: Any) -> dict[str, Any]:
    """An offered dispatcher with some option values set, as the SDK's update sends it."""
    options = [
        {**o, "value": values.pop(o["name"])} if o["name"] in values else o
        for o in dispatcher["options"]
    ]
    return {**dispatcher, **values, "options": options}


def _create(client: TestClient, member: Member, data_id: str, dispatchers: list[Any]) -> Any:
    template = client.get(
        f"{org_path(member)}/processes/new",
        params={"service_id": STATISTICS},
        headers=member.headers,
    ).json()["model"]
    body = {f"Process[{k}]": v for k, v in template.items() if v is not None}
    body["Process[name]"] = "Dispatched"
    body["Process[inputs]"] = [{**i, "id": data_id} for i in template["inputs"]]
    body["Process[dispatchers]"] = dispatchers
    return client.post(f"{org_path(member)}/processes", headers=member.headers, json=body)


def _log(client: TestClient, member: Member, execution_id: str) -> list[str]:
    base = org_path(member)
    (component,) = client.get(
        f"{base}/process_executions/{execution_id}/process_service_executions",
        headers=member.headers,
    ).json()["list"]
    logs = client.get(
        f"{base}/process_service_executions/{component['id']}/logs", headers=member.headers
    )
    return [entry["message"] for entry in logs.json()["list"]]


def test_dispatchers_are_listed_and_every_template_offers_them(
    client: TestClient, member: Member
) -> None:
    listed = client.get(f"{org_path(member)}/services/dispatchers", headers=member.headers)
    assert listed.status_code == 200, listed.text
    assert sorted((s["name"], s["ssd_id"]) for s in listed.json()["list"]) == sorted(
        (d.name, d.ssd_id) for d in (LOCAL_FOLDER, AWS_S3, EMAIL, STORAGE_URL, WEBHOOK)
    )
    local = _offered(client, member)["Local folder"]
    assert local["ssd_id"] == LOCAL_FOLDER.ssd_id and local["dispatch_intermediate"] is False
    assert [(o["name"], o["data_type"], o["value"]) for o in local["options"]] == [
        ("folder", "string", "outputs"),
        ("condition", "string", None),
    ]


def test_local_folder_copies_the_outputs_after_a_successful_execution(
    client: TestClient, member: Member, settings: Settings
) -> None:
    data_id = upload_data(client, member)
    local = _offered(client, member)["Local folder"]
    chosen = _with(local, folder="team/glasgow", condition="inputs > 0")
    created = _create(client, member, data_id, [chosen])
    assert created.status_code == 200, created.text
    process = created.json()["model"]
    (shown,) = process["dispatchers"]
    assert {o["name"]: o["value"] for o in shown["options"]} == {
        "folder": "team/glasgow",
        "condition": "inputs > 0",
    }
    execution = execute(client, member, process["id"])
    assert execution["success"] is True, execution
    assert settings.dispatch_root is not None
    folder = settings.dispatch_root / "team" / "glasgow" / execution["id"]
    copied = sorted(p for p in folder.rglob("*") if p.is_file())
    assert [p.relative_to(folder).as_posix() for p in copied] == [
        "1_Region_statistics/Region_measures/region_statistics.csv",
        "1_Region_statistics/Region_statistics/region_statistics.geojson",
    ]
    downloaded = outputs(client, member, execution["id"])["Region statistics"]
    assert sorted(p.read_bytes() for p in copied) == sorted(downloaded)
    assert any(
        line.startswith("Dispatcher 'Local folder': copied 2 file(s)")
        for line in _log(client, member, execution["id"])
    )


@pytest.mark.usefixtures("refusing")
def test_a_failing_dispatcher_is_logged_and_the_execution_still_succeeds(
    client: TestClient, member: Member, settings: Settings
) -> None:
    data_id = upload_data(client, member)
    offered = _offered(client, member)
    chosen = [_with(offered["Test: refusing"], attempts="3"), offered["Local folder"]]
    process = _create(client, member, data_id, chosen).json()["model"]
    execution = execute(client, member, process["id"])
    assert execution["success"] is True and execution["abort_reason"] is None, execution
    log = _log(client, member, execution["id"])
    assert "Dispatcher 'Test: refusing' failed: RuntimeError: the far end refused 2 file(s)" in log
    assert settings.dispatch_root is not None  # the next dispatcher still ran
    assert len(list((settings.dispatch_root / "outputs" / execution["id"]).rglob("*.csv"))) == 1


def test_a_folder_that_links_out_of_the_dispatch_root_is_refused_at_dispatch(
    client: TestClient, member: Member, settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    assert settings.dispatch_root is not None
    settings.dispatch_root.mkdir(parents=True, exist_ok=True)
    (settings.dispatch_root / "link").symlink_to(outside)
    data_id = upload_data(client, member)
    chosen = _with(_offered(client, member)["Local folder"], folder="link/deeper")
    process = _create(client, member, data_id, [chosen]).json()["model"]
    execution = execute(client, member, process["id"])
    assert execution["success"] is True, execution
    assert list(outside.iterdir()) == []
    assert any(
        "Dispatcher 'Local folder' failed" in line and "outside the dispatch root" in line
        for line in _log(client, member, execution["id"])
    )


@pytest.mark.usefixtures("refusing")
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ssd_id": str(uuid.uuid4()), "name": "Nowhere"}, "Unknown dispatcher"),
        ({"attempts": "many"}, "Option 'attempts' must be a numeric value"),
        ({"attempts": "9"}, "Option 'attempts' must be at most 5"),
        ({"attempts": ["1", "2"]}, "Option 'attempts' takes a single value"),
        ({"dispatch_intermediate": "yes"}, "dispatch_intermediate is true or false"),
        ({"folder": "../elsewhere"}, "must stay inside the dispatch root"),
        ({"folder": "/etc"}, "must stay inside the dispatch root"),
        ({"folder": "a/../../b"}, "must stay inside the dispatch root"),
        ({"folder": "  "}, "names a folder inside the dispatch root"),
    ],
)
def test_bad_dispatchers_are_refused_and_nothing_is_stored(
    client: TestClient, member: Member, change: dict[str, Any], message: str
) -> None:
    data_id = upload_data(client, member)
    offered = _offered(client, member)
    name = "Local folder" if "folder" in change else "Test: refusing"
    changed = {**offered[name], **change} if "ssd_id" in change else None
    chosen = changed or _with(offered[name], **change)
    answer = _create(client, member, data_id, [chosen])
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["error_message"]
    listed = client.get(f"{org_path(member)}/processes", headers=member.headers)
    assert listed.json()["list"] == []


def test_dispatchers_change_before_the_first_execution_and_never_after(
    client: TestClient, member: Member
) -> None:
    data_id = upload_data(client, member)
    process = create_process(client, member, data_id)
    path = f"{org_path(member)}/processes/{process['id']}"
    local = _offered(client, member)["Local folder"]
    added = client.patch(
        path, headers=member.headers, json={"Process[dispatchers]": [_with(local, folder="a")]}
    )
    assert added.status_code == 200, added.text
    (shown,) = added.json()["model"]["dispatchers"]
    assert execute(client, member, process["id"])["success"] is True
    # The SDK sends every field back when renaming: the same dispatchers are no change.
    renamed = client.patch(
        path,
        headers=member.headers,
        json={"Process[name]": "Renamed", "Process[dispatchers]": [shown]},
    )
    assert renamed.status_code == 200, renamed.text
    for dispatchers in ([], [_with(local, folder="b")]):
        changed = client.patch(
            path, headers=member.headers, json={"Process[dispatchers]": dispatchers}
        )
        assert changed.status_code == 409, changed.text
        assert "dispatchers cannot change" in changed.json()["error_message"]
    kept = client.get(path, headers=member.headers).json()["model"]["dispatchers"]
    assert kept == [shown]
    copy = client.get(f"{path}/copy", headers=member.headers).json()["model"]
    assert copy["dispatchers"] == [shown]


def test_another_organisations_process_takes_no_dispatchers(
    client: TestClient, member: Member, make_member: Callable[..., Member]
) -> None:
    process = create_process(client, member, upload_data(client, member))
    stranger = make_member()
    local = _offered(client, member)["Local folder"]
    answer = client.patch(
        f"{org_path(stranger)}/processes/{process['id']}",
        headers=stranger.headers,
        json={"Process[dispatchers]": [local]},
    )
    assert answer.status_code == 404, answer.text
    theirs = client.patch(
        f"{org_path(member)}/processes/{process['id']}",
        headers=stranger.headers,
        json={"Process[dispatchers]": [local]},
    )
    assert theirs.status_code == 404, theirs.text
    shown = client.get(f"{org_path(member)}/processes/{process['id']}", headers=member.headers)
    assert shown.json()["model"]["dispatchers"] == []
