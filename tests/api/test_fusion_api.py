"""The `/fusion` API in-process: the shapes the SDK needs, and bad input from the issue's list.

Each test runs on SQLite and PostgreSQL (through the ``client`` fixture's database) and drives
real components in worker processes.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cairn.db.base import utcnow
from cairn.plugins import get_plugin_manager
from tests.factories import Member
from tests.processing import plugin_services
from tests.processing.fusion_helpers import (
    ELEVATION,
    GLASGOW,
    add_file,
    create_process,
    execute,
    org_path,
    outputs,
    upload_data,
    wait_execution,
    wait_files,
)


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member(credits=5)


@pytest.fixture
def test_services() -> Iterator[None]:
    manager = get_plugin_manager()
    manager.register(plugin_services, name="processing-test-services")
    yield
    manager.unregister(name="processing-test-services")


def _credits(client: TestClient, member: Member) -> Any:
    org = member.organisation_id
    answer = client.get(f"{org_path(member)}/credits/{org}", headers=member.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["model"]["any_credits"]


def _create(client: TestClient, member: Member, body: dict[str, Any]) -> Any:
    return client.post(f"{org_path(member)}/processes", headers=member.headers, json=body)


def _body(client: TestClient, member: Member, data_id: str, service_id: str) -> dict[str, Any]:
    template = client.get(
        f"{org_path(member)}/processes/new",
        params={"service_id": service_id},
        headers=member.headers,
    ).json()["model"]
    body = {f"Process[{k}]": v for k, v in template.items() if v is not None}
    body["Process[name]"] = "Bad input"
    body["Process[inputs]"] = [{**i, "id": data_id} for i in template["inputs"]]
    return body


# --- login and shapes --------------------------------------------------------------------------


def test_login_answers_an_id_token_naming_the_user(client: TestClient, member: Member) -> None:
    answer = client.post(
        "/fusion/users/login",
        json={
            "User": {"email": member.email, "user_id": None, "password": "Correct-h0rse-battery"}
        },
    )
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    import base64

    payload = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == member.user_id
    me = client.get(
        f"/fusion/users/{member.user_id}",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert me.status_code == 200
    assert me.json()["model"]["organisations"] == [{"id": member.organisation_id, "last": True}]
    # The access token is a cairn token, valid on the native API too.
    native = client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert native.status_code == 200, native.text


def test_wrong_password_is_an_error_message(client: TestClient, member: Member) -> None:
    answer = client.post(
        "/fusion/users/login", json={"User": {"email": member.email, "password": "nope"}}
    )
    assert answer.status_code == 401
    assert answer.json() == {"error_message": "Invalid email, user id or password."}


def test_files_show_size_and_publishable_only_once_analysed(
    client: TestClient, member: Member
) -> None:
    created = client.post(
        f"{org_path(member)}/data", headers=member.headers, json={"Data[name]": "Pending"}
    )
    data_id = created.json()["model"]["id"]
    extras = add_file(client, member, data_id, "region.geojson", "GeoJSON")
    pending = client.get(f"{org_path(member)}/data/{data_id}/files", headers=member.headers)
    file = pending.json()["list"][0]
    assert "size" not in file and "publishable" not in file and "error" not in file
    from tests.processing.fusion_helpers import GLASGOW

    assert client.put(extras["url"], content=json.dumps(GLASGOW).encode()).status_code == 200
    (done,) = wait_files(client, member, data_id)
    assert done["publishable"] is True and done["error"] is False
    assert done["size"] == len(json.dumps(GLASGOW).encode())
    assert done["polygons"] == 1 and done["crs"] == "EPSG:4326"
    assert done["bounds"] == pytest.approx([-4.3, 55.85, -4.2, 55.9])
    assert done["stac_item"]["bbox"] == pytest.approx([-4.3, 55.85, -4.2, 55.9])


def test_delete_answers_json_and_lists_page_with_a_cursor(
    client: TestClient, member: Member
) -> None:
    ids = [upload_data(client, member, name=f"Item {n}") for n in range(3)]
    first = client.get(
        f"{org_path(member)}/data/uploaded", params={"limit": 2}, headers=member.headers
    ).json()
    assert [d["id"] for d in first["list"]] == ids[:2] and first["last"]
    params = {"limit": 2, **{f"last[{k}]": v for k, v in first["last"].items()}}
    second = client.get(f"{org_path(member)}/data/uploaded", params=params, headers=member.headers)
    assert [d["id"] for d in second.json()["list"]] == ids[2:]
    assert second.json()["last"] is None
    found = client.get(
        f"{org_path(member)}/data/uploaded",
        params={"filter[name__begins_with]": "Item 1"},
        headers=member.headers,
    ).json()["list"]
    assert [d["id"] for d in found] == [ids[1]]
    none = client.get(
        f"{org_path(member)}/data/uploaded",
        params={"filter[name__begins_with]": "item"},  # case-sensitive
        headers=member.headers,
    ).json()["list"]
    assert none == []
    searched = client.get(
        f"{org_path(member)}/data/uploaded", params={"search": "item 2"}, headers=member.headers
    ).json()["list"]
    assert [d["id"] for d in searched] == [ids[2]]
    deleted = client.delete(f"{org_path(member)}/data/{ids[0]}", headers=member.headers)
    assert deleted.status_code == 200 and deleted.json() == {}


# --- analysis errors ----------------------------------------------------------------------------


def _zip(names: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in names.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "file_name", "file_type", "reason"),
    [
        (b'{"type": "FeatureCollection", "features": [', "bad.geojson", "GeoJSON", "GeoJSON"),
        (
            _zip({"shapes/a.shp": b"x", "shapes/a.shx": b"x", "shapes/a.dbf": b"x"}),
            "nested.zip",
            "ESRI Shapefile",
            "flat",
        ),
        (_zip({"a.shp": b"x", "a.dbf": b"x"}), "partial.zip", "ESRI Shapefile", ".shx"),
        (b"II*\x00" + b"\x00" * 200, "broken.tif", "GeoTIFF", "raster"),
    ],
)
def test_a_file_failing_analysis_is_an_error_not_a_crash(
    client: TestClient,
    member: Member,
    content: bytes,
    file_name: str,
    file_type: str,
    reason: str,
) -> None:
    data_id = upload_data(
        client, member, content, name="Broken", file_name=file_name, file_type=file_type
    )
    (file,) = wait_files(client, member, data_id)
    assert file["error"] is True and "publishable" not in file
    assert reason in file["error_message"]
    if file_type == "GeoJSON":  # and a failed item cannot be a process's input
        answer = _create(client, member, _body(client, member, data_id, ELEVATION))
        assert answer.status_code == 422
        assert "failed its analysis" in answer.json()["error_message"]


# --- process validation -------------------------------------------------------------------------


def test_wrong_file_type_and_unanalysed_inputs_are_refused(
    client: TestClient, member: Member
) -> None:
    csv_id = upload_data(
        client, member, b"a,b\n1,2\n", name="Table", file_name="t.csv", file_type="CSV"
    )
    answer = _create(client, member, _body(client, member, csv_id, ELEVATION))
    assert answer.status_code == 422
    assert answer.json()["error_message"].startswith("Input 1 takes GeoJSON, not CSV")
    created = client.post(
        f"{org_path(member)}/data", headers=member.headers, json={"Data[name]": "Never sent"}
    )
    pending_id = created.json()["model"]["id"]
    add_file(client, member, pending_id, "region.geojson", "GeoJSON")
    answer = _create(client, member, _body(client, member, pending_id, ELEVATION))
    assert answer.status_code == 422
    assert "not analysed yet" in answer.json()["error_message"]
    listed = client.get(f"{org_path(member)}/processes", headers=member.headers)
    assert listed.json()["list"] == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "Option 'resolution' is required."),
        ("abc", "Option 'resolution' must be a numeric value; got 'abc'."),
        ("5", "Option 'resolution' must be at least 10."),
    ],
)
def test_options_are_checked(
    client: TestClient, member: Member, value: str | None, message: str
) -> None:
    data_id = upload_data(client, member)
    body = _body(client, member, data_id, ELEVATION)
    body["Process[options]"] = [{"name": "resolution", "value": value}]
    answer = _create(client, member, body)
    assert answer.status_code == 422, answer.text
    assert answer.json() == {"error_message": message}


def test_a_process_cannot_change_after_it_ran_but_can_be_renamed(
    client: TestClient, member: Member
) -> None:
    data_id = upload_data(client, member)
    process = create_process(client, member, data_id)
    execution = execute(client, member, process["id"])
    assert execution["success"] is True, execution
    path = f"{org_path(member)}/processes/{process['id']}"
    changed = client.patch(
        path, headers=member.headers, json={"Process[output_storage_period]": 30}
    )
    assert changed.status_code == 409
    assert "copy it instead" in changed.json()["error_message"]
    renamed = client.patch(path, headers=member.headers, json={"Process[name]": "Renamed"})
    assert renamed.status_code == 200 and renamed.json()["model"]["name"] == "Renamed"
    junk = client.patch(path, headers=member.headers, json={"Process[output_storage_period]": "x"})
    assert junk.status_code == 422, junk.text  # a bad value is refused, not a 500


# --- credits and privileges ---------------------------------------------------------------------


def test_too_few_credits_is_402_and_nothing_runs_or_is_charged(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    poor = make_member(credits=0)
    data_id = upload_data(client, poor)
    process = create_process(client, poor, data_id)
    answer = client.post(
        f"{org_path(poor)}/processes/{process['id']}/execute", headers=poor.headers
    )
    assert answer.status_code == 402
    assert "costs 1 credits and the organisation holds 0" in answer.json()["error_message"]
    assert _credits(client, poor) == 0
    executions = client.get(
        f"{org_path(poor)}/processes/{process['id']}/executions", headers=poor.headers
    )
    assert executions.json()["list"] == []


def test_a_view_only_member_executing_is_403_and_nothing_runs(
    client: TestClient, member: Member, make_member: Callable[..., Member]
) -> None:
    viewer = make_member(privilege="view", organisation_id=member.organisation_id)
    data_id = upload_data(client, member)
    process = create_process(client, member, data_id)
    answer = client.post(
        f"{org_path(viewer)}/processes/{process['id']}/execute", headers=viewer.headers
    )
    assert answer.status_code == 403
    assert _credits(client, member) == 5
    seen = client.get(f"{org_path(viewer)}/processes/{process['id']}", headers=viewer.headers)
    assert seen.status_code == 200 and seen.json()["model"]["has_executions"] == ""


def _grant(client: TestClient, by: Member, user_id: str, roles: Any) -> Any:
    return client.patch(
        f"{org_path(by)}/users/{user_id}", headers=by.headers, json={"User[roles]": roles}
    )


def test_manage_grants_privileges_through_fusion_and_they_take_effect(
    client: TestClient, member: Member, make_member: Callable[..., Member]
) -> None:
    viewer = make_member(privilege="view", organisation_id=member.organisation_id)
    data_id = upload_data(client, member)
    process = create_process(client, member, data_id)
    execute_path = f"{org_path(viewer)}/processes/{process['id']}/execute"
    assert client.post(execute_path, headers=viewer.headers).status_code == 403

    granted = _grant(client, member, viewer.user_id, ["execute"])
    assert granted.status_code == 200, granted.text
    roles = {u["id"]: u["roles"] for u in granted.json()["model"]["users"]}
    assert roles == {member.user_id: ["manage"], viewer.user_id: ["execute"]}
    ran = execute(client, viewer, process["id"])  # waits: nothing may run past the test
    assert ran["success"] is True
    assert _credits(client, member) == 4

    assert _grant(client, member, viewer.user_id, "view").status_code == 200
    refused = client.post(execute_path, headers=viewer.headers)
    assert refused.status_code == 403


def test_fusion_privilege_grants_refuse_bad_input(
    client: TestClient, member: Member, make_member: Callable[..., Member]
) -> None:
    executor = make_member(privilege="execute", organisation_id=member.organisation_id)
    stranger = make_member()
    # only manage grants, and an executor cannot promote itself
    assert _grant(client, executor, executor.user_id, ["manage"]).status_code == 403
    for roles in (["owner"], [], ["view", "manage"], None, 3, [{"role": "view"}]):
        answer = _grant(client, member, executor.user_id, roles)
        assert answer.status_code == 422, (roles, answer.text)
        assert answer.json()["error_message"]
    # another organisation's user is not a member here; this organisation is not the stranger's
    assert _grant(client, member, stranger.user_id, ["view"]).status_code == 404
    assert _grant(client, stranger, executor.user_id, ["view"]).status_code == 404
    # the last manager cannot step down, and nothing changed
    last = _grant(client, member, member.user_id, ["execute"])
    assert last.status_code == 409 and "last 'manage'" in last.json()["error_message"]
    organisation = client.get(org_path(member), headers=member.headers).json()["model"]
    roles = {u["id"]: u["roles"] for u in organisation["users"]}
    assert roles == {member.user_id: ["manage"], executor.user_id: ["execute"]}


# --- signed URLs ---------------------------------------------------------------------------------


def _signed_upload(client: TestClient, member: Member) -> str:
    created = client.post(
        f"{org_path(member)}/data", headers=member.headers, json={"Data[name]": "Signed"}
    )
    url: str = add_file(client, member, created.json()["model"]["id"], "r.geojson", "GeoJSON")[
        "url"
    ]
    return url


def test_a_signed_upload_url_works_once_and_cannot_be_forged(
    client: TestClient, member: Member
) -> None:
    url = _signed_upload(client, member)
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert client.put(forged, content=b"{}").status_code == 403
    assert client.put(url + "&blob=" + "0" * 64, content=b"{}").status_code == 403
    assert client.put(url, content=b"{}").status_code == 200
    again = client.put(url, content=b"{}")
    assert again.status_code == 403
    assert "already been used" in again.json()["error_message"]


def test_an_expired_signed_url_is_refused(
    client: TestClient, member: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _signed_upload(client, member)
    later = utcnow() + timedelta(hours=2)
    monkeypatch.setattr("cairn.processing._signing.utcnow", lambda: later)
    answer = client.put(url, content=b"{}")
    assert answer.status_code == 403
    assert "expired" in answer.json()["error_message"]


def test_a_signed_download_url_serves_once(client: TestClient, member: Member) -> None:
    data_id = upload_data(client, member)
    (file,) = wait_files(client, member, data_id)
    answer = client.get(
        f"{org_path(member)}/data/{data_id}/download_file/{file['id']}", headers=member.headers
    )
    url = answer.json()["extras"]["url"]
    # Like a presigned URL, it serves for its hour even if the item is deleted meanwhile (the
    # SDK downloads in threads while the Quick Example goes on to delete everything).
    assert client.delete(f"{org_path(member)}/data/{data_id}", headers=member.headers).json() == {}
    first = client.get(url)
    assert first.status_code == 200 and json.loads(first.content)["type"] == "FeatureCollection"
    assert client.get(url).status_code == 403
    assert client.get(url.replace("download?", "download?x=1&")[:-2] + "00").status_code == 403


# --- the engine ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("test_services")
def test_a_worker_killed_mid_run_fails_the_execution_with_a_reason(
    client: TestClient, member: Member
) -> None:
    data_id = upload_data(client, member)
    process = create_process(client, member, data_id, service_id=plugin_services.CRASH_ID)
    execution = execute(client, member, process["id"])
    assert execution["success"] is False and execution["abort"] is True
    assert "killed by signal SIGKILL" in execution["abort_reason"]
    (component,) = client.get(
        f"{org_path(member)}/process_executions/{execution['id']}/process_service_executions",
        headers=member.headers,
    ).json()["list"]
    assert component["success"] is False
    logs = client.get(
        f"{org_path(member)}/process_service_executions/{component['id']}/logs",
        headers=member.headers,
    ).json()["list"]
    assert "about to be killed" in [entry["message"] for entry in logs]


@pytest.mark.usefixtures("test_services")
def test_stop_aborts_a_running_component_for_real(client: TestClient, member: Member) -> None:
    data_id = upload_data(client, member)
    process = create_process(client, member, data_id, service_id=plugin_services.SLEEP_ID)
    base = f"{org_path(member)}/processes/{process['id']}"
    assert client.post(f"{base}/execute", headers=member.headers).status_code == 200
    execution_id = client.get(f"{base}/executions", headers=member.headers).json()["list"][0]["id"]
    (component,) = client.get(
        f"{org_path(member)}/process_executions/{execution_id}/process_service_executions",
        headers=member.headers,
    ).json()["list"]
    logs_url = f"{org_path(member)}/process_service_executions/{component['id']}/logs"
    pid = None
    deadline = time.monotonic() + 60
    while pid is None and time.monotonic() < deadline:
        for entry in client.get(logs_url, headers=member.headers).json()["list"]:
            if entry["message"].startswith("sleeping in pid "):
                pid = int(entry["message"].rsplit(" ", 1)[1])
        time.sleep(0.05)
    assert pid is not None, "the component never started"
    stopped = client.post(f"{base}/stop", headers=member.headers)
    assert stopped.status_code == 200
    ended = wait_execution(client, member, execution_id)
    assert ended["success"] is False and ended["stopped"] is True
    assert ended["abort_reason"] == "Stopped by a user."
    import psutil

    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


# --- provenance ---------------------------------------------------------------------------------


def _runs(client: TestClient, member: Member, execution_id: str) -> list[dict[str, Any]]:
    answer = client.get(
        "/api/v1/runs", params={"tag": f"execution:{execution_id}"}, headers=member.headers
    )
    assert answer.status_code == 200, answer.text
    runs: list[dict[str, Any]] = answer.json()["items"]
    return runs


@pytest.mark.usefixtures("test_services")
def test_every_execution_is_recorded_in_provenance_with_its_inputs_and_outputs(
    client: TestClient, member: Member, make_member: Callable[..., Member]
) -> None:
    region = json.dumps(GLASGOW).encode()
    data_id = upload_data(client, member, region)
    process = create_process(client, member, data_id)
    execution = execute(client, member, process["id"])
    assert execution["success"] is True
    (brief,) = _runs(client, member, execution["id"])
    assert brief["kind"] == "processing.execution" and brief["status"] == "ok"
    assert {"succeeded", f"process:{process['id']}"} <= set(brief["tags"])
    run = client.get(f"/api/v1/runs/{brief['run_id']}", headers=member.headers).json()
    assert [u["sha256"] for u in run["used"]] == [hashlib.sha256(region).hexdigest()]
    produced = [
        hashlib.sha256(b).hexdigest()
        for b in outputs(client, member, execution["id"])["Region statistics"]
    ]
    assert sorted(g["sha256"] for g in run["generated"]) == sorted(produced)
    assert len(produced) == 2
    # Another organisation sees no such run.
    assert _runs(client, make_member(), execution["id"]) == []
    # A failed execution is recorded too, saying so.
    crashed = create_process(client, member, data_id, service_id=plugin_services.CRASH_ID)
    failed = execute(client, member, crashed["id"])
    (record,) = _runs(client, member, failed["id"])
    assert "failed" in record["tags"] and "failed: " in record["script"]


def test_a_datetime_option_always_names_its_format_for_the_sdk() -> None:
    """The SDK crashes setting a datetime option whose validation has no ``format=``; a
    service that declares none shows the format ``parse_option`` reads."""
    from datetime import datetime

    from cairn.api.compat.fusion.records import option_record
    from cairn.processing.ssd import DEFAULT_DATETIME_FORMAT, OptionSpec, Service, parse_option

    bare = OptionSpec("when", "datetime")
    ruled = OptionSpec("until", "datetime", validation="format=%Y-%m-%d")
    service = Service(
        id="x1", ssd_id="x0", version=1, name="Dates", keywords=[], categories=[], summary="",
        description="", inputs=[], options=[bare, ruled], components=[],
    )  # fmt: skip
    assert option_record(service, "when", None)["validation"] == f"format={DEFAULT_DATETIME_FORMAT}"
    assert option_record(service, "until", None)["validation"] == "format=%Y-%m-%d"
    moment = datetime(2026, 12, 2, 18, 30)
    assert parse_option(bare, moment.strftime(DEFAULT_DATETIME_FORMAT)) == moment


@pytest.mark.usefixtures("test_services")
def test_latest_lists_the_newest_version_and_a_process_keeps_its_own(
    client: TestClient, member: Member
) -> None:
    first, second = plugin_services.VERSIONED
    ssd = {"filter[ssd_id__eq]": first.ssd_id}
    latest = client.get(f"{org_path(member)}/services/latest", params=ssd, headers=member.headers)
    assert [s["id"] for s in latest.json()["list"]] == [second.id]
    every = client.get(f"{org_path(member)}/services", params=ssd, headers=member.headers)
    assert sorted(s["version"] for s in every.json()["list"]) == [1, 2]
    process = create_process(client, member, upload_data(client, member), service_id=first.id)
    assert process["service_id"] == first.id  # the version it was created with, not the newest
    execution = execute(client, member, process["id"])
    (component,) = client.get(
        f"{org_path(member)}/process_executions/{execution['id']}/process_service_executions",
        headers=member.headers,
    ).json()["list"]
    assert component["service_id"] == first.id


def test_a_copy_of_an_output_outlives_its_execution(client: TestClient, member: Member) -> None:
    base = org_path(member)
    process = create_process(client, member, upload_data(client, member))
    execution = execute(client, member, process["id"])
    (component,) = client.get(
        f"{base}/process_executions/{execution['id']}/process_service_executions",
        headers=member.headers,
    ).json()["list"]
    output_id = component["outputs"][0]
    copied = client.post(
        f"{base}/data/{output_id}/copy", headers=member.headers, json={"Data": {"name": "Kept"}}
    )
    assert copied.status_code == 200, copied.text
    copy_id = copied.json()["model"]["id"]
    before = outputs(client, member, execution["id"])
    deleted = client.delete(f"{base}/process_executions/{execution['id']}", headers=member.headers)
    assert deleted.status_code == 200 and deleted.json() == {}
    assert client.get(f"{base}/data/{output_id}", headers=member.headers).status_code == 404
    (file,) = client.get(f"{base}/data/{copy_id}/files", headers=member.headers).json()["list"]
    url = client.get(
        f"{base}/data/{copy_id}/download_file/{file['id']}", headers=member.headers
    ).json()["extras"]["url"]
    kept = client.get(url)
    assert kept.status_code == 200 and kept.content in before[component["name"]]
