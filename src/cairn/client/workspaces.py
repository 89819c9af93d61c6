"""SDK for upload workspaces: upload files or archives, inspect, download, lock, release.

>>> workspace = client.workspaces.upload("paper.tar.gz", archive="math")
>>> workspace.status, [f.message for f in workspace.findings]
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from pydantic import BaseModel

from cairn.client._model import Resource

if TYPE_CHECKING:
    from cairn.client._client import Client

__all__ = [
    "Checkpoint",
    "Finding",
    "Progress",
    "RemovedFile",
    "Workspace",
    "WorkspaceFile",
    "Workspaces",
]

API = "/api/v1/workspaces"

Progress = Callable[[int], None]
"""Called with the number of bytes just sent or received."""


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
    ) -> Workspace:
        """Add a file or archive; files with the same path are replaced."""
        self._update(
            _send_upload(
                self._client,
                f"{self.path}/files",
                Path(path),
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
    ) -> Workspace:
        """Upload into a new workspace, or into ``workspace_id``."""
        url = f"{API}/upload" if workspace_id is None else f"{API}/{workspace_id}/files"
        form = {
            "archive": archive,
            "ancillary": "true" if ancillary else None,
            "organisation_id": organisation_id if workspace_id is None else None,
        }
        body = _send_upload(self._client, url, Path(path), form, progress)
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
