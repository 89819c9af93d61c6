"""Sealing a workspace's content package, or a published run's package, as a container signed
by cairn's seal key: one function seals a blob, and each caller says which blob.

The seal key is cairn's own, kept beside the TSA's in the data folder
(``<data>/archive-seal/``: ``seal.key``, ``seal.pem`` and the ``root.pem`` that issued it,
whose key is thrown away, so nothing else can chain to it). It is a dedicated key, not the
TSA's: the TSA certificate's critical extended key usage is time stamping only. The server
trusts the seal root like a configured trust root, so a seal verifies, is enhanced to CAdES-A
and keeps its proofs like any other container; offline checks of an export need
``root.pem`` among the trust roots.

Each seal is a new container, also of unchanged content: a seal says "this content existed
then", and a second one says so again later. The seal is recorded in the provenance store in
the container's own transaction (the package used, the signature generated).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor
from cairn.archive._callers import caller_for_actor
from cairn.archive.errors import StorageNotFound, UnusableInput
from cairn.archive.models import ArchiveContainer, ArchiveStorage
from cairn.archive.settings import ArchiveSettings
from cairn.archive.statuses import SaveType
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork
from cairn.errors import Conflict
from cairn.provenance import service as provenance
from cairn.workspaces import service as workspaces

if TYPE_CHECKING:
    from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]
    from cryptography.hazmat.primitives.asymmetric import ec

# The key and signing code import cryptography, asn1crypto and pyHanko when first used, not
# when the server starts: uploads reach ``archive_trust_roots`` through this module, and an
# idle server should not carry ~50 MiB of signing libraries (issue #13, RSS goal).

__all__ = ["SealKey", "archive_trust_roots", "open_seal_key", "seal_run", "seal_workspace"]


@dataclass(frozen=True)
class SealKey:
    key: ec.EllipticCurvePrivateKey
    cert: asn1_x509.Certificate
    root: asn1_x509.Certificate

    def sign(self, document: Path) -> bytes:
        """A detached CAdES-BES signature (DER) over the file."""
        from asn1crypto import keys
        from cryptography.hazmat.primitives import serialization
        from pyhanko.sign import signers
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        der = self.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        signer = signers.SimpleSigner(
            signing_cert=self.cert,
            signing_key=keys.PrivateKeyInfo.load(der),
            cert_registry=SimpleCertificateStore.from_certs([self.root]),  # type: ignore[no-untyped-call]
        )
        with document.open("rb") as handle:
            signed = asyncio.run(
                signer.async_sign_general_data(handle, "sha256", detached=True, use_cades=True)
            )
        raw: bytes = signed.dump()
        return raw


def _generate(folder: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from cairn.archive._certs import issue_pair, write_private_key

    root, cert = issue_pair(
        "cairn",
        "cairn archive seal root",
        "cairn archive seal",
        ec.generate_private_key(ec.SECP256R1()),
        key := ec.generate_private_key(ec.SECP256R1()),
        root_days=365 * 20,
        days=365 * 10,
    )
    pem = serialization.Encoding.PEM
    (folder / "root.pem").write_bytes(root.public_bytes(pem))
    (folder / "seal.pem").write_bytes(cert.public_bytes(pem))
    write_private_key(folder / "seal.key", key)


def _asn1(path: Path) -> asn1_x509.Certificate:
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    loaded = x509.load_pem_x509_certificate(path.read_bytes())
    return asn1_x509.Certificate.load(loaded.public_bytes(serialization.Encoding.DER))


@cache
def open_seal_key(data_dir: Path) -> SealKey:
    """cairn's seal key for this data folder, generated on first use."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from cairn.archive._certs import generate_once

    folder = data_dir / "archive-seal"
    generate_once(folder, "seal.key", _generate)
    key = serialization.load_pem_private_key((folder / "seal.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return SealKey(key, _asn1(folder / "seal.pem"), _asn1(folder / "root.pem"))


def archive_trust_roots(
    settings: ArchiveSettings, data_dir: Path | None
) -> list[asn1_x509.Certificate]:
    """The configured trust roots, and the seal root once this data folder has one."""
    from cairn.archive._roots import load_trust_roots

    roots = load_trust_roots(settings.archive_trust_roots)
    if data_dir is not None and (data_dir / "archive-seal" / "root.pem").is_file():
        roots.append(_asn1(data_dir / "archive-seal" / "root.pem"))
    return roots


def _storage_id(session: Session, organisation_id: str, storage_id: int | None) -> int:
    query = select(ArchiveStorage.id).where(ArchiveStorage.organisation_id == organisation_id)
    if storage_id is not None:
        query = query.where(ArchiveStorage.id == storage_id)
    found = session.scalar(query.order_by(ArchiveStorage.id).limit(1))
    if found is None:
        raise StorageNotFound(
            f"Storage {storage_id} not found in the workspace's organisation."
            if storage_id is not None
            else "The workspace's organisation has no storage: create one first "
            "(cairn admin create-storage)."
        )
    return int(found)


def seal_workspace(
    uow: UnitOfWork,
    blobs: BlobStore,
    actor: Actor,
    workspace_id: int,
    *,
    storage_id: int | None,
    settings: ArchiveSettings,
    data_dir: Path,
    work_dir: Path,
) -> str:
    """Archive the workspace's content package as a new Permanent container signed by the
    seal key (in ``storage_id``, default the organisation's first storage); its id.

    404 for a workspace the actor cannot see (another organisation's), 422 when it is empty
    or has no storage, 409 when its content changed while the package was being built.
    """
    with uow.read() as session:
        workspace = workspaces.get_workspace(session, actor, workspace_id)
        organisation_id, checksum = workspace.organisation_id, workspace.checksum
        if not workspace.file_count:
            raise UnusableInput(f"Workspace {workspace_id} is empty: there is nothing to seal.")
        storage = _storage_id(session, organisation_id, storage_id)
    workspaces.refresh_package(uow, blobs, workspace_id, work_dir=work_dir / "packages")
    with uow.read() as session:
        workspace = workspaces.get_workspace(session, actor, workspace_id)
        package, size = workspace.package_sha256, workspace.package_size
        if package is None or workspace.package_checksum != checksum:
            raise Conflict(f"Workspace {workspace_id} changed while it was sealed: try again.")
    sealed = _Sealed(
        organisation_id=organisation_id,
        storage_id=storage,
        sha256=package,
        size=size,
        document_name=f"workspace-{workspace_id}.tar.gz",
        declared_type="application/gzip",
        name=f"Seal of workspace {workspace_id}",
        structure_name=f"workspace:{workspace_id}",
        what=f"workspace {workspace_id}",
    )
    return _seal_blob(
        uow, blobs, actor, sealed, settings=settings, data_dir=data_dir, work_dir=work_dir
    )


def seal_run(
    uow: UnitOfWork,
    blobs: BlobStore,
    actor: Actor,
    run_ref: str,
    *,
    storage_id: int | None,
    settings: ArchiveSettings,
    data_dir: Path,
    work_dir: Path,
) -> str:
    """Archive a published run's package (the zip the server received for its latest
    publication, or for the publication ``run_ref`` names) as a new Permanent container
    signed by the seal key; its id.

    404 for a run the actor cannot see (another organisation's) or a storage outside the
    run's organisation, 422 for a run that was never published here.
    """
    with uow.read() as session:
        scope = provenance.scope_for(actor)
        published = provenance.published_package(session, run_ref, scope=scope)
        if published.organisation_id is None:  # a local store's run: not the server's
            raise provenance.RunNotFound(f"No run {run_ref!r}.")
        storage = _storage_id(session, published.organisation_id, storage_id)
    if not blobs.exists(published.sha256):
        raise UnusableInput(
            f"The server does not hold the package of run {published.run_seq}: upload it "
            "(cairn runs publish --to URL) before sealing it."
        )
    sealed = _Sealed(
        organisation_id=published.organisation_id,
        storage_id=storage,
        sha256=published.sha256,
        size=blobs.size(published.sha256),
        document_name=f"run-{published.run_seq}-v{published.version}.zip",
        declared_type="application/zip",
        name=f"Seal of published run {published.run_seq} (version {published.version})",
        structure_name=f"run:{published.run_id}",
        what=f"published run {published.run_seq} (publication {published.publication_id})",
    )
    return _seal_blob(
        uow, blobs, actor, sealed, settings=settings, data_dir=data_dir, work_dir=work_dir
    )


@dataclass(frozen=True)
class _Sealed:
    """What one seal archives: a blob of the organisation, and how the container names it."""

    organisation_id: str
    storage_id: int
    sha256: str
    size: int | None
    document_name: str
    declared_type: str
    name: str
    structure_name: str
    what: str  # for the provenance record: "workspace 3", "published run 7 (...)"


def _seal_blob(
    uow: UnitOfWork,
    blobs: BlobStore,
    actor: Actor,
    sealed: _Sealed,
    *,
    settings: ArchiveSettings,
    data_dir: Path,
    work_dir: Path,
) -> str:
    """Sign the blob with the seal key and archive it as a new Permanent container, recorded
    as an ``archive.seal`` activity (the blob used, the signature generated) in the
    container's own transaction; the container's id."""
    from cairn.archive.service import PutRequest, put_container

    key = open_seal_key(data_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="seal-") as scratch:
        document = Path(scratch) / sealed.document_name
        with blobs.open(sealed.sha256) as source, document.open("wb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
        signature = key.sign(document)
        request = PutRequest(
            name=sealed.name,
            storage_id=sealed.storage_id,
            save_type=SaveType.PERMANENT,
            document=document,
            signatures=[signature],
            structure_name=sealed.structure_name,
            use_archive_ca=True,
            declared_type=sealed.declared_type,
        )

        def record(session: Session, container: ArchiveContainer) -> None:
            provenance.record_activity(
                session,
                organisation_id=sealed.organisation_id,
                kind="archive.seal",
                used=[provenance.ActivityFile(sealed.sha256, document.name, sealed.size)],
                generated=[provenance.ActivityFile(blobs.put(signature).sha256, "seal.sig")],
                user=actor.id,
                description=f"sealed {sealed.what} as container {container.id}",
            )

        return put_container(
            uow,
            blobs,
            caller_for_actor(actor),
            request,
            settings=settings,
            data_dir=data_dir,
            on_created=record,
        )
