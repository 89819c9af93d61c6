"""SDK for upload workspaces: upload files or archives, inspect, download, lock, release."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cairn.client._client import Client
from cairn.client._model import Model

__all__ = ["Progress", "Workspace", "Workspaces"]

API = "/filemanager/api"

Progress = Callable[[int], None]
"""Called with the number of bytes just sent or received."""


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


class Workspace(Model):
    """One upload workspace; attributes are the fields of the file manager summary."""

    @property
    def id(self) -> int:
        upload_id: int = self._data["upload_id"]
        return upload_id

    @property
    def path(self) -> str:
        return f"{API}/{self.id}"

    def refresh(self) -> Workspace:
        self._refresh(self._client.get_json(self.path))
        return self

    def upload(
        self,
        path: str | Path,
        *,
        archive: str | None = None,
        ancillary: bool = False,
        progress: Progress | None = None,
    ) -> Workspace:
        """Add a file or archive; files with the same path are replaced."""
        self._refresh(
            _send_upload(
                self._client,
                self.path,
                Path(path),
                archive=archive,
                ancillary=ancillary,
                progress=progress,
            )
        )
        return self

    def download(
        self, dest: str | Path, *, file: str | None = None, progress: Progress | None = None
    ) -> Path:
        """Save the whole workspace as .tar.gz (or one ``file``) to ``dest`` (a file or folder)."""
        url = f"{self.path}/{file}/content" if file else f"{self.path}/content"
        default_name = Path(file).name if file else f"{self.id}.tar.gz"
        target = Path(dest)
        if target.is_dir():
            target = target / default_name
        self._client.download(url, target, progress=progress)
        return target

    def log(self) -> str:
        return self._client.request("GET", f"{self.path}/log").text

    def _act(self, method: str, suffix: str) -> Workspace:
        self._refresh(self._client.send_json(method, f"{self.path}{suffix}"))
        return self

    def delete_file(self, public_path: str) -> Workspace:
        return self._act("DELETE", f"/{public_path}")

    def delete_all(self) -> Workspace:
        return self._act("POST", "/delete_all")

    def lock(self) -> Workspace:
        return self._act("POST", "/lock")

    def unlock(self) -> Workspace:
        return self._act("POST", "/unlock")

    def release(self) -> Workspace:
        return self._act("POST", "/release")

    def unrelease(self) -> Workspace:
        return self._act("POST", "/unrelease")

    def delete(self) -> Workspace:
        """Delete every file; the record stays with state DELETED."""
        return self._act("DELETE", "")


def _send_upload(
    client: Client,
    url: str,
    path: Path,
    *,
    archive: str | None,
    ancillary: bool,
    progress: Progress | None,
    organisation_id: str | None = None,
) -> dict[str, Any]:
    form = {"ancillary": "true" if ancillary else "false"}
    if archive:
        form["archive"] = archive
    if organisation_id:
        form["organisation_id"] = organisation_id
    with path.open("rb") as handle:
        reader = _ProgressReader(handle, progress)
        body: dict[str, Any] = client.request(
            "POST", url, files={"file": (path.name, reader)}, data=form
        ).json()
    return body


class Workspaces:
    """``user.workspaces``: find, create and list upload workspaces."""

    def __init__(self, client: Client) -> None:
        self._client = client

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
        url = API if workspace_id is None else f"{API}/{workspace_id}"
        body = _send_upload(
            self._client,
            url,
            Path(path),
            archive=archive,
            ancillary=ancillary,
            progress=progress,
            organisation_id=organisation_id,
        )
        return Workspace(self._client, body)

    def get(self, workspace_id: int) -> Workspace:
        return Workspace(self._client, self._client.get_json(f"{API}/{workspace_id}"))

    def list(
        self, *, organisation_id: str | None = None, mine: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Brief records of your organisations' workspaces, newest first."""
        params: dict[str, Any] = {"mine": mine}
        if organisation_id:
            params["organisation_id"] = organisation_id
        return self._client.paginate("/api/v1/workspaces", params)
