"""The signed archive's behaviour: put, search, read and download containers.

A container is created in one transaction together with the verdicts of its signatures:
verification (the slow part) runs first with no transaction open, so there is no window in
which a container exists unverified, and a crash before the commit leaves nothing behind
(only content-addressed blobs, which ``cairn admin gc`` collects).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, column, func, or_, select, table, text
from sqlalchemy.orm import Session

from cairn.archive._callers import (
    Caller,
    authenticate_api_key,
    caller_for_actor,
    create_source_system,
    create_storage,
    source_system_for,
)
from cairn.archive._plugin_tasks import STORE
from cairn.archive._sniff import document_type
from cairn.archive._worker import wake_workers
from cairn.archive.counts import count_containers
from cairn.archive.errors import (
    ContainerNotFound,
    StorageNotFound,
    UnusableInput,
)
from cairn.archive.log import record_event
from cairn.archive.models import (
    ArchiveContainer,
    ArchiveEvent,
    ArchivePluginTask,
    ArchiveSignature,
    ArchiveSourceSystem,
    ArchiveStorage,
    ArchiveValidationReport,
)
from cairn.archive.plugins import load_plugins
from cairn.archive.seal import archive_trust_roots
from cairn.archive.settings import ArchiveSettings
from cairn.archive.statuses import ContainerStatus, SaveType
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork, utcnow

if TYPE_CHECKING:
    from cairn.archive.verify import Verification

__all__ = [
    "ARCHIVED_STATUSES",
    "Caller",
    "ContainerView",
    "PutRequest",
    "SearchFilters",
    "authenticate_api_key",
    "caller_for_actor",
    "create_source_system",
    "create_storage",
    "get_container",
    "list_events",
    "list_reports",
    "list_storages",
    "put_container",
    "search_containers",
    "signature_bytes",
    "signatures_zip",
]

ARCHIVED_STATUSES = (ContainerStatus.ARCHIVED, ContainerStatus.RESTAMP_DUE)


@dataclass
class PutRequest:
    """A new container as the caller sent it; the document is a scratch file on disk."""

    name: str
    storage_id: int
    save_type: SaveType
    document: Path
    signatures: list[bytes]
    archive_until: datetime | None = None
    structure_name: str | None = None
    use_archive_ca: bool = False
    plugin_name: str | None = None
    declared_type: str | None = None


@dataclass
class ContainerView:
    """A container with what its details show: storage, source system and signatures."""

    container: ArchiveContainer
    storage: ArchiveStorage
    source_system: ArchiveSourceSystem
    signatures: list[ArchiveSignature] = field(default_factory=list)

    @property
    def is_archived(self) -> bool:
        return self.container.status in ARCHIVED_STATUSES


def _check_request(request: PutRequest, *, now: datetime, settings: ArchiveSettings) -> None:
    if not request.name.strip():
        raise UnusableInput("ContainerName is required.")
    if len(request.name) > 500:
        raise UnusableInput("ContainerName is longer than 500 characters.")
    if request.structure_name is not None and len(request.structure_name) > 500:
        raise UnusableInput("StructureName is longer than 500 characters.")
    if request.save_type is SaveType.TEMPORARY:
        if request.archive_until is None:
            raise UnusableInput("ArchiveDate is required when SaveType is Temporary.")
        if request.archive_until <= now:
            raise UnusableInput(
                f"ArchiveDate {request.archive_until.isoformat()} is in the past: "
                "a Temporary container must be kept until a future date."
            )
    if request.document.stat().st_size == 0:
        raise UnusableInput("Content is empty: send the signed file (or the attached signature).")
    if len(request.signatures) > settings.archive_max_signatures:
        raise UnusableInput(f"More than {settings.archive_max_signatures} signatures.")


def _attached_content(document: Path) -> bytes | None:
    """The encapsulated content when ``document`` is itself an attached CMS signature."""
    if document.stat().st_size > 64 * 1024 * 1024:
        return None
    raw = document.read_bytes()
    if raw[:1] != b"\x30":
        return None
    from cairn.archive.verify import parse_signature  # see put_container

    try:
        signed = parse_signature(raw)
    except Exception:  # not a signature: an ordinary document
        return None
    content = signed["encap_content_info"]["content"]
    return None if content.native is None else bytes(content.native)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _summary(verdicts: Sequence[Verification]) -> tuple[ContainerStatus, str | None]:
    failed = [(i, v) for i, v in enumerate(verdicts) if not v.ok]
    if not failed:
        return ContainerStatus.VERIFIED, None
    reason = " ".join(f"Signature {i}: {v.reason}" for i, v in failed)
    return ContainerStatus.ERROR, reason


def put_container(
    uow: UnitOfWork,
    blobs: BlobStore,
    caller: Caller,
    request: PutRequest,
    *,
    settings: ArchiveSettings,
    data_dir: Path | None = None,
    now: datetime | None = None,
    on_created: Callable[[Session, ArchiveContainer], None] | None = None,
) -> str:
    """Store a document with its signatures, verify them, and return the container's id.

    ``data_dir`` adds cairn's seal root to the trust roots (``seal.archive_trust_roots``);
    ``on_created`` runs in the container's own transaction (a seal's provenance record).

    Refused before anything is stored: missing or malformed fields, a past ArchiveDate, an
    unknown storage or plugin, signatures that are not binary CMS, ``Signs`` sent with an
    attached signature. A signature that parses but does not verify is kept, and the
    container is in status error with the reason.
    """
    # Verification imports pyHanko (~45 MiB): only when the first container arrives, not when
    # the server starts (issue #13, RSS goal).
    from cairn.archive.verify import load_crls, parse_signature, verify_signature

    now = now or utcnow()
    _check_request(request, now=now, settings=settings)
    attached_content = _attached_content(request.document)
    if attached_content is not None and request.signatures:
        raise UnusableInput(
            "Content is an attached signature: send no Signs with it (or send the signed "
            "file as Content and its detached signatures as Signs)."
        )
    signatures = [parse_signature(raw) for raw in request.signatures]  # NotCms, Base64Signature
    for index, signed in enumerate(signatures):
        if signed["encap_content_info"]["content"].native is not None:
            raise UnusableInput(
                f"Signature {index} is an attached signature: send it as Content, without Signs."
            )
    if attached_content is None and not signatures:
        raise UnusableInput(
            "No signatures: send detached signatures as Signs, or an attached signature as Content."
        )
    raws = request.signatures or [request.document.read_bytes()]
    with uow.read() as session:  # checks first: a bad storage wastes no verification
        storage = _storage(session, caller, request.storage_id)
        caller.require_write(storage.organisation_id)
    _check_plugin(request, settings)
    roots = archive_trust_roots(settings, data_dir)
    document: bytes | Path | None = None if attached_content is not None else request.document
    crls = load_crls(settings.archive_trust_roots)  # a signer revoked at signing time fails
    verdicts = [
        verify_signature(raw, document, trust_roots=roots, crls=crls, now=now) for raw in raws
    ]
    status, reason = _summary(verdicts)
    if attached_content is not None:
        doc_hash = hashlib.sha256(attached_content).hexdigest()
        doc_size, doc_type = len(attached_content), document_type(None, attached_content[:4096])
        doc_blob = None
    else:
        doc_hash, doc_size = _sha256(request.document), request.document.stat().st_size
        with request.document.open("rb") as handle:
            doc_type = document_type(request.declared_type, handle.read(4096))
        doc_blob = blobs.put_file(request.document).sha256 if request.use_archive_ca else None
    signature_blobs = [blobs.put(raw).sha256 for raw in raws]
    with uow.transaction() as session:
        storage = _storage(session, caller, request.storage_id)
        caller.require_write(storage.organisation_id)
        container = ArchiveContainer(
            organisation_id=storage.organisation_id,
            storage_id=storage.id,
            source_system_id=source_system_for(session, caller, storage.organisation_id),
            name=request.name.strip(),
            structure_name=request.structure_name,
            save_type=int(request.save_type),
            archive_until=request.archive_until,
            status=int(status),
            status_reason=reason,
            use_archive_ca=request.use_archive_ca,
            plugin_name=request.plugin_name,
            document_sha256=doc_blob,
            document_hash=doc_hash,
            document_size=doc_size,
            document_type=doc_type,
            created_at=now,
            modified_at=now,
        )
        session.add(container)
        session.flush()
        record_event(
            session, container, "created", f"{len(raws)} signature(s), storage {storage.id}"
        )
        if request.plugin_name and doc_blob is not None:
            session.add(  # saved in the background; the blob store keeps it until then
                ArchivePluginTask(
                    container_id=container.id,
                    kind=STORE,
                    plugin_name=request.plugin_name,
                    attempts=0,
                    next_at=now,
                    gave_up=False,
                )
            )
        for position, (blob, verdict) in enumerate(zip(signature_blobs, verdicts, strict=True)):
            signature = ArchiveSignature(
                container_id=container.id,
                position=position,
                raw_sha256=blob,
                attached=verdict.attached,
                level=verdict.level,
                verdict=verdict.verdict,
                expires_at=verdict.expires,
            )
            session.add(signature)
            session.flush()
            session.add(
                ArchiveValidationReport(
                    container_id=container.id,
                    signature_id=signature.id,
                    created_at=now,
                    verdict=verdict.verdict,
                    report=json.dumps(verdict.report, default=str, sort_keys=True),
                )
            )
        record_event(session, container, "verified" if reason is None else "error", reason)
        if on_created is not None:
            on_created(session, container)
        session.flush()
        container_id = container.id
    wake_workers()  # committed: this process's worker takes it now, not at its next poll
    return container_id


def _check_plugin(request: PutRequest, settings: ArchiveSettings) -> None:
    """``ArchiveCaPluginName`` must name an enabled, writable storage plugin, and only makes
    sense when the archive keeps the document (UseArchiveCa)."""
    if not request.plugin_name:
        return
    load_plugins(settings.archive_plugins).storage_for_saving(request.plugin_name)
    if not request.use_archive_ca:
        raise UnusableInput(
            "ArchiveCaPluginName names where the archive keeps the document: send "
            "UseArchiveCa=true with it (with UseArchiveCa=false the client keeps the document)."
        )


def _storage(session: Session, caller: Caller, storage_id: int) -> ArchiveStorage:
    storage = session.get(ArchiveStorage, storage_id)
    if storage is None or storage.organisation_id not in caller.readable:
        raise StorageNotFound(f"Storage {storage_id} not found (see GET /api/user/storages).")
    return storage


def list_storages(session: Session, caller: Caller) -> Sequence[ArchiveStorage]:
    return session.scalars(
        select(ArchiveStorage)
        .where(ArchiveStorage.organisation_id.in_(sorted(caller.readable)))
        .order_by(ArchiveStorage.id)
    ).all()


def _container(session: Session, caller: Caller, container_id: str) -> ArchiveContainer:
    container = session.get(ArchiveContainer, container_id)
    if container is None or container.organisation_id not in caller.readable:
        raise ContainerNotFound(f"Container {container_id} not found.")
    return container


def get_container(session: Session, caller: Caller, container_id: str) -> ContainerView:
    """The container with its storage, source system and signatures (404 when another
    organisation's)."""
    container = _container(session, caller, container_id)
    storage = session.get(ArchiveStorage, container.storage_id)
    system = session.get(ArchiveSourceSystem, container.source_system_id)
    assert storage is not None and system is not None
    signatures = session.scalars(
        select(ArchiveSignature)
        .where(ArchiveSignature.container_id == container.id)
        .order_by(ArchiveSignature.position)
    ).all()
    return ContainerView(container, storage, system, list(signatures))


@dataclass
class SearchFilters:
    storage_ids: list[int] | None = None
    name: str | None = None
    source_system_id: int | None = None
    status: int | None = None
    is_archived: bool | None = None


# The SQLite FTS5 trigram table over container names (migration archive_0002).
_NAMES = table("archive_container_names", column("container_id"), column("name"))


def _name_condition(name: str, dialect: str) -> list[ColumnElement[bool]]:
    """A case-insensitive substring match on the name. PostgreSQL's trigram index serves the
    LIKE itself; on SQLite the FTS5 trigram table narrows to candidates first (it needs 3
    characters), and the LIKE keeps the result exact either way."""
    escaped = name.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    conditions: list[ColumnElement[bool]] = [
        func.lower(ArchiveContainer.name).like(f"%{escaped}%", escape="\\")
    ]
    if dialect == "sqlite" and len(name) >= 3:
        phrase = '"' + name.replace('"', '""') + '"'
        candidates = select(_NAMES.c.container_id).where(
            text("archive_container_names MATCH :phrase").bindparams(phrase=phrase)
        )
        conditions.append(ArchiveContainer.id.in_(candidates))
    return conditions


def _conditions(
    caller: Caller, filters: SearchFilters, now: datetime, dialect: str
) -> list[ColumnElement[bool]]:
    organisation: ColumnElement[str] = ArchiveContainer.organisation_id.expression
    if dialect == "sqlite" and filters.name and len(filters.name) >= 3:
        # ``|| ''`` keeps SQLite from walking the organisation's index row by row: the few
        # candidates from the name index are looked up by id instead.
        organisation = ArchiveContainer.organisation_id + ""
    conditions: list[ColumnElement[bool]] = [organisation.in_(sorted(caller.readable))]
    if filters.storage_ids is not None:
        conditions.append(ArchiveContainer.storage_id.in_(filters.storage_ids))
    if filters.name:
        conditions += _name_condition(filters.name, dialect)
    if filters.source_system_id is not None:
        conditions.append(ArchiveContainer.source_system_id == filters.source_system_id)
    if filters.status is not None:
        conditions.append(ArchiveContainer.status == filters.status)
    if filters.is_archived is True:
        conditions.append(ArchiveContainer.status.in_([int(s) for s in ARCHIVED_STATUSES]))
    elif filters.is_archived is False:
        # The reference: false lists only Temporary containers whose storage period ended.
        conditions += [
            ArchiveContainer.save_type == int(SaveType.TEMPORARY),
            or_(
                ArchiveContainer.archive_until <= now,
                ArchiveContainer.status == int(ContainerStatus.STORAGE_ENDED),
            ),
        ]
    return conditions


def _statuses(filters: SearchFilters) -> list[int] | None:
    """The statuses ``status`` and ``isArchived=true`` allow together (None: any)."""
    allowed = None if filters.status is None else {filters.status}
    if filters.is_archived is True:
        archived = {int(s) for s in ARCHIVED_STATUSES}
        allowed = archived if allowed is None else allowed & archived
    return None if allowed is None else sorted(allowed)


def search_containers(
    session: Session,
    caller: Caller,
    filters: SearchFilters,
    *,
    page: int = 1,
    page_size: int = 10,
    now: datetime | None = None,
) -> tuple[Sequence[ArchiveContainer], int]:
    """The caller's containers matching ``filters``, newest first, one page (from 1).

    The total comes from the trigger-kept counts (``cairn.archive.counts``) when every filter
    is an equality one; a name substring or ``isArchived=false`` (which depends on the time)
    counts the matching rows, served by the trigram and ``org_ended`` indexes.
    """
    if page < 1 or not 1 <= page_size <= 1000:
        raise UnusableInput("page counts from 1; pageSize is 1 to 1000.")
    conditions = _conditions(caller, filters, now or utcnow(), session.get_bind().dialect.name)
    if filters.name or filters.is_archived is False:
        total = session.scalar(
            select(func.count()).select_from(ArchiveContainer).where(*conditions)
        )
    else:
        total = count_containers(
            session,
            sorted(caller.readable),
            storage_ids=filters.storage_ids,
            source_system_id=filters.source_system_id,
            statuses=_statuses(filters),
        )
    items = session.scalars(
        select(ArchiveContainer)
        .where(*conditions)
        .order_by(ArchiveContainer.created_at.desc(), ArchiveContainer.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return items, int(total or 0)


def signature_bytes(blobs: BlobStore, view: ContainerView) -> list[bytes]:
    """Each signature's bytes: enhanced when the container is archived, else as uploaded
    (never a half-enhanced one: the enhanced blob is set only once complete)."""
    found = []
    for signature in view.signatures:
        use_enhanced = view.is_archived and signature.enhanced_sha256 is not None
        sha = signature.enhanced_sha256 if use_enhanced else signature.raw_sha256
        assert sha is not None
        found.append(blobs.read_bytes(sha))
    return found


def signatures_zip(session: Session, blobs: BlobStore, caller: Caller, container_id: str) -> bytes:
    """A zip of ``signature-{i}.sig``: enhanced when the container is archived, else as
    uploaded (never a half-enhanced one: the enhanced blob is set only when complete)."""
    view = get_container(session, caller, container_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for position, raw in enumerate(signature_bytes(blobs, view)):
            archive.writestr(f"signature-{position}.sig", raw)
    return buffer.getvalue()


def list_reports(
    session: Session, caller: Caller, container_id: str
) -> Sequence[ArchiveValidationReport]:
    _container(session, caller, container_id)
    return session.scalars(
        select(ArchiveValidationReport)
        .where(ArchiveValidationReport.container_id == container_id)
        .order_by(ArchiveValidationReport.id)
    ).all()


def list_events(session: Session, caller: Caller, container_id: str) -> Sequence[ArchiveEvent]:
    _container(session, caller, container_id)
    return session.scalars(
        select(ArchiveEvent)
        .where(ArchiveEvent.container_id == container_id)
        .order_by(ArchiveEvent.id)
    ).all()


def restamp_due(expiries: Sequence[datetime | None], *, margin_days: int) -> datetime | None:
    """signatureUpdateDate: the earliest expiry among the certificates needed, minus the margin."""
    known = [e for e in expiries if e is not None]
    return min(known) - timedelta(days=margin_days) if known else None
