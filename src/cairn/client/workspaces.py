"""SDK for upload workspaces: upload files or archives, inspect, download, lock, release.

>>> workspace = client.workspaces.upload("paper.tar.gz", archive="math")
>>> workspace.status, [f.message for f in workspace.findings]

Files of ``DEFAULT_RESUMABLE_THRESHOLD`` bytes or more go by the tus 1.0 resumable protocol: in
chunks, each checked by its SHA-256, resumed from the server's offset after a dropped
connection or a restarted server, by the SDK itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel

from cairn import errors
from cairn.client._model import Resource

if TYPE_CHECKING:
    from cairn.client._client import Client

__all__ = [
    "DEFAULT_RESUMABLE_CHUNK",
    "DEFAULT_RESUMABLE_THRESHOLD",
    "Checkpoint",
    "Finding",
    "Progress",
    "RemovedFile",
    "Workspace",
    "WorkspaceFile",
    "Workspaces",
]

API = "/api/v1/workspaces"

DEFAULT_RESUMABLE_THRESHOLD = 64 * 1024 * 1024
"""Files this large or larger are uploaded resumably (tus), unless ``resumable=`` says."""
DEFAULT_RESUMABLE_CHUNK = 32 * 1024 * 1024
"""Bytes per PATCH: at most this much is sent again after an interruption."""
RESUMABLE_RETRIES = 8
"""Failed PATCHes in a row (with no progress between them) before a resumable upload gives up."""
_TUS = {"Tus-Resumable": "1.0.0"}
_PIECE = 1024 * 1024

Progress = Callable[[int], None]
"""Called with the number of bytes just sent or received (negative when a resumed upload
sends again bytes that were reported but never reached the server durably)."""


class Finding(BaseModel):
    """A warning or error of the latest operation; ``path`` is None for the whole upload."""

    level: Literal["info", "warn", "fatal"] | str
    path: str | None = None
    message: str


class WorkspaceFile(Resource):
    path: str
    size: int
    type: str
    sha256: str
    modified_at: datetime


class _ProgressReader(io.RawIOBase):
    """A read-only file that reports every chunk read (httpx streams multipart files)."""

    def __init__(self, handle: BinaryIO, progress: Progress | None) -> None:
        self._handle = handle
        self._progress = progress

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        if data and self._progress:
            self._progress(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Workspace(Resource):
    """One upload workspace; a listing fills every field but the package size and findings."""

    id: int
    organisation_id: str
    owner_id: str
    archive: str | None = None
    state: str
    lock_state: str
    status: str
    source_format: str
    checksum: str | None = None
    total_size: int
    file_count: int
    created_at: datetime
    modified_at: datetime
    package_size: int | None = None
    upload_started_at: datetime | None = None
    upload_completed_at: datetime | None = None
    findings: list[Finding] = []
    removed_count: int = 0
    removed_size: int = 0
    stored_size: int = 0

    @property
    def path(self) -> str:
        return f"{API}/{self.id}"

    def refresh(self) -> Workspace:
        self._update(self._client.get_json(self.path))
        return self

    @property
    def files(self) -> Iterator[WorkspaceFile]:
        """The current files, by path, fetched page by page."""
        for item in self._client.paginate(f"{self.path}/files"):
            yield WorkspaceFile.bind(self._client, item)

    def file(self, path: str) -> WorkspaceFile:
        return WorkspaceFile.bind(self._client, self._client.get_json(f"{self.path}/files/{path}"))

    def upload(
        self,
        path: str | Path,
        *,
        archive: str | None = None,
        ancillary: bool = False,
        progress: Progress | None = None,
        resumable: bool | None = None,
        resumable_threshold: int = DEFAULT_RESUMABLE_THRESHOLD,
    ) -> Workspace:
        """Add a file or archive; files with the same path are replaced.

        ``resumable`` forces (True) or avoids (False) the resumable protocol; by default it is
        used for files of ``resumable_threshold`` bytes or more.
        """
        source = Path(path)
        if _is_resumable(source, resumable, resumable_threshold):
            metadata = {"archive": archive, "ancillary": "true" if ancillary else None}
            send_resumable(self._client, self.id, source, metadata, progress=progress)
            return self.refresh()
        self._update(
            _send_upload(
                self._client,
                f"{self.path}/files",
                source,
                {"archive": archive, "ancillary": "true" if ancillary else None},
                progress,
            )
        )
        return self

    def download(
        self, dest: str | Path, *, file: str | None = None, progress: Progress | None = None
    ) -> Path:
        """Save the whole workspace as .tar.gz (or one ``file``) to ``dest`` (a file or folder)."""
        url = f"{self.path}/content/{file}" if file else f"{self.path}/package"
        target = Path(dest)
        if target.is_dir():
            target = target / (Path(file).name if file else f"{self.id}.tar.gz")
        self._client.download(url, target, progress=progress)
        return target

    def log(self) -> list[dict[str, Any]]:
        """The source log: every action, request, warning and error, oldest first."""
        entries: list[dict[str, Any]] = self._client.get_json(f"{self.path}/log")
        return entries

    def _act(self, method: str, suffix: str) -> Workspace:
        self._update(self._client.send_json(method, f"{self.path}{suffix}"))
        return self

    def delete_file(self, path: str) -> Workspace:
        return self._act("DELETE", f"/files/{path}")

    def delete_all(self) -> Workspace:
        """Delete every file."""
        return self._act("DELETE", "/files")

    def lock(self) -> Workspace:
        """No uploads or deletions until ``unlock``."""
        return self._act("POST", "/lock")

    def unlock(self) -> Workspace:
        return self._act("POST", "/unlock")

    def release(self) -> Workspace:
        """You are done with it: it cannot change until ``unrelease``."""
        return self._act("POST", "/release")

    def unrelease(self) -> Workspace:
        return self._act("POST", "/unrelease")

    def delete(self) -> Workspace:
        """Delete every file; the record stays with state DELETED."""
        return self._act("DELETE", "")

    # --- checkpoints -------------------------------------------------------------------------

    def save_checkpoint(self) -> Checkpoint:
        """Save the current files as a checkpoint (the same content gives the same one)."""
        body = self._client.send_json("POST", f"{self.path}/checkpoints")
        return Checkpoint.bind(self._client, body)

    @property
    def checkpoints(self) -> Iterator[Checkpoint]:
        """The checkpoints, newest first."""
        for item in self._client.paginate(f"{self.path}/checkpoints"):
            yield Checkpoint.bind(self._client, item)

    def checkpoint(self, key: str) -> Checkpoint:
        """One checkpoint, by its id or its checksum."""
        body = self._client.get_json(f"{self.path}/checkpoints/{key}")
        return Checkpoint.bind(self._client, body)

    def restore(self, checkpoint: Checkpoint | str) -> Workspace:
        """Make the files exactly the checkpoint's (given as one, or its id or checksum)."""
        key = checkpoint.id if isinstance(checkpoint, Checkpoint) else checkpoint
        return self._act("POST", f"/checkpoints/{key}/restore")

    def delete_checkpoints(self) -> None:
        """Delete every checkpoint; the files stay."""
        self._client.request("DELETE", f"{self.path}/checkpoints")

    # --- removed files (the quarantine) ------------------------------------------------------

    @property
    def removed(self) -> Iterator[RemovedFile]:
        """The files the checks removed or a later change replaced, newest first."""
        for item in self._client.paginate(f"{self.path}/removed"):
            yield RemovedFile.bind(self._client, item)

    def removed_file(self, entry_id: str) -> RemovedFile:
        """One removed file, by its id."""
        body = self._client.get_json(f"{self.path}/removed/{entry_id}")
        return RemovedFile.bind(self._client, body)

    def restore_removed(
        self,
        entry: RemovedFile | str,
        *,
        path: str | None = None,
        overwrite: bool = False,
    ) -> Workspace:
        """Put a removed file back (at ``path`` if given), through an upload's checks; a
        current file of that name raises ``Conflict`` unless ``overwrite``."""
        key = entry.id if isinstance(entry, RemovedFile) else entry
        params: dict[str, Any] = {"overwrite": "true" if overwrite else "false"}
        if path:
            params["path"] = path
        self._update(
            self._client.send_json("POST", f"{self.path}/removed/{key}/restore", params=params)
        )
        return self


class RemovedFile(Resource):
    """A file a check removed (or a change replaced), kept: ``download`` or restore it."""

    id: str
    workspace_id: int
    path: str
    rule: str
    reason: str
    removed_at: datetime
    removed_by: str | None = None
    size: int
    type: str
    sha256: str
    modified_at: datetime

    @property
    def url(self) -> str:
        return f"{API}/{self.workspace_id}/removed/{self.id}"

    def download(self, dest: str | Path, *, progress: Progress | None = None) -> Path:
        """Save its bytes to ``dest`` (a file, or a folder: then under its own name)."""
        target = Path(dest)
        if target.is_dir():
            target = target / self.path.rsplit("/", 1)[-1]
        self._client.download(f"{self.url}/content", target, progress=progress)
        return target


class Checkpoint(Resource):
    """A saved file set of a workspace: restore it (``Workspace.restore``) or download it."""

    id: str
    workspace_id: int
    checksum: str
    file_count: int
    total_size: int
    package_size: int | None = None
    created_at: datetime
    created_by: str | None = None

    @property
    def path(self) -> str:
        return f"{API}/{self.workspace_id}/checkpoints/{self.id}"

    def download(self, dest: str | Path, *, progress: Progress | None = None) -> Path:
        """Save the checkpoint's files as .tar.gz to ``dest`` (a file or folder)."""
        target = Path(dest)
        if target.is_dir():
            target = target / f"{self.workspace_id}-checkpoint-{self.checksum[:12]}.tar.gz"
        self._client.download(f"{self.path}/package", target, progress=progress)
        return target

    def delete(self) -> None:
        self._client.request("DELETE", self.path)


def _send_upload(
    client: Client,
    url: str,
    path: Path,
    form: dict[str, str | None],
    progress: Progress | None,
) -> Any:
    data = {name: value for name, value in form.items() if value}
    with path.open("rb") as handle:
        reader = _ProgressReader(handle, progress)
        return client.request("POST", url, files={"file": (path.name, reader)}, data=data).json()


def _is_resumable(path: Path, resumable: bool | None, threshold: int) -> bool:
    return resumable if resumable is not None else path.stat().st_size >= threshold


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _pieces(data: bytes, progress: Progress | None) -> Iterator[bytes]:
    """A chunk in 1 MiB pieces, reporting each as it is handed to the connection."""
    view = memoryview(data)
    for start in range(0, len(data), _PIECE):
        piece = bytes(view[start : start + _PIECE])
        yield piece
        if progress:
            progress(len(piece))


def _retryable(exc: errors.CairnError) -> bool:
    """Worth resuming after: the connection failed (no status), the server failed (5xx), the
    offset moved (409: another request or a lost answer) or the bytes arrived damaged (460)."""
    status = exc.status_code
    return status is None or status >= 500 or status in (409, 460)


def send_resumable(
    client: Client,
    workspace_id: int,
    path: Path,
    metadata: dict[str, str | None],
    *,
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_RESUMABLE_CHUNK,
    retries: int = RESUMABLE_RETRIES,
    pause: float = 1.0,
) -> None:
    """Upload ``path`` into the workspace by tus 1.0, resuming by itself after failures.

    Written on httpx rather than with tuspy, which is built on requests: the SDK's one
    ``httpx.Client`` (its token, timeouts, and the in-process transport tests inject) then
    carries every request. The last PATCH returns once the server has processed the file.
    """
    size = path.stat().st_size
    fields = {"filename": path.name, **metadata}
    header = ",".join(f"{key} {_b64(value)}" for key, value in fields.items() if value)
    created = client.request(
        "POST",
        f"{API}/{workspace_id}/uploads",
        headers={**_TUS, "Upload-Length": str(size), "Upload-Metadata": header},
    )
    url = urlsplit(created.headers["location"]).path  # the server's path, via our base URL
    try:
        _send_chunks(client, url, path, size, progress, chunk_size, retries, pause)
    except BaseException:
        # Given up (or interrupted): free the server's partial file now, not at expiry.
        with contextlib.suppress(errors.CairnError):
            client.request("DELETE", url, headers=_TUS)
        raise


def _send_chunks(
    client: Client,
    url: str,
    path: Path,
    size: int,
    progress: Progress | None,
    chunk_size: int,
    retries: int,
    pause: float,
) -> None:
    offset = sent = failures = 0

    def count(n: int) -> None:
        nonlocal sent
        sent += n
        if progress:
            progress(n)

    with path.open("rb") as handle:
        while offset < size:
            handle.seek(offset)
            chunk = handle.read(min(chunk_size, size - offset))
            digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode("ascii")
            headers = {
                **_TUS,
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(len(chunk)),
                "Upload-Offset": str(offset),
                "Upload-Checksum": f"sha256 {digest}",
            }
            try:
                answer = client.request(
                    "PATCH", url, content=_pieces(chunk, count), headers=headers
                )
                offset = int(answer.headers["upload-offset"])
                failures = 0
            except errors.CairnError as exc:
                failures += 1
                if not _retryable(exc) or failures > retries:
                    raise
                time.sleep(pause * min(failures, 5))
                offset = _server_offset(client, url, offset)
            if sent != offset:  # bytes reported as sent that the server does not hold
                count(offset - sent)


def _server_offset(client: Client, url: str, fallback: int) -> int:
    """Where the server stands (HEAD), or ``fallback`` while it cannot be asked."""
    try:
        answer = client.request("HEAD", url, headers=_TUS)
    except errors.CairnError as exc:
        if _retryable(exc):
            return fallback
        raise
    return int(answer.headers["upload-offset"])


class Workspaces:
    """``client.workspaces``: create, find and list upload workspaces."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self, *, organisation_id: str | None = None, archive: str | None = None
    ) -> Workspace:
        """An empty workspace (``upload`` creates one with content in one step)."""
        body = {"organisation_id": organisation_id, "archive": archive}
        return Workspace.bind(self._client, self._client.send_json("POST", API, body))

    def upload(
        self,
        path: str | Path,
        *,
        workspace_id: int | None = None,
        archive: str | None = None,
        ancillary: bool = False,
        organisation_id: str | None = None,
        progress: Progress | None = None,
        resumable: bool | None = None,
        resumable_threshold: int = DEFAULT_RESUMABLE_THRESHOLD,
    ) -> Workspace:
        """Upload into a new workspace, or into ``workspace_id``.

        Files of ``resumable_threshold`` bytes or more (or any, with ``resumable=True``) go by
        the resumable protocol, into a workspace created first when none is given; if the
        upload then fails for good, that workspace is deleted again, as a refused plain upload
        leaves no workspace.
        """
        source = Path(path)
        if _is_resumable(source, resumable, resumable_threshold):
            metadata = {"archive": archive, "ancillary": "true" if ancillary else None}
            if workspace_id is not None:
                send_resumable(self._client, workspace_id, source, metadata, progress=progress)
                return self.get(workspace_id)
            created = self.create(organisation_id=organisation_id, archive=archive)
            metadata["archive"] = None  # the new workspace has its target already
            try:
                send_resumable(self._client, created.id, source, metadata, progress=progress)
            except BaseException:
                with contextlib.suppress(errors.CairnError):
                    created.delete()  # empty: made for this upload only
                raise
            return self.get(created.id)
        url = f"{API}/upload" if workspace_id is None else f"{API}/{workspace_id}/files"
        form = {
            "archive": archive,
            "ancillary": "true" if ancillary else None,
            "organisation_id": organisation_id if workspace_id is None else None,
        }
        body = _send_upload(self._client, url, source, form, progress)
        return Workspace.bind(self._client, body)

    def get(self, workspace_id: int) -> Workspace:
        return Workspace.bind(self._client, self._client.get_json(f"{API}/{workspace_id}"))

    def list(
        self, *, organisation_id: str | None = None, mine: bool = False
    ) -> Iterator[Workspace]:
        """Your organisations' workspaces, newest first, fetched page by page."""
        params: dict[str, Any] = {"mine": mine}
        if organisation_id:
            params["organisation_id"] = organisation_id
        for item in self._client.paginate(API, params):
            yield Workspace.bind(self._client, item)
