"""The archive's part of the route sweep: a first-organisation storage, source system and a
verified container, filling every path parameter name the archive's routes use."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.sweep_areas import AreaSeed
from tests.archive.helpers import make_archive_client, upload_form
from tests.archive.pki import LocalPKI, make_pki, pyhanko_sign
from tests.factories import Member

DOCUMENT = b"A document the sweep's strangers must never see.\n"


@functools.cache
def _pki() -> LocalPKI:
    """One test PKI per process: key generation is the slow part of seeding."""
    return make_pki(Path(tempfile.mkdtemp(prefix="cairn-sweep-pki-")))


def seed_archive(client: TestClient, member: Member) -> AreaSeed:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    arch = make_archive_client(settings, member, storage="Sweep storage")
    pki = _pki()
    signature = pyhanko_sign(pki.rsa_signer, DOCUMENT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAIRN_ARCHIVE_TRUST_ROOTS", str(pki.roots))
        answer = client.post(
            "/api/document/content",
            headers=arch.key_headers,
            **upload_form(arch.storage_id, DOCUMENT, [signature], ContainerName="Sweep secret"),
        )
    assert answer.status_code == 200, answer.text
    container_id = answer.json()["data"]
    headers = arch.key_headers
    return AreaSeed(
        # leaf_index / first_size: the container's first event in its organisation's log.
        fill={
            "id": container_id,
            "container_id": container_id,
            "leaf_index": "0",
            "first_size": "1",
        },
        identifiers={container_id, "Sweep secret", "Sweep storage", arch.api_key},
        owned_ids={container_id},
        state=lambda: [
            client.get(f"/api/document/{container_id}", headers=headers).json(),
            client.post("/api/document/search", headers=headers, json={}).json(),
        ],
    )
