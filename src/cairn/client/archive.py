"""SDK for the signed archive: put documents with signatures, find and read containers.

>>> container = client.archive.put("contract.pdf", ["contract.pdf.sig"], storage_id=1,
...                                name="Contract 7", save_type="Permanent")
>>> container.status, container.status_name
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from cairn.client._model import Resource

if TYPE_CHECKING:
    from cairn.client._client import Client

__all__ = ["Archive", "Container", "Signature", "Storage"]

API = "/api/v1/archive"


class Signature(BaseModel):
    position: int
    level: str
    verdict: str | None = None
    expires_at: datetime | None = None


class Storage(BaseModel):
    id: int
    name: str


class Container(Resource):
    """An archived container; ``status`` 4 means every signature is CAdES-A."""

    id: str
    name: str
    status: int
    status_name: str
    status_reason: str | None = None
    organisation_id: str
    storage_id: int
    source_system_id: int
    save_type: int
    archive_until: datetime | None = None
    use_archive_ca: bool
    document_type: str
    document_sha256: str
    document_size: int
    created_at: datetime
    modified_at: datetime
    signature_update_at: datetime | None = None
    storage_plugin: str | None = None
    storage_pending: bool = False
    signatures: list[Signature] = []

    @property
    def path(self) -> str:
        return f"{API}/containers/{self.id}"

    def refresh(self) -> Container:
        self._update(self._client.get_json(self.path))
        return self

    def download_signatures(self, target: Path) -> Path:
        """Save ``signatures.zip`` (CAdES-A once archived) to ``target``."""
        self._client.download(f"{self.path}/signatures", target)
        return target

    def export(self, target: Path) -> Path:
        """Save the container as a BagIt bag (zip) to ``target``; check it offline with
        ``cairn.archive.export.verify_export`` or ``cairn archive verify``."""
        self._client.download(f"{self.path}/export", target)
        return target

    def delete(self) -> None:
        """Delete the container (status 8: the document removed, a tombstone kept)."""
        self._client.request("DELETE", self.path)
        self.refresh()

    def reports(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._client.get_json(f"{self.path}/reports")
        return found

    def events(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._client.get_json(f"{self.path}/events")
        return found


class Archive:
    """``client.archive``: put, get and search containers; storages and statuses."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def put(
        self,
        document: str | Path,
        signatures: Sequence[str | Path] = (),
        *,
        storage_id: int,
        name: str,
        save_type: str = "Permanent",
        archive_date: str | None = None,
        use_archive_ca: bool = False,
        structure_name: str | None = None,
    ) -> Container:
        """Archive ``document`` with its detached ``signatures`` (none: the document is an
        attached signature)."""
        fields = {
            "ContainerName": name,
            "StorageId": str(storage_id),
            "SaveType": save_type,
            "UseArchiveCa": "true" if use_archive_ca else "false",
        }
        if archive_date:
            fields["ArchiveDate"] = archive_date
        if structure_name:
            fields["StructureName"] = structure_name
        doc = Path(document)
        with doc.open("rb") as handle:
            files: list[tuple[str, Any]] = [("Content", (doc.name, handle))]
            for sig in signatures:
                files.append(("Signs", (Path(sig).name, Path(sig).read_bytes())))
            answer = self._client.request(
                "POST", f"{API}/containers", data=fields, files=files
            ).json()
        return Container.bind(self._client, answer)

    def seal(
        self,
        workspace_id: int | None = None,
        *,
        published_run_id: str | None = None,
        storage_id: int | None = None,
    ) -> Container:
        """Seal a workspace's content package, or a published run's package (``published_run_id``:
        the run's UUID or number, or a publication id), as a new container signed by cairn's seal
        key (default storage: the organisation's first)."""
        body = {
            "workspace_id": workspace_id,
            "published_run_id": published_run_id,
            "storage_id": storage_id,
        }
        answer = self._client.request("POST", f"{API}/seals", json=body).json()
        return Container.bind(self._client, answer)

    def get(self, container_id: str) -> Container:
        return Container.bind(
            self._client, self._client.get_json(f"{API}/containers/{container_id}")
        )

    def search(
        self, *, name: str | None = None, status: int | None = None, storage_id: int | None = None
    ) -> Iterator[Container]:
        """Your organisations' containers, newest first."""
        params = {
            k: v
            for k, v in {"name": name, "status": status, "storage_id": storage_id}.items()
            if v is not None
        }
        for item in self._client.paginate(f"{API}/containers", params):
            yield Container.bind(self._client, item)

    def storages(self) -> list[Storage]:
        return [Storage.model_validate(s) for s in self._client.get_json(f"{API}/storages")]

    def statuses(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._client.get_json(f"{API}/statuses")
        return found

    # The transparency log (docs/archive.md): every container event is a leaf.

    def tree_head(self, organisation_id: str) -> dict[str, Any]:
        """The organisation's log now: size, root hash, signature, timestamp, certificates."""
        found: dict[str, Any] = self._client.get_json(f"{API}/log/{organisation_id}/tree-head")
        return found

    def inclusion_proof(
        self, organisation_id: str, leaf_index: int, tree_size: int | None = None
    ) -> dict[str, Any]:
        """The audit path of event ``leaf_index`` (its ``log_index``) to the root of
        ``tree_size`` (default: the log's size now)."""
        return self._proof(organisation_id, "inclusion", leaf_index=leaf_index, size=tree_size)

    def consistency_proof(
        self, organisation_id: str, first_size: int, tree_size: int | None = None
    ) -> dict[str, Any]:
        """The proof that the log of ``tree_size`` only appended to the log of ``first_size``."""
        return self._proof(organisation_id, "consistency", first_size=first_size, size=tree_size)

    def _proof(
        self, organisation_id: str, kind: str, *, size: int | None, **at: int
    ) -> dict[str, Any]:
        params: dict[str, int] = {**at, **({"tree_size": size} if size is not None else {})}
        found: dict[str, Any] = self._client.get_json(
            f"{API}/log/{organisation_id}/{kind}", params=params
        )
        return found
