"""The enhancement worker on both databases: verified containers become archived (CAdES-A),
two workers never stamp one container twice, a crashed run is picked up, re-stamping."""

from __future__ import annotations

import io
import threading
import zipfile
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cairn.archive import cades
from cairn.archive._worker import (
    LEASE,
    EnhanceContext,
    Worker,
    claim_next,
    enhance_claimed,
    mark_due,
)
from cairn.archive.models import ArchiveEvent
from cairn.archive.settings import ArchiveSettings
from cairn.archive.verify import parse_signature
from cairn.config import Settings
from cairn.db import UnitOfWork, utcnow
from tests.archive.helpers import ArchiveClient, upload_form
from tests.archive.pki import LocalPKI, pyhanko_sign

DOCUMENT = b"Enhance me.\n"


pytestmark = pytest.mark.usefixtures("trust_the_test_ca")


def _context(client: TestClient, settings: Settings) -> EnhanceContext:
    return EnhanceContext(client.app.state.blobs, ArchiveSettings(), settings.data_dir)  # type: ignore[attr-defined]


def _upload(client: TestClient, arch: ArchiveClient, pki: LocalPKI, **fields: str) -> str:
    signs = [pyhanko_sign(pki.rsa_signer, DOCUMENT)]
    answer = client.post(
        "/api/document/content",
        headers=arch.key_headers,
        **upload_form(arch.storage_id, DOCUMENT, signs, **fields),
    )
    assert answer.status_code == 200, answer.text
    container_id: str = answer.json()["data"]
    return container_id


def _signatures(client: TestClient, arch: ArchiveClient, container_id: str) -> list[bytes]:
    zipped = client.get(f"/api/document/{container_id}/sign", headers=arch.key_headers)
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        return [archive.read(name) for name in archive.namelist()]


def _ats_count(raw: bytes) -> int:
    signer = parse_signature(raw)["signer_infos"][0]
    return cades.unsigned_attr_types(signer).count(cades.ATS_V3)


@pytest.mark.parametrize("keep_document", ["true", "false"])
def test_a_verified_container_is_archived_as_cades_a(
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    settings: Settings,
    uow: UnitOfWork,
    keep_document: str,
) -> None:
    container_id = _upload(client, arch, pki, UseArchiveCa=keep_document)
    uploaded = _signatures(client, arch, container_id)
    worker = Worker(uow, _context(client, settings))
    assert worker.run_once() is True
    assert worker.run_once() is False  # nothing left
    details = client.get(f"/api/document/{container_id}", headers=arch.key_headers).json()["data"]
    assert details["status"] == 4 and details["isArchived"] is True
    assert details["signatureUpdateDate"] is not None
    served = _signatures(client, arch, container_id)
    assert served != uploaded and _ats_count(served[0]) == 1
    assert cades.detect_level(parse_signature(served[0])) == "A"
    with uow.transaction() as session:
        kinds = list(session.scalars(select(ArchiveEvent.kind).order_by(ArchiveEvent.id)))
    assert kinds == ["created", "verified", "enhancing", "enhanced"]


def test_two_workers_on_one_container_one_wins(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, settings: Settings, uow: UnitOfWork
) -> None:
    container_id = _upload(client, arch, pki)
    barrier = threading.Barrier(2)
    won: dict[str, str | None] = {}

    def race(name: str) -> None:
        barrier.wait()
        won[name] = claim_next(uow, worker_id=name, container_id=container_id)

    threads = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [name for name, got in won.items() if got == container_id]
    assert len(winners) == 1 and sorted(won.values(), key=str) == sorted(
        [container_id, None], key=str
    )
    context = _context(client, settings)
    loser = "w1" if winners == ["w0"] else "w0"
    assert enhance_claimed(uow, context, container_id, worker_id=loser) is False
    assert enhance_claimed(uow, context, container_id, worker_id=winners[0]) is True
    assert _ats_count(_signatures(client, arch, container_id)[0]) == 1


def test_a_crashed_run_is_picked_up_and_the_stale_worker_stores_nothing(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, settings: Settings, uow: UnitOfWork
) -> None:
    container_id = _upload(client, arch, pki)
    uploaded = _signatures(client, arch, container_id)
    assert claim_next(uow, worker_id="crashed") == container_id  # ...and then it dies
    status = client.get(f"/api/document/{container_id}/status", headers=arch.key_headers)
    assert status.json()["data"] == 3  # enhancing
    assert _signatures(client, arch, container_id) == uploaded  # nothing half-written served
    assert claim_next(uow, worker_id="next") is None  # the lease still holds
    later = utcnow() + LEASE + timedelta(seconds=1)
    assert claim_next(uow, worker_id="next", now=later) == container_id
    context = _context(client, settings)
    assert enhance_claimed(uow, context, container_id, worker_id="next") is True
    assert enhance_claimed(uow, context, container_id, worker_id="crashed") is False
    assert _ats_count(_signatures(client, arch, container_id)[0]) == 1


def test_restamping_when_due(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, settings: Settings, uow: UnitOfWork
) -> None:
    container_id = _upload(client, arch, pki)
    worker = Worker(uow, _context(client, settings))
    worker.run_once()
    assert mark_due(uow) == 0  # not due yet
    assert mark_due(uow, now=utcnow() + timedelta(days=365 * 30)) == 1
    status = client.get(f"/api/document/{container_id}/status", headers=arch.key_headers)
    assert status.json()["data"] == 5  # re-stamp due
    claimed = claim_next(uow, worker_id="restamper")
    assert claimed == container_id
    assert enhance_claimed(uow, _context(client, settings), container_id, worker_id="restamper")
    assert _ats_count(_signatures(client, arch, container_id)[0]) == 2
    with uow.transaction() as session:
        kinds = list(session.scalars(select(ArchiveEvent.kind).order_by(ArchiveEvent.id)))
    assert kinds[-1] == "re-stamped"


def test_an_upload_wakes_the_background_worker(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, settings: Settings, uow: UnitOfWork
) -> None:
    # An interval of an hour: the container can only be archived within the test's bound
    # because the upload woke the worker (issue #17: no waiting out a poll interval).
    worker = Worker(uow, _context(client, settings), interval=3600)
    worker.start()
    try:
        container_id = _upload(client, arch, pki)
        url = f"/api/document/{container_id}/status"
        for _ in range(600):
            if client.get(url, headers=arch.key_headers).json()["data"] == 4:
                break
            threading.Event().wait(0.1)
        assert client.get(url, headers=arch.key_headers).json()["data"] == 4
    finally:
        worker.stop()
    assert worker._thread.is_alive() is False  # stop() woke it from its hour-long wait
