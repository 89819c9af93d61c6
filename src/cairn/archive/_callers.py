"""Who calls the archive: a source system (``X-Api-Key``) or a user acting as their own."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.accounts.models import Organisation
from cairn.accounts.service import Actor, Privilege
from cairn.archive.models import ArchiveSourceSystem, ArchiveStorage
from cairn.errors import Forbidden, Invalid, NotFound, Unauthorized

__all__ = [
    "Caller",
    "authenticate_api_key",
    "caller_for_actor",
    "create_source_system",
    "create_storage",
    "source_system_for",
]

KEY_PREFIX = "cak_"


@dataclass(frozen=True)
class Caller:
    """The organisations a caller may read, those it may write to, and who it is."""

    readable: frozenset[str]
    writable: frozenset[str]
    user_id: str | None = None
    source_system_id: int | None = None  # fixed for an API key; per organisation for a user

    def require_read(self, organisation_id: str) -> None:
        if organisation_id not in self.readable:
            raise NotFound("Not found.")

    def require_write(self, organisation_id: str) -> None:
        self.require_read(organisation_id)
        if organisation_id not in self.writable:
            raise Forbidden("This needs the 'execute' privilege in the organisation.")


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_storage(session: Session, *, organisation: Organisation, name: str) -> ArchiveStorage:
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("A storage needs a name of 1 to 200 characters.")
    storage = ArchiveStorage(organisation_id=organisation.id, name=name)
    session.add(storage)
    session.flush()
    return storage


def create_source_system(
    session: Session, *, organisation: Organisation, name: str
) -> tuple[ArchiveSourceSystem, str]:
    """A source system and its API key; only the key's hash is stored, so show it now."""
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("A source system needs a name of 1 to 200 characters.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    system = ArchiveSourceSystem(
        organisation_id=organisation.id, name=name, key_hash=_hash_key(key)
    )
    session.add(system)
    session.flush()
    return system, key


def authenticate_api_key(session: Session, key: str) -> Caller:
    system = session.scalar(
        select(ArchiveSourceSystem).where(ArchiveSourceSystem.key_hash == _hash_key(key))
    )
    if system is None:
        raise Unauthorized("Invalid API key.")
    orgs = frozenset({system.organisation_id})
    return Caller(readable=orgs, writable=orgs, source_system_id=system.id)


def caller_for_actor(actor: Actor) -> Caller:
    return Caller(
        readable=frozenset(actor.privileges),
        writable=frozenset(o for o, p in actor.privileges.items() if p >= Privilege.execute),
        user_id=actor.id,
    )


def source_system_for(session: Session, caller: Caller, organisation_id: str) -> int:
    """The source system id an upload is recorded under: the key's, or the user's own one
    in that organisation (created on first use)."""
    if caller.source_system_id is not None:
        return caller.source_system_id
    assert caller.user_id is not None
    found = session.scalar(
        select(ArchiveSourceSystem).where(
            ArchiveSourceSystem.organisation_id == organisation_id,
            ArchiveSourceSystem.user_id == caller.user_id,
        )
    )
    if found is None:
        from cairn.accounts.models import User

        user = session.get(User, caller.user_id)
        label = (user.email if user else caller.user_id)[:200]
        found = ArchiveSourceSystem(
            organisation_id=organisation_id, name=label, user_id=caller.user_id
        )
        session.add(found)
        session.flush()
    return found.id
