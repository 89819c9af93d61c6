"""Resumable uploads into a workspace, by the tus 1.0 protocol (issue #13, section 7).
It builds on ``service.upload``, so it imports ``service`` (never the other way round).

An upload is a row (``WorkspaceUpload``) and one file in the blob store's partial folder, which
``cairn serve`` leaves alone at start (unlike the per-process scratch folder), so an upload
survives a restart. Bytes are appended under an exclusive ``flock`` on that file, which the
kernel drops when the writer dies, so two PATCHes never write one upload at once and a killed
server never leaves it locked. ``upload_offset`` is raised only after the bytes below it were
fsynced, so after a kill the upload resumes from the last durable offset: whatever the file
holds beyond it is cut off by the next PATCH. When the last byte arrives the file is processed
like any upload (``service.upload``), then the row and the file go.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor, Privilege
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork, utcnow
from cairn.errors import (
    BadRequest,
    CairnError,
    ChecksumMismatch,
    Conflict,
    Gone,
    IntegrityError,
    NotFound,
    TooLarge,
)
from cairn.workspaces._core import WorkspaceView, _require_writable, get_workspace, log
from cairn.workspaces.models import WorkspaceUpload
from cairn.workspaces.service import _target, target_limits, upload, uploaded_file

__all__ = [
    "CHECKSUM_ALGORITHMS",
    "MAX_UNFINISHED",
    "TUS_EXTENSIONS",
    "TUS_VERSION",
    "Resumable",
    "ResumableUpload",
    "append_upload",
    "create_upload",
    "parse_checksum",
    "parse_metadata",
    "partial_folder",
    "purge_expired_uploads",
    "resumable_max_size",
    "terminate_upload",
    "upload_status",
]

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = ("creation", "creation-with-upload", "termination", "checksum", "expiration")
CHECKSUM_ALGORITHMS = ("sha256",)
MAX_UNFINISHED = 32  # unexpired unfinished uploads per workspace; each holds a partial file

COMMIT_EVERY = 64 * 1024 * 1024
"""A long PATCH without a checksum makes its bytes durable and raises the offset this often, so
a connection lost at 19 of 20 GB resumes near 19 GB. A PATCH with a checksum is all or nothing."""

MSG_UPLOAD_NOT_FOUND = "resumable upload not found"
_METADATA_KEYS = {"filename": 1024, "archive": 100, "ancillary": 5}
_TRUE = {"true", "1", "yes", "on"}
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class Resumable:
    """Where and how a server keeps resumable uploads (from its settings and blob store)."""

    folder: Path
    work_dir: Path
    expiry: timedelta
    max_upload_bytes: int


@dataclass(frozen=True)
class ResumableUpload:
    """An upload's state as HEAD tells it; ``workspace`` is set once the last byte was
    processed (the upload then no longer exists)."""

    id: str
    workspace_id: int
    length: int
    offset: int
    metadata: str
    expires_at: datetime
    workspace: WorkspaceView | None = None


def partial_folder(blobs: BlobStore, data_dir: Path) -> Path:
    """The blob store's partial folder, or ``<data_dir>/partial`` for a store without one."""
    return blobs.partial_folder() or data_dir / "partial"


# --- protocol values ---------------------------------------------------------------------------


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata`` (``key base64,key base64``) as text; ``filename`` is required, and
    ``archive`` and ``ancillary`` mean what the upload form's fields do."""
    pairs: dict[str, str] = {}
    for item in (header or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, encoded = item.partition(" ")
        if not key or " " in encoded.strip():
            raise BadRequest(f"Upload-Metadata: {item[:60]!r} is not 'key base64-value'.")
        if key in pairs:
            raise BadRequest(f"Upload-Metadata names '{key[:60]}' twice.")
        try:
            value = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(
                f"Upload-Metadata: the value of '{key[:60]}' is not base64 of UTF-8 text."
            ) from None
        if "\0" in value:
            raise BadRequest(f"Upload-Metadata: the value of '{key[:60]}' holds a NUL character.")
        longest = _METADATA_KEYS.get(key)
        if longest is not None and len(value) > longest:
            raise BadRequest(f"Upload-Metadata: '{key}' is longer than {longest} characters.")
        pairs[key] = value
    if not pairs.get("filename"):
        raise BadRequest("Upload-Metadata needs the file's name: 'filename <base64>'.")
    return pairs


def parse_checksum(header: str | None) -> bytes | None:
    """The SHA-256 digest an ``Upload-Checksum: sha256 <base64>`` header gives, or None."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm.lower() not in CHECKSUM_ALGORITHMS:
        raise BadRequest(
            f"Upload-Checksum algorithm {algorithm[:20]!r} is not supported; use sha256."
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != hashlib.sha256().digest_size:
        raise BadRequest("Upload-Checksum: the sha256 value is not 32 bytes in base64.")
    return digest


# --- the service calls -------------------------------------------------------------------------


def resumable_max_size(
    session: Session, actor: Actor, workspace_id: int, *, max_upload_bytes: int
) -> int:
    """``Tus-Max-Size`` for a workspace: the upload body limit, or its target's total limit
    if smaller (the same limits a plain upload meets)."""
    workspace = get_workspace(session, actor, workspace_id, need=Privilege.execute)
    return min(max_upload_bytes, target_limits(workspace.archive).max_total_bytes)


def create_upload(
    uow: UnitOfWork,
    blobs: BlobStore,
    actor: Actor,
    workspace_id: int,
    *,
    length: int,
    metadata: str,
    resumable: Resumable,
    body: Iterable[bytes] | None = None,
    declared_size: int | None = None,
    checksum: bytes | None = None,
) -> ResumableUpload:
    """Start an upload of ``length`` bytes into an active, unlocked workspace; with ``body``,
    its first bytes too (tus creation-with-upload)."""
    fields = parse_metadata(metadata)
    with uow.transaction() as session:
        # Locked, so that two creations racing for the last free place count each other.
        workspace = get_workspace(
            session, actor, workspace_id, need=Privilege.execute, for_update=True
        )
        _require_writable(workspace)
        unfinished = session.scalar(
            select(func.count())
            .select_from(WorkspaceUpload)
            .where(
                WorkspaceUpload.workspace_id == workspace.id, WorkspaceUpload.expires_at > utcnow()
            )
        )
        if (unfinished or 0) >= MAX_UNFINISHED:
            raise Conflict(
                f"This workspace has {MAX_UNFINISHED} unfinished resumable uploads already: "
                "finish or terminate one (DELETE its URL) first."
            )
        limit = min(resumable.max_upload_bytes, target_limits(workspace.archive).max_total_bytes)
        if length <= 0:
            raise BadRequest("file payload is zero length")
        if length > limit:
            raise TooLarge(f"The upload's length {length} is over this workspace's limit {limit}.")
        archive = fields.get("archive")
        if archive and _target(archive) != _target(workspace.archive):
            raise BadRequest(
                f"This workspace's target archive is '{workspace.archive or 'default'}'; an "
                f"upload into it cannot name another ('{archive}')."
            )
        upload_id = secrets.token_hex(16)
        path = _make_partial(resumable.folder, upload_id)
        try:
            row = WorkspaceUpload(
                id=upload_id,
                organisation_id=workspace.organisation_id,
                workspace_id=workspace.id,
                created_by=actor.id,
                upload_length=length,
                upload_offset=0,
                upload_metadata=metadata,
                expires_at=utcnow() + resumable.expiry,
            )
            session.add(row)
            log(
                session,
                workspace,
                actor,
                "info",
                f"resumable upload {upload_id} of '{fields['filename']}' ({length} bytes) created",
            )
            session.flush()
            created = _state(row)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    if body is None:
        return created
    return append_upload(
        uow,
        blobs,
        actor,
        workspace_id,
        upload_id,
        offset=0,
        body=body,
        resumable=resumable,
        declared_size=declared_size,
        checksum=checksum,
    )


def upload_status(
    session: Session, actor: Actor, workspace_id: int, upload_id: str
) -> ResumableUpload:
    """The upload's durable offset, length and metadata (HEAD); 410 once it has expired."""
    row = _load(session, actor, workspace_id, upload_id, need=Privilege.view)
    _require_live(row)
    return _state(row)


def append_upload(
    uow: UnitOfWork,
    blobs: BlobStore,
    actor: Actor,
    workspace_id: int,
    upload_id: str,
    *,
    offset: int,
    body: Iterable[bytes],
    resumable: Resumable,
    declared_size: int | None = None,
    checksum: bytes | None = None,
) -> ResumableUpload:
    """Append ``body`` at ``offset`` (tus PATCH), which must be the upload's offset (409).

    Raises ``Conflict`` while another request writes the upload, ``TooLarge`` for bytes past
    the declared length (none of this PATCH's bytes are kept), ``ChecksumMismatch`` when the
    bytes do not hash to ``checksum`` (none kept). When the last byte has arrived, the file
    is processed like a plain upload and the answer carries the workspace.
    """
    with uow.transaction() as session:
        row = _load(session, actor, workspace_id, upload_id, need=Privilege.execute)
        _require_live(row)
        _require_writable(get_workspace(session, actor, workspace_id, need=Privilege.execute))
        _require_offset(row, offset)
        length = row.upload_length
        if declared_size is not None and offset + declared_size > length:
            raise TooLarge(_msg_beyond(length, offset, declared_size))
    path = resumable.folder / upload_id
    with _exclusive(path) as fd:
        with uow.transaction() as session:
            # Under the lock, the offset as it is now: another PATCH may have ended meanwhile.
            row = _load(session, actor, workspace_id, upload_id, need=Privilege.execute)
            _require_offset(row, offset)
            metadata = row.upload_metadata
        size = os.fstat(fd).st_size
        if size < offset:
            raise IntegrityError(
                f"The partial file of upload {upload_id} holds {size} bytes, fewer than its "
                f"durable offset {offset}."
            )
        if size > offset:
            os.ftruncate(fd, offset)  # bytes a killed PATCH wrote past its last durable offset
        position = _write_body(uow, fd, upload_id, offset, length, body, checksum, resumable)
        if position < length:
            with uow.transaction() as session:
                return _state(_load(session, actor, workspace_id, upload_id))
        return _finish(uow, blobs, actor, workspace_id, upload_id, path, metadata, resumable)


def terminate_upload(
    uow: UnitOfWork, actor: Actor, workspace_id: int, upload_id: str, *, resumable: Resumable
) -> None:
    """Delete an unfinished upload and its bytes (tus termination); expired ones too."""
    with uow.transaction() as session:
        _load(session, actor, workspace_id, upload_id, need=Privilege.execute)
    path = resumable.folder / upload_id
    with _exclusive(path):
        with uow.transaction() as session:
            row = _load(session, actor, workspace_id, upload_id, need=Privilege.execute)
            workspace = get_workspace(session, actor, workspace_id)
            log(session, workspace, actor, "info", f"resumable upload {upload_id} terminated")
            session.delete(row)
        path.unlink(missing_ok=True)


def purge_expired_uploads(
    session: Session,
    folder: Path,
    *,
    older_than: timedelta,
    now: datetime | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Remove expired uploads (rows and bytes), and partial files that no row names once
    they are ``older_than`` (a create interrupted between file and row); ``cairn admin gc``.

    An upload being written (its file locked) is left alone. Returns the upload ids removed.
    """
    now = now or utcnow()
    removed: list[str] = []
    expired = session.scalars(select(WorkspaceUpload).where(WorkspaceUpload.expires_at < now)).all()
    for row in expired:
        path = folder / row.id
        try:
            with _exclusive(path, missing_ok=True):
                if not dry_run:
                    session.delete(row)
                    session.flush()
                    path.unlink(missing_ok=True)
        except Conflict:
            continue
        removed.append(row.id)
    named = set(session.scalars(select(WorkspaceUpload.id)).all())
    if folder.is_dir():
        for entry in os.scandir(folder):
            if entry.name in named or entry.name in removed or not entry.is_file():
                continue
            age = now.timestamp() - entry.stat().st_mtime
            if age >= older_than.total_seconds():
                if not dry_run:
                    os.unlink(entry.path)
                removed.append(entry.name)
    return removed


# --- helpers -----------------------------------------------------------------------------------


def _load(
    session: Session,
    actor: Actor,
    workspace_id: int,
    upload_id: str,
    *,
    need: Privilege = Privilege.view,
) -> WorkspaceUpload:
    """The upload if it belongs to this workspace and the actor's organisation; another
    organisation's is not found."""
    row = session.scalar(
        select(WorkspaceUpload)
        .where(WorkspaceUpload.id == upload_id)
        .execution_options(populate_existing=True)
    )
    if (
        row is None
        or row.workspace_id != workspace_id
        or row.organisation_id not in actor.privileges
    ):
        raise NotFound(MSG_UPLOAD_NOT_FOUND)
    actor.require(row.organisation_id, need)
    return row


def _require_live(row: WorkspaceUpload) -> None:
    if row.expires_at <= utcnow():
        raise Gone(
            f"This upload expired at {row.expires_at.isoformat()}; start a new one "
            "(`cairn admin gc` removes expired uploads)."
        )


def _require_offset(row: WorkspaceUpload, offset: int) -> None:
    if offset != row.upload_offset:
        raise Conflict(
            f"Upload-Offset {offset} is not the upload's offset {row.upload_offset}: ask it "
            "with HEAD and resume from there.",
            detail={"offset": row.upload_offset},
        )


def _msg_beyond(length: int, offset: int, size: int, kept: int | None = None) -> str:
    return (
        f"{size} bytes at offset {offset} go past the upload's declared length {length}; "
        f"the upload's offset stays {offset if kept is None else kept}."
    )


def _state(row: WorkspaceUpload) -> ResumableUpload:
    return ResumableUpload(
        id=row.id,
        workspace_id=row.workspace_id,
        length=row.upload_length,
        offset=row.upload_offset,
        metadata=row.upload_metadata,
        expires_at=row.expires_at,
    )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_partial(folder: Path, upload_id: str) -> Path:
    """An empty partial file, durable (its folder entry too) before any row names it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / upload_id
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o600)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(folder)
    return path


@contextlib.contextmanager
def _exclusive(path: Path, *, missing_ok: bool = False) -> Iterator[int]:
    """The partial file, open and exclusively locked (``flock``: one writer, across threads
    and processes; the kernel drops it when its holder dies). Busy is a ``Conflict``."""
    try:
        fd = os.open(path, os.O_RDWR | _O_CLOEXEC)
    except FileNotFoundError:
        if missing_ok:
            yield -1
            return
        raise NotFound(MSG_UPLOAD_NOT_FOUND) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                "Another request is writing this upload; ask its offset with HEAD and resume "
                "once that request has ended."
            ) from None
        yield fd
    finally:
        os.close(fd)


def _advance(uow: UnitOfWork, upload_id: str, old: int, new: int, expiry: timedelta) -> None:
    """Raise the durable offset from ``old`` to ``new`` (the bytes are fsynced already)."""
    with uow.transaction() as session:
        result = session.execute(
            update(WorkspaceUpload)
            .where(WorkspaceUpload.id == upload_id, WorkspaceUpload.upload_offset == old)
            .values(upload_offset=new, expires_at=utcnow() + expiry)
        )
        assert isinstance(result, CursorResult)
        if result.rowcount != 1:
            raise Conflict("The upload changed or went while this request wrote it.")


def _write_body(
    uow: UnitOfWork,
    fd: int,
    upload_id: str,
    offset: int,
    length: int,
    body: Iterable[bytes],
    checksum: bytes | None,
    resumable: Resumable,
) -> int:
    """Write ``body`` at ``offset``; returns the new durable offset."""
    digest = hashlib.sha256() if checksum is not None else None
    committed = position = offset
    try:
        for chunk in body:
            if not chunk:
                continue
            if position + len(chunk) > length:
                os.ftruncate(fd, committed)
                raise TooLarge(
                    _msg_beyond(length, offset, position + len(chunk) - offset, committed)
                )
            view = memoryview(chunk)
            while view:
                view = view[os.pwrite(fd, view, position + len(chunk) - len(view)) :]
            position += len(chunk)
            if digest is not None:
                digest.update(chunk)
            elif position - committed >= COMMIT_EVERY:
                os.fsync(fd)
                _advance(uow, upload_id, committed, position, resumable.expiry)
                committed = position
    except TooLarge:
        raise
    except BaseException:
        # The body stopped short (client gone, timeout): keep what arrived, unless the bytes
        # were to be checked against a checksum, which they now cannot be.
        if digest is None and position > committed:
            os.fsync(fd)
            _advance(uow, upload_id, committed, position, resumable.expiry)
        else:
            os.ftruncate(fd, committed)
        raise
    if digest is not None and digest.digest() != checksum:
        os.ftruncate(fd, committed)
        raise ChecksumMismatch(
            "The bytes sent do not match their Upload-Checksum; none of them were kept."
        )
    if position > committed:
        os.fsync(fd)
        _advance(uow, upload_id, committed, position, resumable.expiry)
    return position


def _finish(
    uow: UnitOfWork,
    blobs: BlobStore,
    actor: Actor,
    workspace_id: int,
    upload_id: str,
    path: Path,
    metadata: str,
    resumable: Resumable,
) -> ResumableUpload:
    """All bytes are in: process them as a plain upload would be, then drop the upload.

    A refusal (a cairn error: the workspace was locked meanwhile, a limit) ends the upload as
    it ends a plain one; anything else (the server stopping) keeps it, and a PATCH of no bytes
    at its end processes it again.
    """
    fields = parse_metadata(metadata)
    with uow.transaction() as session:
        row = _load(session, actor, workspace_id, upload_id)
        state = _state(row)
    receive = uploaded_file(
        path,
        fields["filename"],
        archive=fields.get("archive") or None,
        ancillary=(fields.get("ancillary") or "").strip().lower() in _TRUE,
    )
    try:
        view = upload(
            uow,
            blobs,
            actor,
            receive,
            work_dir=resumable.work_dir,
            workspace_id=workspace_id,
        )
    except CairnError:
        _drop(uow, upload_id, path)
        raise
    _drop(uow, upload_id, path)
    return ResumableUpload(
        id=state.id,
        workspace_id=state.workspace_id,
        length=state.length,
        offset=state.length,
        metadata=state.metadata,
        expires_at=state.expires_at,
        workspace=view,
    )


def _drop(uow: UnitOfWork, upload_id: str, path: Path) -> None:
    with uow.transaction() as session:
        row = session.get(WorkspaceUpload, upload_id)
        if row is not None:
            session.delete(row)
    path.unlink(missing_ok=True)
