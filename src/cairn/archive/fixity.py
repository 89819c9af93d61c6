"""Fixity: re-hash what the archive keeps and compare with the hashes recorded on upload.

For each container the check reads the document where the archive keeps it (the blob store,
or the storage plugin holding it) and every signature blob (as uploaded and as enhanced), and
compares their SHA-256 with ``document_hash`` and the blobs' recorded names. The outcome is an
event (``fixity-ok``, or ``fixity-failed`` naming what differs or is missing), so it is in the
transparency log; a failure also puts the container in status error with the reason, which
search shows (status 7). The hashing runs with no transaction open; the result is stored only
if the container did not change meanwhile. Containers are checked oldest check first, each
again ``CAIRN_ARCHIVE_FIXITY_DAYS`` after its upload or last check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from cairn.archive._plugin_tasks import document_bytes
from cairn.archive.errors import PluginUnavailable
from cairn.archive.log import record_event
from cairn.archive.models import ArchiveContainer, ArchiveSignature
from cairn.archive.plugins import ArchivePlugins
from cairn.archive.retention import TOMBSTONES
from cairn.archive.statuses import ContainerStatus
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork, utcnow
from cairn.errors import IntegrityError, NotFound

__all__ = ["FixityOutcome", "check_container", "check_due"]


@dataclass(frozen=True)
class FixityOutcome:
    container_id: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _blob_problem(blobs: BlobStore, sha256: str, label: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with blobs.open(sha256) as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
    except (NotFound, FileNotFoundError):
        return f"{label} is missing from the blob store"
    except IntegrityError:  # the store checks what it reads: the same finding
        return f"{label} does not match its SHA-256"
    return None if digest.hexdigest() == sha256 else f"{label} does not match its SHA-256"


def check_container(
    uow: UnitOfWork,
    blobs: BlobStore,
    plugins: ArchivePlugins,
    container_id: str,
    *,
    now: datetime | None = None,
) -> FixityOutcome | None:
    """Re-hash one container's stored objects and record the outcome; None for a tombstone
    or a container that changed while it was hashed (the next sweep checks it again)."""
    with uow.read() as session:
        container = session.get(ArchiveContainer, container_id)
        if container is None or container.status in TOMBSTONES:
            return None
        seen = (container.modified_at, container.document_sha256, container.document_path)
        signatures = session.scalars(
            select(ArchiveSignature)
            .where(ArchiveSignature.container_id == container_id)
            .order_by(ArchiveSignature.position)
        ).all()
        blobs_to_check = [
            (sha, f"signature {s.position} ({kind})")
            for s in signatures
            for kind, sha in (("as uploaded", s.raw_sha256), ("enhanced", s.enhanced_sha256))
            if sha is not None
        ]
        problems = []
        try:
            document = document_bytes(blobs, plugins, container)
        except IntegrityError:  # the blob store's own check on read
            document, problems = None, ["the document does not match its recorded SHA-256"]
        except (PluginUnavailable, NotFound, FileNotFoundError) as exc:
            document, problems = None, [f"the document cannot be read: {exc}"]
        expected = container.document_hash
    if document is not None and hashlib.sha256(document).hexdigest() != expected:
        problems.append("the document does not match its recorded SHA-256")
    problems += [p for sha, label in blobs_to_check if (p := _blob_problem(blobs, sha, label))]
    now = now or utcnow()
    with uow.transaction() as session:
        container = session.scalars(
            select(ArchiveContainer).where(ArchiveContainer.id == container_id).with_for_update()
        ).one_or_none()
        if (
            container is None
            or (
                container.modified_at,
                container.document_sha256,
                container.document_path,
            )
            != seen
        ):
            return None
        container.fixity_at = now
        if not problems:
            record_event(session, container, "fixity-ok", None, at=now)
        else:
            reason = "Fixity check failed: " + "; ".join(problems) + "."
            container.status, container.status_reason = int(ContainerStatus.ERROR), reason
            container.modified_at = now
            record_event(session, container, "fixity-failed", reason, at=now)
    return FixityOutcome(container_id, problems)


def check_due(
    uow: UnitOfWork,
    blobs: BlobStore,
    plugins: ArchivePlugins,
    *,
    every: timedelta,
    now: datetime | None = None,
    limit: int = 20,
) -> list[FixityOutcome]:
    """Check up to ``limit`` containers not checked within ``every``, oldest check first. The
    upload hashed everything, so a container's first check is due ``every`` after it."""
    now = now or utcnow()
    last = func.coalesce(ArchiveContainer.fixity_at, ArchiveContainer.created_at)
    with uow.read() as session:
        due = session.scalars(
            select(ArchiveContainer.id)
            .where(
                ArchiveContainer.status.not_in([int(s) for s in TOMBSTONES]),
                last <= now - every,
            )
            .order_by(last)
            .limit(limit)
        ).all()
    outcomes = [check_container(uow, blobs, plugins, cid, now=now) for cid in due]
    return [o for o in outcomes if o is not None]
