"""Archive test helpers: a storage and a source system for a member, and upload forms."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import cms, tsp  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from cairn.accounts.models import Organisation
from cairn.archive import cades, service
from cairn.archive._enhance import Enhanced, enhance_signature
from cairn.archive.models import ArchiveContainer
from cairn.archive.statuses import ContainerStatus
from cairn.archive.tsa import Tsa, timestamp_token
from cairn.archive.verify import load_crls, load_trust_roots, parse_signature
from cairn.config import Settings
from cairn.db import make_engine, make_sessionmaker, session_scope, utcnow
from tests.archive.pki import LocalPKI
from tests.factories import Member, make_org


@dataclass
class ArchiveClient:
    """A first organisation's member with one storage and one source system."""

    member: Member
    storage_id: int
    source_system_id: int
    api_key: str

    @property
    def key_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}


def make_archive_client(settings: Settings, member: Member, storage: str = "Main") -> ArchiveClient:
    engine = make_engine(settings)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            org = session.get(Organisation, member.organisation_id)
            assert org is not None
            created = service.create_storage(session, organisation=org, name=storage)
            system, key = service.create_source_system(session, organisation=org, name="Docs")
            return ArchiveClient(member, created.id, system.id, key)
    finally:
        engine.dispose()


@dataclass
class ContainerSet:
    """A new organisation's containers (rows only, no documents), read by ``caller``."""

    caller: service.Caller
    storages: list[int]
    systems: list[int]


def make_containers(
    session: Session,
    names: Sequence[str],
    *,
    storages: int = 1,
    systems: int = 1,
    rng: random.Random | None = None,
) -> ContainerSet:
    """A new organisation with ``storages`` storages, ``systems`` source systems and one
    container per name, newest first. Without ``rng`` each is Permanent and archived in the
    first storage; with it, storage, source system, status and save type are mixed (three in
    ten Temporary, half of those past their date)."""
    org = make_org(session)
    storage_ids = [
        service.create_storage(session, organisation=org, name=f"S{i}").id
        for i in range(1, storages + 1)
    ]
    system_ids = [
        service.create_source_system(session, organisation=org, name=f"T{i}")[0].id
        for i in range(1, systems + 1)
    ]
    now = utcnow()
    for i, name in enumerate(names):
        storage, system, status, until = (
            storage_ids[0],
            system_ids[0],
            ContainerStatus.ARCHIVED,
            None,
        )
        if rng is not None:
            temporary = rng.random() < 0.3
            storage, system = rng.choice(storage_ids), rng.choice(system_ids)
            until = now + timedelta(days=rng.choice([-1, 1])) if temporary else None
            status = rng.choice(list(ContainerStatus))
        session.add(
            ArchiveContainer(
                organisation_id=org.id,
                storage_id=storage,
                source_system_id=system,
                name=name,
                save_type=1 if until is not None else 2,
                archive_until=until,
                status=int(status),
                document_hash="0" * 64,
                document_size=1,
                document_type="text/plain",
                created_at=now - timedelta(minutes=i),
                modified_at=now,
            )
        )
    session.flush()
    caller = service.Caller(
        readable=frozenset({org.id}), writable=frozenset({org.id}), source_system_id=system_ids[0]
    )
    return ContainerSet(caller, storage_ids, system_ids)


def upload_form(
    storage_id: int,
    content: bytes,
    signs: list[bytes] | None = None,
    **fields: str,
) -> dict[str, Any]:
    """``files`` for httpx: the curl of CryptoPro's guide, with fields overridable."""
    data = {
        "ContainerName": "MyContainer",
        "ArchiveDate": "21.07.2030",
        "StorageId": str(storage_id),
        "SaveType": "Temporary",
        "UseArchiveCa": "false",
    }
    data.update(fields)
    parts: list[tuple[str, Any]] = [(k, (None, v)) for k, v in data.items() if v is not None]
    for raw in signs or []:
        parts.append(("Signs", ("a-detached.sig", raw, "application/sig")))
    parts.append(("Content", ("document.txt", content, "text/plain")))
    return {"files": parts}


def pki_tsa(pki: LocalPKI) -> Tsa:
    """The test PKI's TSA as a cairn ``Tsa``: it can stamp a past time (its certificate is
    valid from a day ago, cairn's own TSA's from its creation)."""
    return Tsa(pki.tsa.key, pki.tsa.asn1_cert, pki.ca.asn1_cert, pki.folder)  # type: ignore[arg-type]


def stamped_at(raw: bytes, tsa: Tsa, when: datetime) -> bytes:
    """``raw`` with a signature timestamp whose genTime is ``when`` (CAdES-T)."""
    signed = parse_signature(raw)

    def token(digest: bytes) -> cms.ContentInfo:
        imprint = {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest}
        return tsa.token(tsp.MessageImprint(imprint), now=when)

    assert cades.add_signature_timestamp(signed, token)
    dumped: bytes = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    return dumped


def enhance_with(
    raw: bytes,
    tsa: Tsa,
    roots: Path,
    *,
    document: bytes,
    keep_document: bool = True,
    **options: Any,
) -> Enhanced:
    """``enhance_signature`` of ``raw`` over ``document`` (kept by the archive unless
    ``keep_document`` is false: only its hash), stamped by ``tsa``, trusting the certificates
    and CRLs of the ``roots`` folder; ``options`` go to it as they are (``fetch_ocsp``)."""
    return enhance_signature(
        raw,
        document=document if keep_document else None,
        content_sha256=hashlib.sha256(document).digest(),
        make_token=lambda digest: timestamp_token(digest, tsa=tsa),
        tsa_certs=[tsa.cert, tsa.root],
        trust_roots=load_trust_roots(roots),
        crls=load_crls(roots),
        **options,
    )
