"""The enhancement worker: claims verified (or re-stamp-due) containers one at a time,
enhances their signatures with no transaction open, and stores the result only if it still
holds the claim.

A claim is a lease (owner, until) set by one conditional UPDATE, so of two workers only one
gets a container and no signature is ever stamped twice. A worker that crashes leaves its
container in status enhancing with a lease that runs out; the next run claims it again.
Enhanced signatures are written to the blob store first and referenced only in the final
transaction, so a half-enhanced signature is never served.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from cairn.archive._plugin_tasks import run_plugin_tasks, schedule_post_processing
from cairn.archive.counts import compact_counts
from cairn.archive.fixity import check_due
from cairn.archive.log import record_event
from cairn.archive.models import ArchiveContainer, ArchiveSignature
from cairn.archive.plugins import ArchivePlugins, load_plugins
from cairn.archive.retention import end_storage
from cairn.archive.seal import archive_trust_roots
from cairn.archive.settings import ArchiveSettings
from cairn.archive.statuses import ContainerStatus
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork, utcnow

if TYPE_CHECKING:
    from asn1crypto import cms  # type: ignore[import-untyped]
    from asn1crypto import x509 as asn1_x509

# Enhancement imports pyHanko, asn1crypto and the TSA code when a container is claimed: the
# idle loop inside ``cairn serve`` needs none of them (issue #13, RSS goal).

__all__ = [
    "LEASE",
    "EnhanceContext",
    "Worker",
    "claim_next",
    "enhance_claimed",
    "mark_due",
    "wake_workers",
]

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)
CLAIMABLE = (ContainerStatus.VERIFIED, ContainerStatus.ENHANCING, ContainerStatus.RESTAMP_DUE)


@dataclass
class EnhanceContext:
    """What enhancement needs besides the database: blobs, settings, the data folder."""

    blobs: BlobStore
    settings: ArchiveSettings
    data_dir: Path

    @property
    def plugins(self) -> ArchivePlugins:
        """The storage and post-processing plugins plugin-config.json enables (re-read when
        the file changes)."""
        return load_plugins(self.settings.archive_plugins)


def mark_due(uow: UnitOfWork, *, now: datetime | None = None) -> int:
    """Archived containers whose signatureUpdateDate has passed become re-stamp due."""
    now = now or utcnow()
    with uow.transaction() as session:
        result = session.execute(
            update(ArchiveContainer)
            .where(
                ArchiveContainer.status == int(ContainerStatus.ARCHIVED),
                ArchiveContainer.signature_update_at <= now,
            )
            .values(status=int(ContainerStatus.RESTAMP_DUE), modified_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _claim(session: Session, container_id: str, worker_id: str, now: datetime) -> bool:
    result = session.execute(
        update(ArchiveContainer)
        .where(
            ArchiveContainer.id == container_id,
            ArchiveContainer.status.in_([int(s) for s in CLAIMABLE]),
            or_(ArchiveContainer.lease_until.is_(None), ArchiveContainer.lease_until < now),
        )
        .values(
            status=int(ContainerStatus.ENHANCING),
            lease_owner=worker_id,
            lease_until=now + LEASE,
            modified_at=now,
        )
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def claim_next(
    uow: UnitOfWork, *, worker_id: str, container_id: str | None = None, now: datetime | None = None
) -> str | None:
    """Claim one container to enhance (``container_id``, or the oldest waiting); None when
    there is none or another worker holds it."""
    now = now or utcnow()
    with uow.transaction() as session:
        if container_id is not None:
            candidates = [container_id]
        else:
            candidates = list(
                session.scalars(
                    select(ArchiveContainer.id)
                    .where(
                        ArchiveContainer.status.in_([int(s) for s in CLAIMABLE]),
                        or_(
                            ArchiveContainer.lease_until.is_(None),
                            ArchiveContainer.lease_until < now,
                        ),
                    )
                    .order_by(ArchiveContainer.created_at)
                    .limit(5)
                )
            )
        for candidate in candidates:
            if _claim(session, candidate, worker_id, now):
                claimed = session.get(ArchiveContainer, candidate)
                assert claimed is not None
                record_event(session, claimed, "enhancing")
                return candidate
    return None


def _token_maker(
    context: EnhanceContext,
) -> tuple[Callable[[bytes], cms.ContentInfo], list[asn1_x509.Certificate]]:
    from asn1crypto import cms, tsp

    from cairn.archive.tsa import open_tsa, request_timestamp, timestamp_token

    if context.settings.tsa_url:
        url = context.settings.tsa_url

        def from_url(digest: bytes) -> cms.ContentInfo:
            imprint = {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest}
            return request_timestamp(url, tsp.MessageImprint(imprint))

        return from_url, []
    tsa = open_tsa(context.data_dir)

    def from_own(digest: bytes) -> cms.ContentInfo:
        # Re-read from its DER: placed into the signature, a freshly built token would be
        # deep-copied and re-encoded by asn1crypto (a few ms each; issue #17, the ratio).
        token: cms.ContentInfo = cms.ContentInfo.load(timestamp_token(digest, tsa=tsa).dump())
        return token

    return from_own, [tsa.cert, tsa.root]


def enhance_claimed(
    uow: UnitOfWork, context: EnhanceContext, container_id: str, *, worker_id: str
) -> bool:
    """Enhance every signature of a claimed container and store the result; False when the
    claim was lost meanwhile (nothing is stored then)."""
    from cairn.archive._crldp import fetch_crls
    from cairn.archive._enhance import EnhanceFailed, enhance_signature
    from cairn.archive._ocsp import fetch_ocsp
    from cairn.archive._roots import load_crls

    with uow.read() as session:  # the claim is re-checked under a row lock in _finish
        container = session.get(ArchiveContainer, container_id)
        if container is None or container.lease_owner != worker_id:
            return False
        document_blob = container.document_sha256
        content_sha256 = bytes.fromhex(container.document_hash)
        restamp = container.signature_update_at is not None
        work = [
            (s.id, s.enhanced_sha256 or s.raw_sha256)
            for s in session.scalars(
                select(ArchiveSignature)
                .where(ArchiveSignature.container_id == container_id)
                .order_by(ArchiveSignature.position)
            )
        ]
    document = context.blobs.read_bytes(document_blob) if document_blob else None
    make_token, tsa_certs = _token_maker(context)
    roots = archive_trust_roots(context.settings, context.data_dir)
    crls = load_crls(context.settings.archive_trust_roots)
    results: dict[int, tuple[str, str, datetime]] = {}
    reason, notes = None, []
    try:
        for signature_id, sha in work:
            done = enhance_signature(
                context.blobs.read_bytes(sha),
                document=document,
                content_sha256=content_sha256,
                make_token=make_token,
                tsa_certs=tsa_certs,
                trust_roots=roots,
                crls=crls,
                fetch_ocsp=fetch_ocsp if context.settings.archive_fetch_ocsp else None,
                fetch_crls=fetch_crls if context.settings.archive_fetch_crls else None,
            )
            results[signature_id] = (context.blobs.put(done.raw).sha256, done.level, done.expires)
            notes += done.notes
    except EnhanceFailed as exc:
        reason = str(exc)
    note = " ".join(dict.fromkeys(notes)) or None
    return _finish(uow, context, container_id, worker_id, results, reason, restamp, note)


def _finish(
    uow: UnitOfWork,
    context: EnhanceContext,
    container_id: str,
    worker_id: str,
    results: dict[int, tuple[str, str, datetime]],
    reason: str | None,
    restamp: bool,
    note: str | None = None,
) -> bool:
    now = utcnow()
    with uow.transaction() as session:
        container = session.scalars(
            select(ArchiveContainer)
            .where(ArchiveContainer.id == container_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if (
            container is None
            or container.lease_owner != worker_id
            or container.status != int(ContainerStatus.ENHANCING)
        ):
            return False
        # Read before the container changes, so its changes go out in one UPDATE.
        signatures = session.scalars(
            select(ArchiveSignature).where(ArchiveSignature.container_id == container_id)
        ).all()
        container.lease_owner = container.lease_until = None
        container.modified_at = now
        # Post-processors run after enhancement, also when it ended in error (the reference).
        schedule_post_processing(session, container_id, context.plugins)
        if reason is not None:
            container.status, container.status_reason = int(ContainerStatus.ERROR), reason
            record_event(session, container, "error", reason)
            return True
        expiries = []
        for signature in signatures:
            sha, level, expires = results[signature.id]
            margin = timedelta(days=context.settings.archive_restamp_margin_days)
            signature.enhanced_sha256, signature.level = sha, level
            signature.expires_at = expires - margin
            expiries.append(signature.expires_at)
        container.status = int(ContainerStatus.ARCHIVED)
        container.signature_update_at = min(expiries) if expiries else None
        kind = "re-stamped" if restamp else "enhanced"
        record_event(session, container, kind, note)  # note: e.g. why a CRL was not used
        return True


# The workers of this process, woken by ``wake_workers`` when an upload has committed a
# container to enhance, so it does not wait out a poll interval (issue #17). Workers in other
# processes (`cairn archive worker`) still find it by polling.
_workers: weakref.WeakSet[Worker] = weakref.WeakSet()


def wake_workers() -> None:
    """Tell this process's background workers that there is work (call after the commit)."""
    for worker in list(_workers):
        worker._wake.set()


class Worker:
    """The background loop inside ``cairn serve``: enhance what was uploaded (woken by
    ``wake_workers``, else every ``interval`` seconds), make the plugin calls that are due,
    and do the periodic chores once per interval."""

    def __init__(self, uow: UnitOfWork, context: EnhanceContext, *, interval: float = 2.0):
        self.uow, self.context, self.interval = uow, context, interval
        self.worker_id = f"worker-{threading.get_native_id()}-{id(self):x}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cairn-archive", daemon=True)

    def start(self) -> None:
        _workers.add(self)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        _workers.discard(self)

    def run_once(self, *, chores: bool = True) -> bool:
        """Enhance one container, run the plugin calls that are due (saves to storage plugins,
        post-processing) and, with ``chores``, mark due containers, end the storage of
        Temporary containers past their date, re-hash a few containers due a fixity check and
        fold the search counters; False when there was nothing."""
        ended = checked = None
        if chores:
            mark_due(self.uow)
        claimed = claim_next(self.uow, worker_id=self.worker_id)
        if claimed is not None:
            enhance_claimed(self.uow, self.context, claimed, worker_id=self.worker_id)
        plugins = self.context.plugins
        ran = run_plugin_tasks(self.uow, self.context.blobs, plugins)
        if chores:
            ended = end_storage(self.uow, plugins)
            every = timedelta(days=self.context.settings.archive_fixity_days)
            checked = check_due(self.uow, self.context.blobs, plugins, every=every, limit=5)
            compact_counts(self.uow)  # not "busy": folding counts never makes more work
        return claimed is not None or ran > 0 or bool(ended) or bool(checked)

    def _run(self) -> None:
        chores_at = 0.0
        while not self._stop.is_set():
            # A burst of uploads is enhanced back to back; the chores wait for the interval.
            now = time.monotonic()
            chores = now >= chores_at
            if chores:
                chores_at = now + self.interval
            self._wake.clear()
            try:
                busy = self.run_once(chores=chores)
            except Exception:  # a broken container must not stop the archive
                log.exception("archive worker: enhancement failed; retrying later")
                busy = False
            if not busy:
                self._wake.wait(self.interval)
