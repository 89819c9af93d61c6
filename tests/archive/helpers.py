"""Archive test helpers: a storage and a source system for a member, and upload forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cairn.accounts.models import Organisation
from cairn.archive import service
from cairn.config import Settings
from cairn.db import make_engine, make_sessionmaker, session_scope
from tests.factories import Member


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
