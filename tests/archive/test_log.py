"""The transparency log on both databases: every event is a leaf, tree heads are signed and
timestamped, proofs from the routes verify with the RFC 9162 checks, concurrent appends make
one dense log, and each organisation sees only its own log."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cairn.archive import log, merkle
from cairn.archive.models import ArchiveContainer, ArchiveEvent
from cairn.config import Settings
from cairn.db import UnitOfWork
from tests.archive.helpers import ArchiveClient, make_archive_client, upload_form
from tests.archive.pki import LocalPKI, pyhanko_sign
from tests.concurrency import race
from tests.factories import Member

DOCUMENT = b"Log every step.\n"


pytestmark = pytest.mark.usefixtures("trust_the_test_ca")


def _upload(client: TestClient, arch: ArchiveClient, pki: LocalPKI) -> str:
    form = upload_form(arch.storage_id, DOCUMENT, [pyhanko_sign(pki.rsa_signer, DOCUMENT)])
    answer = client.post("/api/document/content", headers=arch.key_headers, **form)
    assert answer.status_code == 200, answer.text
    container_id: str = answer.json()["data"]
    return container_id


def _get(client: TestClient, arch: ArchiveClient, path: str, **params: int) -> dict:  # type: ignore[type-arg]
    org = arch.member.organisation_id
    answer = client.get(
        f"/api/v1/archive/log/{org}/{path}", headers=arch.member.headers, params=params
    )
    assert answer.status_code == 200, answer.text
    found: dict = answer.json()  # type: ignore[type-arg]
    return found


def _b(value: str) -> bytes:
    return base64.b64decode(value)


def test_events_are_leaves_and_proofs_verify(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    first = _upload(client, arch, pki)
    old = _get(client, arch, "tree-head")
    assert old["tree_size"] == 2 and log.check_tree_head(old) == []  # created, verified
    second = _upload(client, arch, pki)
    head = _get(client, arch, "tree-head")
    assert head["tree_size"] == 4 and log.check_tree_head(head) == []
    root = _b(head["root_hash"])
    events = [
        e
        for cid in (first, second)
        for e in client.get(
            f"/api/v1/archive/containers/{cid}/events", headers=arch.member.headers
        ).json()
    ]
    assert sorted(e["log_index"] for e in events) == [0, 1, 2, 3]
    for event in events:
        entry = json.loads(event["log_entry"])
        assert (entry["kind"], entry["index"]) == (event["kind"], event["log_index"])
        proof = _get(client, arch, "inclusion", leaf_index=event["log_index"])
        assert proof["root_hash"] == head["root_hash"]
        leaf = merkle.leaf_hash(event["log_entry"].encode())
        hashes = [_b(h) for h in proof["hashes"]]
        assert merkle.verify_inclusion(leaf, event["log_index"], 4, hashes, root)
        assert not merkle.verify_inclusion(leaf, event["log_index"] ^ 1, 4, hashes, root)
    consistency = _get(client, arch, "consistency", first_size=2)
    hashes = [_b(h) for h in consistency["hashes"]]
    assert merkle.verify_consistency(2, 4, _b(old["root_hash"]), root, hashes)
    forged = _b(old["root_hash"])[::-1]
    assert not merkle.verify_consistency(2, 4, forged, root, hashes)


def test_a_changed_tree_head_fails_its_check(client: TestClient, arch: ArchiveClient) -> None:
    head = _get(client, arch, "tree-head")
    assert head["tree_size"] == 0 and log.check_tree_head(head) == []
    forged = {**head, "tree_size": 1}
    problems = log.check_tree_head(forged)
    assert any("signature does not verify" in p for p in problems), problems


def test_out_of_range_proofs_are_clear_errors(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    _upload(client, arch, pki)
    org, headers = arch.member.organisation_id, arch.member.headers
    for path, params in [
        ("inclusion", {"leaf_index": 2}),
        ("inclusion", {"leaf_index": 0, "tree_size": 3}),
        ("consistency", {"first_size": 3}),
        ("consistency", {"first_size": 2, "tree_size": 1}),
    ]:
        answer = client.get(f"/api/v1/archive/log/{org}/{path}", headers=headers, params=params)
        assert answer.status_code == 422, (path, params, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_each_organisation_sees_only_its_own_log(
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    settings: Settings,
    make_member: Callable[..., Member],
) -> None:
    _upload(client, arch, pki)
    other = make_archive_client(settings, make_member())
    _upload(client, other, pki)
    _upload(client, other, pki)
    assert _get(client, arch, "tree-head")["tree_size"] == 2
    assert _get(client, other, "tree-head")["tree_size"] == 4
    for path in ("tree-head", "inclusion?leaf_index=0", "consistency?first_size=1"):
        answer = client.get(
            f"/api/v1/archive/log/{arch.member.organisation_id}/{path}",
            headers=other.member.headers,
        )
        assert answer.status_code == 404, answer.text


def test_concurrent_appends_make_one_dense_log(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, uow: UnitOfWork
) -> None:
    container_id = _upload(client, arch, pki)

    def append(n: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(3):
                with uow.transaction() as session:
                    container = session.get(ArchiveContainer, container_id)
                    assert container is not None
                    log.record_event(session, container, "exported", f"writer {n}, {i}")

        return run

    assert race(*(append(n) for n in range(4))) == []
    org = arch.member.organisation_id
    with uow.read() as session:
        entries = session.execute(
            select(ArchiveEvent.log_index, ArchiveEvent.log_entry)
            .where(ArchiveEvent.container_id == container_id)
            .order_by(ArchiveEvent.log_index)
        ).all()
        assert [index for index, _ in entries] == list(range(14))
        assert log.tree_size(session, org) == 14
        stored = log.inclusion_proof(session, org, 0).root_hash
    leaves = [str(entry).encode() for _, entry in entries]
    assert stored == _naive_root(leaves)


def _naive_root(entries: list[bytes]) -> bytes:
    if len(entries) == 1:
        return merkle.leaf_hash(entries[0])
    k = 1 << ((len(entries) - 1).bit_length() - 1)
    return merkle.node_hash(_naive_root(entries[:k]), _naive_root(entries[k:]))
