"""Publishing a run: an RO-Crate inside a BagIt bag, written as one zip (RunManager's
``publishRun``, with the packaging research data repositories take today).

The package holds the run's scripts and the exact versions of the files it used and generated
(from the blob store), its environment, science metadata (the run's template, RunManager's
``putMetadata``: title, creators, description, keywords, licence), the PROV document, and the
YesWorkflow model when the script is annotated::

    <name>/bagit.txt, bag-info.txt, manifest-sha256.txt, tagmanifest-sha256.txt
    <name>/data/ro-crate-metadata.json
    <name>/data/scripts/…  inputs/…  outputs/…       (paths relative to the run's folder)
    <name>/data/provenance/prov.json, prov.provn, environment.json[, yw-model.json]

``ro-crate-metadata.json`` describes the run as a ``CreateAction`` (``instrument`` the script,
``object`` the inputs, ``result`` the outputs, ``agent`` the creators), as the Process Run Crate
profile does. The crate is read back with the ``rocrate`` library and the bag validated with
``bagit`` before the zip is kept, so a package that is written is a valid one.

Each publication is a row with a stable identifier (a UUID; a DOI only through a minting plugin,
not built yet). Publishing a run again refuses unless ``update=True``, which makes a new version
linked to the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.blobs import BlobStore
from cairn.errors import Conflict, Invalid
from cairn.provenance._select import LOCAL, RunSelector, Scope
from cairn.provenance.models import FileVersion, Publication, Run, RunEdge
from cairn.provenance.service import copy_blob, get_run, tags_of
from cairn.provenance.w3c import read_graph, to_prov

__all__ = [
    "METADATA_FIELDS",
    "PublishedRun",
    "get_metadata",
    "publish_run",
    "put_metadata",
]

METADATA_FIELDS = {
    "title": str,
    "creators": list,
    "description": str,
    "keywords": list,
    "license": str,
}
"""The science metadata a run is published with; ``title``, ``creators`` and ``license`` are
required (a licence is the owner's choice, so cairn never fills one in)."""
_REQUIRED = ("title", "creators", "license")


@dataclass(frozen=True)
class PublishedRun:
    """What ``publish_run`` made: the publication's identifier and version, and the zip."""

    id: str
    version: int
    previous_id: str | None
    path: Path
    sha256: str
    files: int
    uploaded: Any = None
    """What ``upload`` answered (the server's description of the received run), if given."""

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "identifier": f"urn:uuid:{self.id}",
            "version": self.version,
            "previous_id": self.previous_id,
            "path": str(self.path),
            "sha256": self.sha256,
            "files": self.files,
        }


# --- the metadata template ----------------------------------------------------------------------


def get_metadata(session: Session, run_ref: str | int, *, scope: Scope = LOCAL) -> dict[str, Any]:
    """The run's metadata: what was put, or a template filled from the run."""
    run = get_run(session, run_ref, scope=scope)
    if run.science_metadata:
        return dict(json.loads(run.science_metadata))
    script = PurePosixPath(run.script).name if run.script else run.kind
    return {
        "title": f"Run {run.seq} of {script}",
        "creators": [run.username] if run.username else [],
        "description": f"{script} run on {run.started_at:%Y-%m-%d %H:%M} UTC, recorded by cairn.",
        "keywords": tags_of(session, [run.seq]).get(run.seq, []),
        "license": "",
    }


def _checked(document: object) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise Invalid("the metadata must be a mapping of title, creators, description, ...")
    unknown = sorted(set(document) - set(METADATA_FIELDS))
    if unknown:
        raise Invalid(f"unknown metadata field {unknown[0]!r}: use {', '.join(METADATA_FIELDS)}")
    for name, kind in METADATA_FIELDS.items():
        value = document.get(name)
        if value is None:
            continue
        if not isinstance(value, kind) or (
            kind is list and not all(isinstance(v, str) and v.strip() for v in value)
        ):
            shape = "a list of names" if kind is list else "text"
            raise Invalid(f"metadata field {name!r} must be {shape}")
    return {name: document[name] for name in METADATA_FIELDS if name in document}


def put_metadata(
    session: Session, run_ref: str | int, document: object, *, scope: Scope = LOCAL
) -> dict[str, Any]:
    """Store the run's metadata template (merged over the current one); returns the result."""
    run = get_run(session, run_ref, scope=scope)
    merged = get_metadata(session, run.seq, scope=scope) | _checked(document)
    run.science_metadata = json.dumps(merged, ensure_ascii=False)
    return merged


# --- the package ---------------------------------------------------------------------------------


def _relative(path: str, base: str | None, section: str, sha256: str | None) -> str:
    """Where a file goes in the package: its path relative to the run's folder, or, outside it,
    a name that cannot climb out (``external/<hash>-<name>``)."""
    pure = PurePosixPath(path)
    if base and pure.is_relative_to(base):
        inside = pure.relative_to(base)
        if ".." not in inside.parts and str(inside) != ".":
            return f"{section}/{inside}"
    return f"{section}/external/{(sha256 or 'unhashed')[:12]}-{pure.name or 'file'}"


@contextmanager
def _staging() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="cairn-publish-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _yw_model(script: Path) -> dict[str, Any] | None:
    from cairn.provenance.yw import load_model

    try:
        model = load_model([script], language=None).to_dict()
    except Exception:
        return None
    return model if model["programs"] else None


def _write_crate(
    session: Session,
    blobs: BlobStore,
    run: Run,
    metadata: dict[str, Any],
    publication_id: str,
    staging: Path,
    crate_dir: Path,
) -> int:
    from rocrate.model.contextentity import ContextEntity
    from rocrate.model.person import Person
    from rocrate.rocrate import ROCrate

    crate = ROCrate()
    crate.root_dataset["name"] = metadata["title"]
    crate.root_dataset["description"] = metadata.get("description") or metadata["title"]
    crate.root_dataset["keywords"] = metadata.get("keywords") or []
    crate.root_dataset["license"] = metadata["license"]
    crate.root_dataset["identifier"] = f"urn:uuid:{publication_id}"
    creators = [
        crate.add(Person(crate, f"#creator-{i}", properties={"name": name}))
        for i, name in enumerate(metadata["creators"], start=1)
    ]
    crate.root_dataset["author"] = creators

    rows = session.execute(
        select(RunEdge.access, FileVersion)
        .join(FileVersion, FileVersion.id == RunEdge.file_id)
        .where(RunEdge.run_seq == run.seq)
        .order_by(FileVersion.path, RunEdge.access)
    ).all()
    sections = {"execute": "scripts", "read": "inputs", "write": "outputs"}
    parts: dict[str, list[Any]] = {"scripts": [], "inputs": [], "outputs": []}
    placed: dict[str, Any] = {}
    yw_source: Path | None = None
    for index, (access, version) in enumerate(rows):
        section = sections[access]
        dest = _relative(version.path, run.cwd, section, version.sha256)
        properties: dict[str, Any] = {"name": PurePosixPath(version.path).name}
        if version.sha256:
            properties["sha256"] = version.sha256
        if version.size is not None:
            properties["contentSize"] = str(version.size)
        if version.modified_at is not None:
            properties["dateModified"] = version.modified_at.isoformat()
        if dest in placed:
            entity = placed[dest]
        elif version.archived_sha256 is None:  # recorded by hash only: described, not included
            properties["description"] = f"not archived ({version.flagged or 'not kept'})"
            entity = crate.add(ContextEntity(crate, f"#{dest}", properties=properties))
        else:
            source = staging / f"{index}{PurePosixPath(version.path).suffix}"  # keeps the language
            copy_blob(blobs, version.archived_sha256, source)
            entity = crate.add_file(source, dest_path=dest, properties=properties)
            if section == "scripts" and yw_source is None:
                yw_source = source
        placed[dest] = entity
        parts[section].append(entity)

    environment = {
        "interpreter": run.interpreter,
        "interpreter_version": run.interpreter_version,
        "os": run.os,
        "host": run.host,
        "user": run.username,
        "cwd": run.cwd,
        "arguments": json.loads(run.arguments or "[]"),
        "packages": json.loads(run.packages or "[]"),
    }
    graph = read_graph(session, RunSelector(run_id=run.id), blobs=blobs)
    prov_files = {
        "provenance/environment.json": json.dumps(environment, indent=2) + "\n",
        "provenance/prov.json": to_prov(graph, "json"),
        "provenance/prov.provn": to_prov(graph, "provn"),
    }
    model = _yw_model(yw_source) if yw_source is not None else None
    if model is not None:
        prov_files["provenance/yw-model.json"] = json.dumps(model, indent=2) + "\n"
    for name, content in prov_files.items():
        source = staging / PurePosixPath(name).name
        source.write_text(content, encoding="utf-8")
        encoding = "application/json" if name.endswith(".json") else "text/provenance-notation"
        crate.add_file(source, dest_path=name, properties={"encodingFormat": encoding})

    instrument = parts["scripts"][0] if parts["scripts"] else None
    action: dict[str, Any] = {
        "name": f"Run {run.seq}: {PurePosixPath(run.script).name if run.script else run.kind}",
        "startTime": run.started_at.isoformat(),
        "actionStatus": (
            "http://schema.org/CompletedActionStatus"
            if run.status == "ok"
            else "http://schema.org/FailedActionStatus"
        ),
        "agent": creators,
    }
    if run.ended_at is not None:
        action["endTime"] = run.ended_at.isoformat()
    if run.error_message:
        action["error"] = run.error_message
    crate.add_action(
        instrument or crate.root_dataset,
        identifier=f"#run-{run.id}",
        object=parts["inputs"],
        result=parts["outputs"],
        properties=action,
    )
    crate.write(crate_dir)
    ROCrate(crate_dir)  # read back: a crate the library cannot read is not written out
    return sum(1 for _ in crate_dir.rglob("*") if _.is_file())


def _zip(bag: Path, target: Path) -> str:
    partial = target.with_name(f".{target.name}.cairn-partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(bag.rglob("*")):
            if path.is_file():
                archive.write(path, str(PurePosixPath(bag.name) / path.relative_to(bag).as_posix()))
    digest = hashlib.sha256()
    with open(partial, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    os.replace(partial, target)
    return digest.hexdigest()


def publish_run(
    session: Session,
    blobs: BlobStore,
    run_ref: str | int,
    *,
    to: str | os.PathLike[str],
    update: bool = False,
    scope: Scope = LOCAL,
    upload: Callable[[Path], Any] | None = None,
) -> PublishedRun:
    """Write the run's package as a zip at ``to`` (a folder: ``run-<seq>-v<version>.zip`` in
    it) and record the publication. A run published before refuses unless ``update``.

    ``upload`` (e.g. the SDK's ``runs.upload_published``) is called with the zip once it is
    written, before this returns, so inside the caller's transaction: when it raises (the
    server refused the package, the network failed) the publication is rolled back with the
    transaction and a retry publishes the same version again, without ``update``.
    """
    import bagit

    run = get_run(session, run_ref, scope=scope)
    metadata = get_metadata(session, run.seq, scope=scope)
    missing = [name for name in _REQUIRED if not metadata.get(name)]
    if missing:
        raise Invalid(
            f"the run's metadata has no {', '.join(missing)}: set them first "
            f"(cairn runs metadata {run.seq} --set FILE.yaml, or put_metadata)"
        )
    previous = session.scalars(
        select(Publication)
        .where(Publication.run_seq == run.seq)
        .order_by(Publication.version.desc())
        .limit(1)
    ).first()
    if previous is not None and not update:
        raise Conflict(
            f"run {run.seq} was published as urn:uuid:{previous.id} (version "
            f"{previous.version}); publish with update=True (--update) for a new version"
        )
    version = previous.version + 1 if previous else 1
    target = Path(to)
    if target.is_dir():
        target = target / f"run-{run.seq}-v{version}.zip"
    if not target.parent.is_dir():
        raise Invalid(f"no folder {str(target.parent)!r} to write the package in")
    publication = Publication(
        run_seq=run.seq,
        version=version,
        previous_id=previous.id if previous else None,
        science_metadata=json.dumps(metadata, ensure_ascii=False),
        package_sha256="",
    )
    session.add(publication)
    session.flush()  # the identifier goes into the crate
    with _staging() as staging:
        files_dir, bag = staging / "files", staging / f"run-{run.seq}-v{version}"
        files_dir.mkdir()
        files = _write_crate(session, blobs, run, metadata, publication.id, files_dir, bag)
        bag_info = {
            "External-Identifier": f"urn:uuid:{publication.id}",
            "External-Description": metadata["title"],
            "Source-Organization": ", ".join(metadata["creators"]),
            "Bag-Group-Identifier": f"urn:uuid:{run.id}",
        }
        made = bagit.make_bag(str(bag), bag_info, checksums=["sha256"])
        made.validate()  # a bag that does not validate is not written out
        sha256 = _zip(bag, target)
    publication.package_sha256 = sha256
    session.flush()
    uploaded = upload(target) if upload is not None else None
    return PublishedRun(
        publication.id, version, publication.previous_id, target.resolve(), sha256, files, uploaded
    )
