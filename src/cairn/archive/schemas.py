"""Archive schemas: CryptoPro Archive's wire shapes (camelCase, in an envelope) and cairn's
native ones, with builders from the service's views."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cairn.archive.models import ArchiveEvent, ArchiveStorage, ArchiveValidationReport
from cairn.archive.service import ARCHIVED_STATUSES, ContainerView
from cairn.archive.statuses import DESCRIPTIONS, ContainerStatus

__all__ = [
    "ContainerBrief",
    "ContainerDetails",
    "ContainerRead",
    "Envelope",
    "EnvelopeError",
    "EventRead",
    "IdName",
    "ProofRead",
    "ReportRead",
    "SearchBody",
    "SearchFilters",
    "SearchResult",
    "StatusRead",
    "TreeHeadRead",
    "container_brief",
    "container_details",
    "container_read",
    "event_read",
    "proof_read",
    "report_read",
    "statuses",
    "storage_read",
]

T = TypeVar("T")
INT32 = 2**31 - 1


class Envelope(BaseModel, Generic[T]):
    """Every CryptoPro Archive answer: ``data``, or an error code and its description."""

    data: T | None = Field(description="The answer; null on errors.")
    errorCode: str | None = Field(default=None, description="Null, or a stable error code.")
    errorDescription: str | None = Field(default=None, description="What went wrong.")


class EnvelopeError(BaseModel):
    """An error in the CryptoPro Archive envelope."""

    data: None = Field(default=None, description="Always null on errors.")
    errorCode: str = Field(description="Stable error code, e.g. container-not-found.")
    errorDescription: str = Field(description="What went wrong, for a person.")


class IdName(BaseModel):
    id: int = Field(description="Integer id.")
    name: str = Field(description="Name.")


class StatusRead(BaseModel):
    id: int = Field(description="The status number (fixed; 4 = archival storage).")
    name: str = Field(description="Short name.")
    description: str = Field(description="What the status means.")


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="ignore")

    storageIds: list[int] | None = Field(
        default=None, max_length=1000, description="Only containers in these storages."
    )
    name: str | None = Field(default=None, max_length=500, description="Name substring.")
    sourceSystemId: int | None = Field(
        default=None, ge=-INT32, le=INT32, description="Only this source system's uploads."
    )
    status: int | None = Field(default=None, ge=-INT32, le=INT32, description="Status number.")
    isArchived: bool | None = Field(
        default=None,
        description="true: in archival storage; false: only Temporary containers whose "
        "storage period has ended.",
    )


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filters: SearchFilters | None = Field(default=None, description="Omit for no filter.")
    pageSize: int = Field(default=10, ge=1, le=1000, description="Containers per page.")
    page: int = Field(default=1, ge=1, le=INT32, description="Page number, from 1.")


class ContainerBrief(BaseModel):
    id: str = Field(description="The container's uuid.")
    name: str = Field(description="ContainerName.")
    status: int = Field(description="Status number (GET /api/dictionary/statuses).")
    isArchived: bool = Field(description="In archival storage (all signatures CAdES-A).")


class SearchResult(BaseModel):
    documents: list[ContainerBrief] = Field(description="This page, newest first.")
    totalRecords: int = Field(description="How many containers match.")


class ContainerDetails(ContainerBrief):
    storage: IdName = Field(description="The storage holding the container.")
    sourceSystem: IdName = Field(description="The source system (or user) that uploaded it.")
    hashes: list[str] = Field(description="Base64 SHA-256 of the document, one per signature.")
    signatures: list[str] = Field(description="The signatures, base64 (enhanced once archived).")
    isToBeSigned: bool = Field(description="Always false (archivist signatures are not made).")
    useArchiveCa: bool = Field(description="Whether the archive keeps the document itself.")
    documentType: str = Field(description="The document's media type.")
    saveType: int = Field(description="1 Temporary, 2 Permanent.")
    structureName: str | None = Field(description="StructureName, if sent.")
    modifiedDate: datetime = Field(description="Last change.")
    isCreateDate: datetime = Field(description="Creation time (the reference's field).")
    createDate: datetime = Field(description="Creation time.")
    signatureUpdateDate: datetime | None = Field(
        description="When the next archive timestamp is due."
    )
    archiveUntilDate: datetime | None = Field(description="End of storage (Temporary).")
    isAvailable: bool = Field(description="Whether the archive holds the document's bytes.")
    statusReason: str | None = Field(description="Why the container is in error, if it is.")


class ReportRead(BaseModel):
    id: int
    signature_id: int = Field(description="The signature the report is about.")
    created_at: datetime
    verdict: str = Field(description="valid, untrusted, content-mismatch, broken, ...")
    report: dict[str, Any] = Field(description="The full validation report.")


class EventRead(BaseModel):
    id: int
    at: datetime
    kind: str = Field(description="created, verified, error, enhanced, ...")
    detail: str | None
    log_index: int | None = Field(
        description="The event's leaf in its organisation's transparency log (null for "
        "events older than the log)."
    )
    log_entry: str | None = Field(description="The exact leaf input (canonical JSON).")


class TreeHeadRead(BaseModel):
    """A signed tree head: the canonical JSON of organisation, root_hash, timestamp and
    tree_size, signed (PKCS#1 v1.5, SHA-256) by ``certificate`` and stamped by an RFC 3161
    token over its SHA-256."""

    organisation: str
    tree_size: int
    root_hash: str = Field(description="Base64 RFC 9162 root hash (SHA-256).")
    timestamp: str = Field(description="When the head was signed (ISO 8601).")
    signature: str = Field(description="Base64 signature over the canonical JSON.")
    signature_algorithm: str
    timestamp_token: str = Field(description="Base64 DER RFC 3161 token.")
    certificate: str = Field(description="PEM of the signing certificate.")
    root_certificate: str = Field(description="PEM of the CA that issued it.")


class ProofRead(BaseModel):
    """An RFC 9162 inclusion or consistency proof, hashes in the RFC's order."""

    tree_size: int
    root_hash: str = Field(description="Base64 root of the tree of tree_size.")
    hashes: list[str] = Field(description="Base64 SHA-256 node hashes.")
    leaf_index: int | None = None
    first_size: int | None = None


def proof_read(proof: Any, **which: int) -> ProofRead:
    return ProofRead(
        tree_size=proof.tree_size,
        root_hash=base64.b64encode(proof.root_hash).decode(),
        hashes=[base64.b64encode(h).decode() for h in proof.hashes],
        **which,
    )


def container_brief(container: Any) -> ContainerBrief:
    return ContainerBrief(
        id=container.id,
        name=container.name,
        status=container.status,
        isArchived=container.status in ARCHIVED_STATUSES,
    )


def container_details(view: ContainerView, signature_bytes: list[bytes]) -> ContainerDetails:
    container = view.container
    digest = base64.b64encode(bytes.fromhex(container.document_hash)).decode()
    return ContainerDetails(
        id=container.id,
        name=container.name,
        status=container.status,
        isArchived=view.is_archived,
        storage=IdName(id=view.storage.id, name=view.storage.name),
        sourceSystem=IdName(id=view.source_system.id, name=view.source_system.name),
        hashes=[digest for _ in view.signatures],
        signatures=[base64.b64encode(raw).decode() for raw in signature_bytes],
        isToBeSigned=False,
        useArchiveCa=container.use_archive_ca,
        documentType=container.document_type,
        saveType=container.save_type,
        structureName=container.structure_name,
        modifiedDate=container.modified_at,
        isCreateDate=container.created_at,
        createDate=container.created_at,
        signatureUpdateDate=container.signature_update_at,
        archiveUntilDate=container.archive_until,
        isAvailable=container.document_sha256 is not None
        or container.document_path is not None
        or any(s.attached for s in view.signatures),
        statusReason=container.status_reason,
    )


def storage_read(storage: ArchiveStorage) -> IdName:
    return IdName(id=storage.id, name=storage.name)


def report_read(report: ArchiveValidationReport) -> ReportRead:
    return ReportRead(
        id=report.id,
        signature_id=report.signature_id,
        created_at=report.created_at,
        verdict=report.verdict,
        report=json.loads(report.report),
    )


def event_read(event: ArchiveEvent) -> EventRead:
    return EventRead(
        id=event.id,
        at=event.at,
        kind=event.kind,
        detail=event.detail,
        log_index=event.log_index,
        log_entry=event.log_entry,
    )


def statuses() -> list[StatusRead]:
    return [
        StatusRead(id=int(status), name=name, description=description)
        for status, (name, description) in sorted(DESCRIPTIONS.items())
        if isinstance(status, ContainerStatus)
    ]


class SealCreate(BaseModel):
    """``POST /api/v1/archive/seals``: the workspace or the published run to seal (one of
    them), and where (default: the organisation's first storage)."""

    model_config = ConfigDict(extra="forbid")

    workspace_id: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="A workspace: its content package."
    )
    # Named for what it must be: a run that was published to this server.
    published_run_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="A published run (its UUID or number, or a publication id): its package.",
    )
    storage_id: int | None = Field(default=None, ge=1, le=2**31 - 1)

    @model_validator(mode="after")
    def _one_target(self) -> SealCreate:
        if (self.workspace_id is None) == (self.published_run_id is None):
            raise ValueError("give 'workspace_id' or 'published_run_id' (one of them)")
        return self


class SignatureRead(BaseModel):
    position: int = Field(description="Index in the container (signature-{i}.sig).")
    level: str = Field(description="CAdES level: BES, T, LT or A.")
    verdict: str | None = Field(description="The verdict of the latest verification.")
    expires_at: datetime | None = Field(description="When this signature needs a new stamp.")


class ContainerRead(BaseModel):
    """A container in cairn's own (snake_case) shape."""

    id: str
    name: str
    status: int = Field(description="Status number (GET /api/v1/archive/statuses).")
    status_name: str
    status_reason: str | None = Field(description="Why the container is in error, if it is.")
    organisation_id: str
    storage_id: int
    source_system_id: int
    save_type: int = Field(description="1 Temporary, 2 Permanent.")
    archive_until: datetime | None
    use_archive_ca: bool
    document_type: str
    document_sha256: str = Field(description="SHA-256 of the document (hex).")
    document_size: int
    created_at: datetime
    modified_at: datetime
    signature_update_at: datetime | None = Field(description="When the next stamp is due.")
    storage_plugin: str | None = Field(
        description="The storage plugin keeping the document (ArchiveCaPluginName), if any."
    )
    storage_pending: bool = Field(
        description="True while the document waits to be saved to its storage plugin (cairn's "
        "blob store keeps it until then); the event history shows failed tries."
    )
    signatures: list[SignatureRead]


def container_read(view: ContainerView) -> ContainerRead:
    container = view.container
    return ContainerRead(
        id=container.id,
        name=container.name,
        status=container.status,
        status_name=DESCRIPTIONS[ContainerStatus(container.status)][0],
        status_reason=container.status_reason,
        organisation_id=container.organisation_id,
        storage_id=container.storage_id,
        source_system_id=container.source_system_id,
        save_type=container.save_type,
        archive_until=container.archive_until,
        use_archive_ca=container.use_archive_ca,
        document_type=container.document_type,
        document_sha256=container.document_hash,
        document_size=container.document_size,
        created_at=container.created_at,
        modified_at=container.modified_at,
        signature_update_at=container.signature_update_at,
        storage_plugin=container.plugin_name,
        storage_pending=container.plugin_name is not None and container.document_path is None,
        signatures=[
            SignatureRead(
                position=s.position, level=s.level, verdict=s.verdict, expires_at=s.expires_at
            )
            for s in view.signatures
        ],
    )
