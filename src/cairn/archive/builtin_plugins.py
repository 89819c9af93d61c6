"""cairn's own archive plugins, registered on the same hooks as anyone's: the ``filesystem``
and ``fsspec`` document storages and the ``filesystem`` post-processor (the reference's
FilesystemSanConnectorPlugin: each signature and a short report per container)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn import hookimpl
from cairn.archive.plugins import Container, ContainerStatus, Document, Parameters, Result

__all__ = ["FilesystemPostProcessor", "FilesystemStorage", "FsspecStorage"]


def _container_name(container_id: str) -> str:
    return str(uuid.UUID(container_id))  # a uuid only: never a path outside the folder


class FilesystemStorage:
    """Documents as files named by container id in ``DocumentsFolderPath``."""

    folder: Path

    def initialize(self, parameters: Mapping[str, str]) -> None:
        if "DocumentsFolderPath" not in parameters:
            raise ValueError("Parameters.DocumentsFolderPath is required.")
        folder = parameters["DocumentsFolderPath"]
        base = parameters.base if isinstance(parameters, Parameters) else Path.cwd()
        self.folder = base / folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def save(self, container: Container) -> Result[str]:
        if container.document is None:
            return Result.failure("The container holds no document (UseArchiveCa false).")
        path = self.folder / _container_name(container.id)
        partial = path.with_name(path.name + ".partial")
        try:
            partial.write_bytes(container.document.raw)
            partial.replace(path)  # never a half-written document under the final name
        except OSError as exc:
            return Result.failure(f'Unable to save document. Error message: "{exc}".')
        return Result.success(str(path))

    def get(self, path: str) -> Result[Document]:
        try:
            return Result.success(Document(Path(path).read_bytes()))
        except FileNotFoundError:
            return Result.failure(f'File not found. Path: "{path}".')
        except OSError as exc:
            return Result.failure(f'Unable to get document. Error message: "{exc}".')

    def delete(self, path: str) -> Result[None]:
        try:
            Path(path).unlink()
        except FileNotFoundError:
            return Result.failure(f'Unable to delete file "{path}". File not found.')
        except OSError as exc:
            return Result.failure(f'Unable to delete file "{path}". Error: "{exc}".')
        return Result.success()


class FsspecStorage:
    """Documents under an fsspec ``Url`` (``s3://bucket/prefix`` with s3fs, ``memory://x``,
    ``file:///srv/docs``); further parameters go to fsspec as storage options."""

    url: str
    options: dict[str, Any]

    @staticmethod
    def _fsspec() -> Any:
        # Imported on use: registering this plugin is on every command's path, `cairn record`
        # included, and fsspec costs ~60 ms there (#14).
        import fsspec
        import fsspec.core

        return fsspec

    def initialize(self, parameters: Mapping[str, str]) -> None:
        if "Url" not in parameters:
            raise ValueError("Parameters.Url is required.")
        self.url = parameters["Url"].rstrip("/")
        self.options = {k: v for k, v in parameters.items() if k.casefold() != "url"}
        self._fsspec().core.url_to_fs(self.url, **self.options)  # an unknown protocol fails here

    def save(self, container: Container) -> Result[str]:
        if container.document is None:
            return Result.failure("The container holds no document (UseArchiveCa false).")
        url = f"{self.url}/{_container_name(container.id)}"
        try:
            with self._fsspec().open(url, "wb", **self.options) as handle:
                handle.write(container.document.raw)
        except Exception as exc:  # any backend's error is a failure, not a crash
            return Result.failure(f"Unable to save document to {url}: {exc}")
        return Result.success(url)

    def get(self, path: str) -> Result[Document]:
        try:
            with self._fsspec().open(path, "rb", **self.options) as handle:
                return Result.success(Document(handle.read()))
        except FileNotFoundError:
            return Result.failure(f'File not found. Path: "{path}".')
        except Exception as exc:
            return Result.failure(f"Unable to get document {path}: {exc}")

    def delete(self, path: str) -> Result[None]:
        try:
            fs, root = self._fsspec().core.url_to_fs(path, **self.options)
            fs.rm(root)
        except FileNotFoundError:
            return Result.failure(f'Unable to delete file "{path}". File not found.')
        except Exception as exc:
            return Result.failure(f'Unable to delete file "{path}". Error: "{exc}".')
        return Result.success()


class FilesystemPostProcessor:
    """Writes ``signature-{i}.sig`` and ``report.txt`` under ``<Folder>/<container id>/``:
    ``Signature {i} expiration date: {expires}.`` per signature once archived, else
    ``Error. Container status: {status}.``. ``Folder`` is optional (the plugins folder)."""

    folder: Path

    def initialize(self, parameters: Mapping[str, str]) -> None:
        base = parameters.base if isinstance(parameters, Parameters) else Path.cwd()
        self.folder = base / parameters.get("Folder", "")

    def process(self, container: Container) -> Result[None]:
        target = self.folder / _container_name(container.id)
        try:
            target.mkdir(parents=True, exist_ok=True)
            for index, signature in enumerate(container.signatures):
                (target / f"signature-{index}.sig").write_bytes(signature.raw)
            if container.status is ContainerStatus.ARCHIVED:
                lines = [
                    f"Signature {index} expiration date: {signature.expires}.\n"
                    for index, signature in enumerate(container.signatures)
                ]
            else:
                status = "".join(part.title() for part in container.status.name.split("_"))
                lines = [f"Error. Container status: {status}."]
            (target / "report.txt").write_text("".join(lines), encoding="utf-8")
        except OSError as exc:
            return Result.failure(f"Unable to write to {target}. Error: {exc}.")
        return Result.success()


@hookimpl
def register_archive_storages() -> dict[str, type]:
    return {"filesystem": FilesystemStorage, "fsspec": FsspecStorage}


@hookimpl
def register_archive_post_processors() -> dict[str, type]:
    return {"filesystem": FilesystemPostProcessor}
