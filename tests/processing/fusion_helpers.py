"""Helpers driving the `/fusion` API in-process, as the Fusion SDK does."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import Member

GLASGOW = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "synthetic test square near Glasgow"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[-4.3, 55.85], [-4.2, 55.85], [-4.2, 55.9], [-4.3, 55.9], [-4.3, 55.85]]
                ],
            },
        }
    ],
}
STATISTICS = "8d0e4b61-2f3a-4c58-b1f7-5e9a2c7d3b11"
ELEVATION = "3f1c2a9e-6a53-4d7e-9a55-1f2b8f0e0a01"


def org_path(member: Member) -> str:
    return f"/fusion/organisations/{member.organisation_id}"


def add_file(
    client: TestClient, member: Member, data_id: str, name: str, file_type: str
) -> dict[str, Any]:
    answer = client.post(
        f"{org_path(member)}/data/{data_id}/add_file",
        headers=member.headers,
        json={"Data": {"name": name, "file_type": file_type}},
    )
    assert answer.status_code == 200, answer.text
    extras: dict[str, Any] = answer.json()["extras"]
    return extras


def wait_files(client: TestClient, member: Member, data_id: str) -> list[dict[str, Any]]:
    """Poll the item's files until each has finished (size and publishable or error present)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = client.get(f"{org_path(member)}/data/{data_id}/files", headers=member.headers)
        assert answer.status_code == 200, answer.text
        files: list[dict[str, Any]] = answer.json()["list"]
        if files and all("size" in f and ("publishable" in f or "error" in f) for f in files):
            return files
        time.sleep(0.05)
    raise AssertionError("analysis never finished")


def upload_data(
    client: TestClient,
    member: Member,
    content: bytes | None = None,
    *,
    name: str = "Region",
    file_name: str = "region.geojson",
    file_type: str = "GeoJSON",
) -> str:
    """A data item with one uploaded file, analysed; returns its id."""
    created = client.post(
        f"{org_path(member)}/data", headers=member.headers, json={"Data[name]": name}
    )
    assert created.status_code == 200, created.text
    data_id: str = created.json()["model"]["id"]
    extras = add_file(client, member, data_id, file_name, file_type)
    body = content if content is not None else json.dumps(GLASGOW).encode()
    put = client.put(extras["url"], content=body)
    assert put.status_code == 200, put.text
    wait_files(client, member, data_id)
    return data_id


def create_process(
    client: TestClient,
    member: Member,
    data_id: str | list[str],
    *,
    service_id: str = STATISTICS,
    options: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    template = client.get(
        f"{org_path(member)}/processes/new",
        params={"service_id": service_id},
        headers=member.headers,
    )
    assert template.status_code == 200, template.text
    model = template.json()["model"]
    ids = [data_id] * len(model["inputs"]) if isinstance(data_id, str) else data_id
    inputs = [{**i, "id": ids[n]} for n, i in enumerate(model["inputs"])]
    body = {f"Process[{k}]": v for k, v in model.items() if v is not None}
    body.update({"Process[name]": "Test process", "Process[inputs]": inputs})
    if options is not None:
        body["Process[options]"] = options
    answer = client.post(f"{org_path(member)}/processes", headers=member.headers, json=body)
    assert answer.status_code == 200, answer.text
    created: dict[str, Any] = answer.json()["model"]
    return created


def wait_execution(client: TestClient, member: Member, execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answer = client.get(
            f"{org_path(member)}/process_executions/{execution_id}", headers=member.headers
        )
        assert answer.status_code == 200, answer.text
        model: dict[str, Any] = answer.json()["model"]
        if model["progress"] >= 100:
            return model
        time.sleep(0.05)
    raise AssertionError("execution never ended")


def execute(client: TestClient, member: Member, process_id: str) -> dict[str, Any]:
    """Execute and wait; returns the ended execution."""
    answer = client.post(
        f"{org_path(member)}/processes/{process_id}/execute", headers=member.headers
    )
    assert answer.status_code == 200, answer.text
    listed = client.get(
        f"{org_path(member)}/processes/{process_id}/executions",
        params={"reverse": "True", "limit": 1},
        headers=member.headers,
    )
    execution_id = listed.json()["list"][0]["id"]
    return wait_execution(client, member, execution_id)


def outputs(client: TestClient, member: Member, execution_id: str) -> dict[str, list[bytes]]:
    """Each component's output files' bytes, downloaded through signed URLs, by component name."""
    base = org_path(member)
    found: dict[str, list[bytes]] = {}
    components = client.get(
        f"{base}/process_executions/{execution_id}/process_service_executions",
        headers=member.headers,
    ).json()["list"]
    for component in components:
        contents = found.setdefault(component["name"], [])
        for output_id in component["outputs"]:
            files = client.get(f"{base}/data/{output_id}/files", headers=member.headers)
            for file in files.json()["list"]:
                url = client.get(
                    f"{base}/data/{output_id}/download_file/{file['id']}", headers=member.headers
                ).json()["extras"]["url"]
                answer = client.get(url)
                assert answer.status_code == 200, answer.text
                contents.append(answer.content)
    return found


def log_messages(client: TestClient, member: Member, execution_id: str) -> list[str]:
    """Every log line of the execution's components, in order."""
    base = org_path(member)
    components = client.get(
        f"{base}/process_executions/{execution_id}/process_service_executions",
        headers=member.headers,
    ).json()["list"]
    return [
        str(entry["message"])
        for c in components
        for entry in client.get(
            f"{base}/process_service_executions/{c['id']}/logs", headers=member.headers
        ).json()["list"]
    ]


def wait_for_log(
    client: TestClient, member: Member, execution_id: str, prefix: str, timeout: float = 60
) -> str:
    """Poll the execution's logs until a line starts with ``prefix``; returns that line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in log_messages(client, member, execution_id):
            if message.startswith(prefix):
                return message
        time.sleep(0.05)
    raise AssertionError(f"no log line {prefix!r}")
