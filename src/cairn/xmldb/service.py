"""XML database service: the organisation's database, committed snapshots, atomic commits.

Transactions are snapshot isolation with first-committer-wins (docs/xmldb.md): a transaction
reads the committed versions of its begin and never waits; its commit re-checks, in one
database transaction, that every document it changed is still at the version it read, and
applies all its changes or none. Sessions, queries and node OIDs live in ``_session``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cairn.accounts import service as accounts
from cairn.accounts.models import Organisation
from cairn.accounts.service import Actor, Privilege
from cairn.db.base import new_id, utcnow
from cairn.errors import Invalid, NotFound
from cairn.xmldb._indexes import IndexDef
from cairn.xmldb.errors import TransactionConflict
from cairn.xmldb.models import XmlCollection, XmlDatabase, XmlDocument, XmlIndex

__all__ = [
    "Change",
    "DocRef",
    "Snapshot",
    "commit_changes",
    "ensure_database",
    "generation_of",
    "read_snapshot",
    "read_snapshots",
    "resolve_organisation",
    "save_node_table",
    "validate_name",
]

MAX_NAME = 255


@dataclass(frozen=True)
class DocRef:
    """A committed (or, inside a transaction, pending) version of one document."""

    id: str
    name: str
    collection: str | None
    sha256: str
    size: int
    version: int
    node_count: int
    first_node_id: int
    next_node_id: int
    node_ids_sha256: str | None = None  # set once an update moved ids off first + position
    node_ids: tuple[int, ...] | None = None  # pending in a transaction, not yet a blob
    records_sha256: str | None = None  # the saved node table (``_nodes``), once built


@dataclass
class Snapshot:
    """Everything of one database as of one moment: documents by name, collection names."""

    database_id: str
    organisation_id: str
    generation: int = 0  # the database's generation it was read at (never changed after)
    documents: dict[str, DocRef] = field(default_factory=dict)
    collections: set[str] = field(default_factory=set)
    indexes: dict[str, IndexDef] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One document's change in a commit: ``new`` None deletes; ``base`` None creates."""

    name: str
    base: DocRef | None
    new: DocRef | None


def validate_name(name: str, what: str = "document") -> str:
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise Invalid(f"A {what} name is 1 to {MAX_NAME} printable characters.")
    return name


def resolve_organisation(session: Session, actor: Actor, database: str) -> str:
    """The organisation a database name means: its id, or its name, among the actor's."""
    if database in actor.privileges:
        return database
    try:
        org = accounts.find_organisation_by_name(session, database)
    except NotFound:
        org = None
    if org is None or org.id not in actor.privileges:
        raise NotFound(f"No database {database!r}: name one of your organisations.")
    return org.id


def ensure_database(session: Session, actor: Actor, database: str) -> XmlDatabase:
    """The organisation's database, created on first use (a racing creator is tolerated)."""
    org_id = resolve_organisation(session, actor, database)
    actor.require(org_id, Privilege.view)
    found = session.scalar(select(XmlDatabase).where(XmlDatabase.organisation_id == org_id))
    if found is not None:
        return found
    if session.get(Organisation, org_id) is None:
        raise NotFound("Organisation not found.")
    created = XmlDatabase(id=new_id(), organisation_id=org_id, created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(created)
            session.flush()
    except IntegrityError:
        found = session.scalar(select(XmlDatabase).where(XmlDatabase.organisation_id == org_id))
        if found is None:
            raise
        return found
    return created


def generation_of(session: Session, database_id: str) -> int | None:
    """The database's generation (None: no such database), bumped by every commit."""
    found: int | None = session.scalar(
        select(XmlDatabase.generation).where(XmlDatabase.id == database_id)
    )
    return found


def read_snapshots(session: Session) -> list[Snapshot]:
    """The committed state of every database (for preloading at start)."""
    return [read_snapshot(session, d) for d in session.scalars(select(XmlDatabase))]


def read_snapshot(session: Session, database: XmlDatabase) -> Snapshot:
    """The committed state of the database, read in one statement per table."""
    colls = {
        c.id: c.name
        for c in session.scalars(
            select(XmlCollection).where(XmlCollection.database_id == database.id)
        )
    }
    snap = Snapshot(
        database.id,
        database.organisation_id,
        generation=database.generation,
        collections=set(colls.values()),
    )
    for d in session.scalars(select(XmlDocument).where(XmlDocument.database_id == database.id)):
        snap.documents[d.name] = DocRef(
            id=d.id,
            name=d.name,
            collection=colls.get(d.collection_id) if d.collection_id else None,
            sha256=d.sha256,
            size=d.size,
            version=d.version,
            node_count=d.node_count,
            first_node_id=d.first_node_id,
            next_node_id=d.next_node_id,
            node_ids_sha256=d.node_ids_sha256,
            records_sha256=d.records_sha256,
        )
    for i in session.scalars(select(XmlIndex).where(XmlIndex.database_id == database.id)):
        snap.indexes[i.name] = IndexDef(i.name, i.path, i.key, i.key_type)
    return snap


def _collection_id(session: Session, database_id: str, name: str | None) -> str | None:
    if name is None:
        return None
    found = session.scalar(
        select(XmlCollection.id).where(
            XmlCollection.database_id == database_id, XmlCollection.name == name
        )
    )
    if found is not None:
        return found
    coll = XmlCollection(id=new_id(), database_id=database_id, name=name, created_at=utcnow())
    session.add(coll)
    session.flush()
    return coll.id


def commit_changes(
    session: Session,
    *,
    database_id: str,
    changes: list[Change],
    collections: set[str],
    dropped: Iterable[str] = (),
    indexes: Iterable[IndexDef] = (),
    dropped_indexes: Iterable[str] = (),
) -> None:
    """Apply a transaction's changes, all or none: every changed document must still be at
    the version the transaction read (first committer wins), else :class:`TransactionConflict`.
    ``dropped`` collections go last; one that another transaction put a document into since
    is a conflict too. Index definitions: the dropped go (one dropped meanwhile is the same
    end), then the new come (a name another transaction took first is a conflict). The
    caller's database transaction makes it atomic. The database's generation goes up first
    (its row then orders the commits), so every server sees its snapshot is stale."""
    session.execute(
        update(XmlDatabase)
        .where(XmlDatabase.id == database_id)
        .values(generation=XmlDatabase.generation + 1)
    )
    for name in sorted(collections):
        _collection_id(session, database_id, name)
    for change in changes:
        base, new = change.base, change.new
        if base is None and new is not None:
            if session.scalar(
                select(XmlDocument.id).where(
                    XmlDocument.database_id == database_id, XmlDocument.name == new.name
                )
            ):
                raise _conflict(change.name)
            session.add(
                XmlDocument(
                    id=new.id,
                    database_id=database_id,
                    collection_id=_collection_id(session, database_id, new.collection),
                    name=new.name,
                    sha256=new.sha256,
                    size=new.size,
                    version=1,
                    node_count=new.node_count,
                    first_node_id=new.first_node_id,
                    next_node_id=new.next_node_id,
                    node_ids_sha256=new.node_ids_sha256,
                    created_at=utcnow(),
                    modified_at=utcnow(),
                )
            )
            try:
                session.flush()
            except IntegrityError:
                raise _conflict(change.name) from None
            continue
        assert base is not None
        where = (
            XmlDocument.id == base.id,
            XmlDocument.database_id == database_id,
            XmlDocument.version == base.version,
        )
        if new is None:
            done = session.execute(delete(XmlDocument).where(*where))
        else:
            done = session.execute(
                update(XmlDocument)
                .where(*where)
                .values(
                    sha256=new.sha256,
                    size=new.size,
                    version=base.version + 1,
                    node_count=new.node_count,
                    first_node_id=new.first_node_id,
                    next_node_id=new.next_node_id,
                    node_ids_sha256=new.node_ids_sha256,
                    records_sha256=None,
                    collection_id=_collection_id(session, database_id, new.collection),
                    modified_at=utcnow(),
                )
            )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise _conflict(change.name)
    for name in sorted(dropped):
        coll_id = session.scalar(
            select(XmlCollection.id).where(
                XmlCollection.database_id == database_id, XmlCollection.name == name
            )
        )
        if coll_id is None:
            continue  # dropped by another transaction already: the same end
        if session.scalar(select(XmlDocument.id).where(XmlDocument.collection_id == coll_id)):
            raise TransactionConflict(
                f"Collection {name!r} received a document from a transaction that committed "
                "first; nothing of this transaction was applied. Begin again and retry."
            )
        session.execute(delete(XmlCollection).where(XmlCollection.id == coll_id))
    for name in sorted(dropped_indexes):
        session.execute(
            delete(XmlIndex).where(XmlIndex.database_id == database_id, XmlIndex.name == name)
        )
    for index in indexes:
        taken = select(XmlIndex.id).where(
            XmlIndex.database_id == database_id, XmlIndex.name == index.name
        )
        if session.scalar(taken) is not None:
            raise _index_conflict(index.name)
        session.add(
            XmlIndex(
                id=new_id(),
                database_id=database_id,
                name=index.name,
                path=index.path,
                key=index.key,
                key_type=index.type,
                created_at=utcnow(),
            )
        )
        try:
            session.flush()
        except IntegrityError:
            raise _index_conflict(index.name) from None
    session.flush()


def save_node_table(session: Session, document_id: str, sha256: str, records: str) -> None:
    """Note the saved node table of a document's content (unless the content has changed
    since: a later version builds its own)."""
    session.execute(
        update(XmlDocument)
        .where(XmlDocument.id == document_id, XmlDocument.sha256 == sha256)
        .values(records_sha256=records)
    )


def _index_conflict(name: str) -> TransactionConflict:
    return TransactionConflict(
        f"Index {name!r} was created by a transaction that committed first; "
        "nothing of this transaction was applied. Begin again and retry."
    )


def _conflict(name: str) -> TransactionConflict:
    return TransactionConflict(
        f"Document {name!r} was changed by a transaction that committed first; "
        "nothing of this transaction was applied. Begin again and retry."
    )
