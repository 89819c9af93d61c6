"""The demo ``make run`` seeds: an organisation with credits, a user, a workspace holding a
small paper with findings, XML metadata of that paper to query, and for the signed archive a
storage, a source system with its API key and a demo CA with a signer, so a newcomer has
something to click through and can try the archive's curl."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from cairn.accounts import service as accounts
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork
from cairn.errors import NotFound
from cairn.workspaces import service as workspaces

__all__ = ["DEMO_EMAIL", "DEMO_ORG", "DEMO_PASSWORD", "seed_demo"]

DEMO_EMAIL = "demo@cairn.example"
DEMO_PASSWORD = "Cairn-demo-2026!"
DEMO_ORG = "Demo Lab"

DEMO_PAPER = {
    "paper/main.tex": b"\\documentclass{article}\n\\begin{document}\n"
    b"\\title{A demo paper}\\maketitle\nSee \\cite{knuth84}.\n"
    b"\\bibliographystyle{plain}\\bibliography{refs}\n\\end{document}\n",
    "paper/refs.bib": b"@book{knuth84, author={Donald E. Knuth}, title={The TeXbook},"
    b" year={1984}}\n",
    "paper/.DS_Store": b"junk a sanitizer removes",
    "paper/notes (draft).txt": b"A file whose name gets cleaned.\n",
}

# The XML database's demo: the paper's DataCite record and an EML dataset description, in
# the collection "metadata" (try: collection("metadata")//*:title/string()).
DEMO_XML = {
    "paper-datacite": """<resource xmlns="http://datacite.org/schema/kernel-4">
  <identifier identifierType="DOI">10.5072/demo.1</identifier>
  <creators><creator><creatorName>Researcher, Demo</creatorName></creator></creators>
  <titles><title>A demo paper</title></titles>
  <publisher>Demo Lab</publisher>
  <publicationYear>2026</publicationYear>
  <resourceType resourceTypeGeneral="Text">Preprint</resourceType>
</resource>""",
    "survey-eml": """<eml:eml xmlns:eml="https://eml.ecoinformatics.org/eml-2.2.0"
    packageId="demo.survey.1" system="cairn">
  <dataset>
    <title>Synthetic bird survey, demo data</title>
    <creator><individualName><surName>Researcher</surName></individualName></creator>
    <keywordSet><keyword>birds</keyword><keyword>synthetic</keyword></keywordSet>
    <dataTable><entityName>counts.csv</entityName>
      <attributeList>
        <attribute><attributeName>site</attributeName></attribute>
        <attribute><attributeName>count</attributeName></attribute>
      </attributeList>
    </dataTable>
  </dataset>
</eml:eml>""",
}


def seed_demo(
    uow: UnitOfWork,
    blobs: BlobStore,
    *,
    work_dir: Path,
    demo_dir: Path | None = None,
    base_url: str = "http://127.0.0.1:8000",
) -> bool:
    """Create the demo organisation, user and workspace unless the user exists (idempotent).
    With ``demo_dir``, also the archive's demo (see ``_seed_archive``) in that folder.

    Returns whether anything was created.
    """
    with uow.transaction() as session:
        try:
            accounts.find_user(session, email=DEMO_EMAIL)
            return False
        except NotFound:
            pass
        organisation = accounts.create_organisation(
            session, name=DEMO_ORG, description="Demo organisation created by make run."
        )
        user = accounts.create_user(
            session,
            email=DEMO_EMAIL,
            password=DEMO_PASSWORD,
            given_name="Demo",
            family_name="Researcher",
        )
        accounts.add_member(session, user=user, organisation=organisation, privilege="manage")
        accounts.grant_credits(
            session, organisation=organisation, amount=1000, reason="demo credits"
        )
        actor = accounts.authenticate_user(session, user)
        organisation_id = organisation.id
    work_dir.mkdir(parents=True, exist_ok=True)
    archive = work_dir / "demo-paper.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in DEMO_PAPER.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    try:
        workspaces.upload(uow, blobs, actor, workspaces.uploaded_file(archive), work_dir=work_dir)
    finally:
        archive.unlink(missing_ok=True)
    _seed_xml(uow, blobs, actor, organisation_id)
    if demo_dir is not None:
        _seed_archive(uow, organisation_id, demo_dir, base_url)
    return True


def _seed_xml(uow: UnitOfWork, blobs: BlobStore, actor: accounts.Actor, org_id: str) -> None:
    from cairn.xmldb import XmlServer  # Saxon starts only when seeding
    from cairn.xmldb._session import wait_for_node_tables

    server = XmlServer(uow, blobs)
    xs = server.open_session(actor, org_id)
    xs.begin()
    for name, text in DEMO_XML.items():
        xs.load_document(name, text, "metadata", replace=False)
    xs.commit()
    server.close_session(actor, xs.id)
    # Their node tables are built in the background: record them on the documents' rows
    # before the command ends, so they are the documents' blobs, not orphans for gc.
    wait_for_node_tables()
    server.tables.note()


ARCHIVE_GUIDE = """cairn demo: try the signed archive (see docs/archive.md)

The server trusts the demo CA when started with
  CAIRN_ARCHIVE_TRUST_ROOTS={trust_roots}
(make run does this). Sign a file as the demo signer and archive it:

  echo 'A document to keep.' > document.txt
  openssl cms -sign -binary -in document.txt -signer {signer_cert} -inkey {signer_key} \\
    -outform DER -md sha256 -out a-detached.sig
  curl -X POST {base_url}/api/document/content -H "X-Api-Key: {api_key}" \\
    -F ContainerName=MyContainer -F ArchiveDate=21.07.2030 -F StorageId={storage_id} \\
    -F Signs=@a-detached.sig -F SaveType=Temporary -F Content=@document.txt -F UseArchiveCa=false
  curl -H "X-Api-Key: {api_key}" {base_url}/api/document/CONTAINER-ID/status

The API key belongs to the source system "{source_system}" of "{org}"; this file is the only
place it is written (only its hash is stored). The demo CA and signer are for trying cairn
only.
"""


def _seed_archive(uow: UnitOfWork, org_id: str, demo_dir: Path, base_url: str) -> None:
    """A storage, a source system (its API key written to ``demo_dir/archive.txt`` with the
    commands to try) and the demo PKI under ``demo_dir``."""
    from cairn.accounts.models import Organisation
    from cairn.archive import service as archive
    from cairn.archive.demo import write_demo_pki

    pki = write_demo_pki(demo_dir)
    with uow.transaction() as session:
        organisation = session.get(Organisation, org_id)
        assert organisation is not None
        storage = archive.create_storage(session, organisation=organisation, name="Demo storage")
        system, key = archive.create_source_system(
            session, organisation=organisation, name="Demo source system"
        )
        storage_id, system_name = storage.id, system.name
    guide = ARCHIVE_GUIDE.format(
        trust_roots=pki.trust_roots,
        signer_cert=pki.signer_cert,
        signer_key=pki.signer_key,
        base_url=base_url.rstrip("/"),
        api_key=key,
        storage_id=storage_id,
        source_system=system_name,
        org=DEMO_ORG,
    )
    path = demo_dir / "archive.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(guide)
