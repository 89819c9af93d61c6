"""The processing area's part of the route sweep: a first-organisation data item, process,
execution and component (named as both /fusion and /api/v1/processing call them), and the
Fusion error shape."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from tests.api.sweep_areas import AreaSeed
from tests.factories import Member
from tests.processing.fusion_helpers import (
    STATISTICS,
    create_process,
    execute,
    org_path,
    upload_data,
)


def seed(client: TestClient, member: Member) -> AreaSeed:
    base = org_path(member)
    data_id = upload_data(client, member)
    file_id = client.get(f"{base}/data/{data_id}/files", headers=member.headers).json()["list"][0][
        "id"
    ]
    process = create_process(client, member, data_id)
    execution = execute(client, member, process["id"])
    components = client.get(
        f"{base}/process_executions/{execution['id']}/process_service_executions",
        headers=member.headers,
    ).json()["list"]
    return AreaSeed(
        fill={
            "user_id": member.user_id,
            "credit_id": member.organisation_id,
            "data_id": data_id,
            "file_id": file_id,
            "service_id": STATISTICS,
            "process_id": process["id"],
            "process_execution_id": execution["id"],
            "process_service_execution_id": components[0]["id"],
            # the native API's names for the same objects
            "execution_id": execution["id"],
            "component_id": components[0]["id"],
        },
        identifiers={data_id, file_id, process["id"], execution["id"], components[0]["id"]},
        owned_ids={data_id, file_id, process["id"], execution["id"]},
        state=lambda: [
            client.get(f"{base}/data/{data_id}", headers=member.headers).json(),
            client.get(f"{base}/processes/{process['id']}", headers=member.headers).json(),
            client.get(
                f"{base}/process_executions/{execution['id']}", headers=member.headers
            ).json(),
        ],
    )


def fusion_error_shape(answer: httpx.Response) -> str | None:
    """Why ``answer`` is not a Fusion error (``{"error_message": str}`` as JSON), or None."""
    if answer.request.method == "HEAD":
        return None
    if not answer.headers.get("content-type", "").startswith("application/json"):
        return f"content-type {answer.headers.get('content-type')!r}, not application/json"
    body = answer.json()
    if not isinstance(body, dict) or not isinstance(body.get("error_message"), str):
        return f"no error_message in {body}"
    return None
