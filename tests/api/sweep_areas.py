"""What each area contributes to the route sweep (`test_route_sweep.py`).

An area with routes adds one *seeder* to ``SEEDERS``: given the in-process client and the first
organisation's member, it creates that organisation's objects and returns an ``AreaSeed``
saying which path, query and body names they fill, which strings must never reach a stranger,
and what the first organisation sees (a stranger's call must not change it). An area whose
compatibility router answers errors in a foreign shape adds a checker to ``ERROR_SHAPES`` under
its path prefix. Keep each area's seeder in its own module beside this one when it grows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.archives import published_zip, tar_gz
from tests.factories import Member


@dataclass
class AreaSeed:
    """One area's objects of the first organisation, as the sweep uses them."""

    fill: dict[str, str]  # path / query / JSON-body name -> a first-organisation value
    identifiers: set[str] = field(default_factory=set)  # never in an answer to a stranger
    owned_ids: set[Any] = field(default_factory=set)  # never an ``id`` in a stranger's listing
    state: Callable[[], list[Any]] = list  # what the first organisation sees of them


def seed_accounts(client: TestClient, member: Member) -> AreaSeed:
    org = member.organisation_id
    return AreaSeed(
        fill={"organisation_id": org},
        identifiers={org, member.user_id, member.email, member.token},
        state=lambda: [
            client.get(f"/api/v1/organisations/{org}", headers=member.headers).json(),
            client.get(f"/api/v1/organisations/{org}/credits", headers=member.headers).json(),
        ],
    )


def seed_workspaces(client: TestClient, member: Member) -> AreaSeed:
    answer = client.post(
        "/api/v1/workspaces/upload",
        headers=member.headers,
        # The hidden file goes to the quarantine: the removed-file routes get an entry id.
        files={
            "file": (
                "paper.tar.gz",
                tar_gz({"main.tex": b"\\documentclass{article}\n", ".env": b"SECRET=1\n"}),
            )
        },
    )
    assert answer.status_code == 201, answer.text
    workspace_id = answer.json()["id"]
    base = f"/api/v1/workspaces/{workspace_id}"
    path = client.get(f"{base}/files", headers=member.headers).json()["items"][0]["path"]
    saved = client.post(f"{base}/checkpoints", headers=member.headers)
    assert saved.status_code == 201, saved.text
    checkpoint = saved.json()
    entry = client.get(f"{base}/removed", headers=member.headers).json()["items"][0]
    # A real, unfinished resumable (tus) upload with some bytes in, for …/uploads/{resumable_id}.
    tus = {"Tus-Resumable": "1.0.0"}
    started = client.post(
        f"{base}/uploads",
        headers={
            **member.headers,
            **tus,
            "Upload-Length": "100",
            "Upload-Metadata": "filename YQ==",
        },
    )
    assert started.status_code == 201, started.text
    resumable = started.headers["location"].rsplit("/", 1)[-1]
    sent = client.patch(
        f"{base}/uploads/{resumable}",
        content=b"first bytes",
        headers={
            **member.headers,
            **tus,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert sent.status_code == 204, sent.text
    return AreaSeed(
        fill={
            "upload_id": str(workspace_id),
            "workspace_id": str(workspace_id),  # JSON bodies naming a workspace (seals, xmldb)
            "path": path,
            "public_file_path": path,
            "checkpoint_id": checkpoint["id"],
            "checkpoint_checksum": checkpoint["checksum"],
            "entry_id": entry["id"],
            "resumable_id": resumable,
        },
        identifiers={checkpoint["id"], entry["id"], entry["sha256"], resumable},
        owned_ids={workspace_id, checkpoint["id"], entry["id"]},
        state=lambda: [
            client.get(base, headers=member.headers).json(),
            client.get(f"{base}/files", headers=member.headers).json(),
            client.get(f"{base}/checkpoints", headers=member.headers).json(),
            client.get(f"{base}/removed", headers=member.headers).json(),
            dict(
                client.head(
                    f"{base}/uploads/{resumable}", headers={**member.headers, **tus}
                ).headers
            ),
        ],
    )


def seed_runs(client: TestClient, member: Member) -> AreaSeed:
    """A workspace package build, which the platform records as a run (an activity)."""
    answer = client.post(
        "/api/v1/workspaces/upload",
        headers=member.headers,
        files={"file": ("runs.tar.gz", tar_gz({"data.csv": b"a,b\n1,2\n"}))},
    )
    assert answer.status_code == 201, answer.text
    package = client.get(
        f"/api/v1/workspaces/{answer.json()['id']}/package", headers=member.headers
    )
    assert package.status_code == 200, package.text
    runs = client.get("/api/v1/runs", headers=member.headers).json()["items"]
    run_id = runs[0]["run_id"]
    # And a published run, uploaded as the package `cairn runs publish` writes.
    received = client.post(
        "/api/v1/runs/published",
        headers=member.headers,
        files={"file": ("run.zip", published_zip(b"sweep result\n"))},
    )
    assert received.status_code == 201, received.text
    published = received.json()
    return AreaSeed(
        fill={"run_id": run_id},
        identifiers={run_id, published["run"]["run_id"], published["publication_id"]},
        state=lambda: [
            client.get(f"/api/v1/runs/{run_id}", headers=member.headers).json(),
            client.get("/api/v1/runs", headers=member.headers).json(),
        ],
    )


def seed_xmldb(client: TestClient, member: Member) -> AreaSeed:
    opened = client.post(
        "/api/v1/xml/sessions", json={"database": member.organisation_id}, headers=member.headers
    )
    assert opened.status_code == 201, opened.text
    session_id = opened.json()["id"]
    base = f"/api/v1/xml/sessions/{session_id}"
    loaded = client.post(
        f"{base}/documents",
        json={"name": "pets", "content": "<pets><cat>Tom</cat></pets>"},
        headers=member.headers,
    )
    assert loaded.status_code == 201, loaded.text
    answer = client.post(
        f"{base}/statements", json={"query": 'doc("pets")/pets/cat'}, headers=member.headers
    ).json()
    return AreaSeed(
        fill={
            "database": member.organisation_id,
            "session_id": session_id,
            "result_id": answer["result_id"],
            "oid": answer["items"][0]["oid"],
            "document": "pets",
        },
        identifiers={session_id, answer["result_id"], loaded.json()["id"]},
        state=lambda: [
            client.get(base, headers=member.headers).json(),
            client.get(f"{base}/documents", headers=member.headers).json(),
            client.get(f"{base}/documents/pets", headers=member.headers).text,
        ],
    )


def seed_archive(client: TestClient, member: Member) -> AreaSeed:
    from tests.archive.sweep import seed_archive as seed

    return seed(client, member)


def seed_processing(client: TestClient, member: Member) -> AreaSeed:
    from tests.api.sweep_processing import seed  # its own module: it grew

    return seed(client, member)


def fusion_error(answer: httpx.Response) -> str | None:
    from tests.api.sweep_processing import fusion_error_shape

    return fusion_error_shape(answer)


def _cryptopro_envelope(answer: httpx.Response) -> str | None:
    """CryptoPro Archive's routes answer errors as ``{data: null, errorCode, errorDescription}``."""
    if not answer.headers.get("content-type", "").startswith("application/json"):
        return f"content-type {answer.headers.get('content-type')!r}, not the JSON envelope"
    body = answer.json()
    if body.get("data") is not None or not isinstance(body.get("errorCode"), str):
        return f"not the CryptoPro envelope: {body}"
    return None


SEEDERS: list[Callable[[TestClient, Member], AreaSeed]] = [
    seed_accounts,
    seed_workspaces,
    seed_runs,
    seed_xmldb,
    seed_archive,
    seed_processing,
]

# Path prefix -> why an error answer there is not in that router's shape (None when it is).
# Routes under no prefix here answer problem+json (checked by the sweep itself).
ERROR_SHAPES: dict[str, Callable[[httpx.Response], str | None]] = {
    "/fusion": fusion_error,
    **{
        prefix: _cryptopro_envelope
        for prefix in ("/api/document", "/api/user", "/api/dictionary", "/swagger")
    },
}
