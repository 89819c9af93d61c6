"""Receiving a published run on a server: the RO-Crate-in-BagIt zip ``publish_run`` writes
(``POST /api/v1/runs/published``) becomes a read-only run of the organisation, listed and
traced like any other.

The zip is hostile until proven otherwise. It is unpacked into a scratch folder only if every
member is a plain file or folder under one top folder, with a relative name that cannot climb
out (no ``..``, no absolute or drive paths, no backslashes, no links), at most
``MAX_MEMBERS`` of them, and at most ``MAX_UNPACKED_BYTES`` unpacked and ``MAX_RATIO`` times
the zip's size; sizes are counted while unpacking, not taken from the zip's headers. The bag is
then validated with the ``bagit`` library (every payload file against its manifest), and the
crate's ``CreateAction`` names the run's script (``instrument``), inputs (``object``) and
outputs (``result``). Their contents go to the blob store; then one transaction writes the run
(kind ``published``), its file versions and edges, and a ``Publication`` row with the package's
hash and, when a minting plugin answers ``mint_doi``, its DOI.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cairn.blobs import BlobStore
from cairn.db import UnitOfWork, utcnow
from cairn.errors import Conflict, Forbidden, Invalid
from cairn.provenance._environment import Environment
from cairn.provenance.capture import CapturedFile
from cairn.provenance.models import Publication, Run
from cairn.provenance.service import RunDraft, RunView, save_run, view_run

if TYPE_CHECKING:
    from cairn.accounts.service import Actor
    from cairn.workspaces.service import Receive

__all__ = [
    "MAX_CRATE_BYTES",
    "MAX_MEMBERS",
    "MAX_RATIO",
    "MAX_UNPACKED_BYTES",
    "ReceivedRun",
    "receive_published",
]

MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 4 << 30
MAX_RATIO = 200
"""A zip that unpacks to more than this many times its own size is refused as a zip bomb."""
MAX_CRATE_BYTES = 64 << 20
_CHUNK = 1 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SECTIONS = {"instrument": "execute", "object": "read", "result": "write"}


@dataclass(frozen=True)
class ReceivedRun:
    """The run a published package became, and its publication."""

    view: RunView
    publication_id: str
    identifier: str | None
    doi: str | None
    package_sha256: str


# --- unpacking -------------------------------------------------------------------------------


def _member_name(info: zipfile.ZipInfo) -> PurePosixPath:
    name = info.filename
    parts = PurePosixPath(name).parts
    if (
        not name
        or "\\" in name
        or "\0" in name
        or name.startswith("/")
        or ":" in parts[0]
        or any(part in ("..", ".") for part in parts)
    ):
        raise Invalid(f"The package holds an unsafe path {name!r}: refused, nothing was kept.")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise Invalid(f"The package holds {name!r}, which is not a plain file: refused.")
    return PurePosixPath(*parts)


def _unpack(package: Path, into: Path) -> Path:
    """Unpack ``package`` safely into ``into``; returns the bag's (one top) folder."""
    try:
        archive = zipfile.ZipFile(package)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Invalid("The package is not a zip file (cairn runs publish writes one).") from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise Invalid(f"The package holds more than {MAX_MEMBERS} files: refused.")
        budget = min(MAX_UNPACKED_BYTES, max(package.stat().st_size, 1) * MAX_RATIO)
        names = [_member_name(info) for info in members]
        tops = {name.parts[0] for name in names}
        if len(tops) != 1:
            raise Invalid("The package must hold one folder (the bag), as publish writes it.")
        if len({str(n) for n in names}) != len(names):
            raise Invalid("The package names a file twice: refused.")
        if sum(info.file_size for info in members) > budget:
            raise Invalid("The package unpacks to too much data for its size (a zip bomb?).")
        written = 0
        for info, name in zip(members, names, strict=True):
            target = into.joinpath(*name.parts)
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "xb") as sink:
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        if written > budget:  # the headers lied
                            raise Invalid(
                                "The package unpacks to too much data for its size (a zip bomb?)."
                            )
                        sink.write(chunk)
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                raise Invalid(f"The package names {str(name)!r} twice: refused.") from exc
            except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
                raise Invalid(f"The package's member {str(name)!r} is corrupt: {exc}") from exc
    return into / tops.pop()


def _validated_bag(folder: Path) -> Any:
    import bagit

    try:
        bag = bagit.Bag(str(folder))
        bag.validate(processes=1)
    except bagit.BagValidationError as exc:
        details = [str(d) for d in getattr(exc, "details", [])][:20]
        raise Invalid(f"The package is not a valid bag: {exc.message}", detail=details) from None
    except bagit.BagError as exc:
        raise Invalid(f"The package is not a BagIt bag: {exc}") from None
    return bag


# --- the crate -------------------------------------------------------------------------------


def _refs(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value] if value else []
    return [i["@id"] for i in items if isinstance(i, dict) and isinstance(i.get("@id"), str)]


def _crate(data: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """The crate's root dataset, its run (the ``CreateAction``) and its entities by id."""
    metadata = data / "ro-crate-metadata.json"
    if metadata.is_file() and metadata.stat().st_size > MAX_CRATE_BYTES:
        raise Invalid("The crate's ro-crate-metadata.json is too large to read.")
    try:
        document = json.loads(metadata.read_text(encoding="utf-8"))
        graph = document["@graph"]
        entities = {e["@id"]: e for e in graph if isinstance(e, dict) and "@id" in e}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Invalid("The bag holds no readable data/ro-crate-metadata.json.") from exc
    actions = [e for e in entities.values() if "CreateAction" in _types(e)]
    if len(actions) != 1:
        raise Invalid("The crate must describe exactly one run (one CreateAction).")
    root = entities.get("./")
    if not isinstance(root, dict):
        raise Invalid("The crate has no root dataset ('./').")
    return root, actions[0], entities


def _types(entity: dict[str, Any]) -> list[object]:
    kind = entity.get("@type")
    return kind if isinstance(kind, list) else [kind]


def _files(
    blobs: BlobStore, data: Path, action: dict[str, Any], entities: dict[str, dict[str, Any]]
) -> list[CapturedFile]:
    """The run's files: payload files go to the blob store; described-only ones (not archived
    when published) are kept by hash."""
    found: list[CapturedFile] = []
    for key, access in _SECTIONS.items():
        for ref in _refs(action.get(key)):
            entity = entities.get(ref, {})
            declared = entity.get("sha256")
            relative = ref.removeprefix("#")
            path = f"published:{relative}"
            if not ref.startswith("#") and _inside(data, ref):
                candidate = data.joinpath(*PurePosixPath(ref).parts)
                stored = blobs.put_file(candidate)
                found.append(CapturedFile(path, access, stored.sha256, stored.size))
            elif isinstance(declared, str) and _HEX64.fullmatch(declared):
                found.append(CapturedFile(path, access, declared, None, flagged="not in package"))
    return found


def _inside(data: Path, ref: str) -> bool:
    """Whether ``ref`` names a payload file of the bag: relative, not climbing out, a plain
    file (a crate may name ``/etc/passwd``; it must not be read)."""
    pure = PurePosixPath(ref)
    if pure.is_absolute() or ".." in pure.parts or "\\" in ref or ":" in ref or not pure.parts:
        return False
    candidate = data.joinpath(*pure.parts)
    return (
        candidate.is_file()
        and not candidate.is_symlink()
        and candidate.resolve().is_relative_to(data.resolve())
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _able(actor: Actor) -> list[str]:
    from cairn.accounts.service import Privilege

    return sorted(org for org, held in actor.privileges.items() if held >= Privilege.execute)


def _may_upload(actor: Actor) -> None:
    if not _able(actor):
        raise Forbidden("Uploading a published run needs the 'execute' privilege.")


def _organisation(actor: Actor, organisation_id: str | None) -> str:
    from cairn.accounts.service import Privilege

    if organisation_id is not None:
        actor.require(organisation_id, Privilege.execute)
        return organisation_id
    able = _able(actor)
    if len(able) > 1:
        raise Invalid("You belong to several organisations: say which with organisation_id.")
    return able[0]


def receive_published(
    uow: UnitOfWork, blobs: BlobStore, actor: Actor, receive: Receive, *, work_dir: Path
) -> ReceivedRun:
    """Turn an uploaded published-run package into a read-only run of the organisation.

    Refuses (``Invalid``) an unsafe or invalid package before anything is stored, and
    (``Conflict``) the same package uploaded to the organisation twice.
    """
    from cairn.plugins import call_hook

    _may_upload(actor)  # before a byte of the body is read
    work_dir.mkdir(parents=True, exist_ok=True)
    with receive() as request:
        organisation_id = _organisation(actor, request.organisation_id)
        package_sha256 = request.sha256 or _sha256(request.path)  # hashed as it came
        scratch = Path(tempfile.mkdtemp(prefix="published-", dir=work_dir))
        try:
            bag_dir = _unpack(request.path, scratch)
            bag = _validated_bag(bag_dir)
            data = bag_dir / "data"
            root, action, entities = _crate(data)
            files = _files(blobs, data, action, entities)
            data_env = _json_object(data / "provenance" / "environment.json")
            package = blobs.put_file(request.path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    info = {str(k): str(v) for k, v in bag.info.items()}
    identifier = info.get("External-Identifier") or _text(root.get("identifier"))
    metadata = {
        "title": _text(root.get("name")) or "published run",
        "description": _text(root.get("description"), 10_000),
        "license": _text(root.get("license")),
        "identifier": identifier,
        "package": package.sha256,
    }
    script = next((f.path for f in files if f.access == "execute"), None)
    now = utcnow()
    draft = RunDraft(
        kind="published",
        script=script or metadata["title"],
        tags=["published"],
        started_at=_time(action.get("startTime")) or now,
        ended_at=_time(action.get("endTime")) or now,
        status="ok" if "Completed" in str(action.get("actionStatus", "Completed")) else "error",
        exit_code=0,
        error_message=_text(action.get("error"), 10_000),
        env=_environment(data_env),
        arguments=[a for a in data_env.get("arguments", []) if isinstance(a, str)][:1000],
        cwd=_text(data_env.get("cwd"), 4096),
        used=[f for f in files if f.access != "write"],
        generated=[f for f in files if f.access == "write"],
    )
    draft.archived = {f.sha256: True for f in files if f.sha256 and f.flagged is None}
    with uow.transaction() as session:
        twice = session.scalar(
            select(Publication.id)
            .join(Run, Run.seq == Publication.run_seq)
            .where(
                Run.organisation_id == organisation_id, Publication.package_sha256 == package_sha256
            )
        )
        if twice is not None:
            raise Conflict(f"This package was uploaded before (publication {twice}).")
        run = save_run(session, draft, organisation_id=organisation_id)
        run.science_metadata = json.dumps(metadata, ensure_ascii=False)
        publication = Publication(
            run_seq=run.seq,
            science_metadata=run.science_metadata,
            package_sha256=package_sha256,
        )
        session.add(publication)
        session.flush()
        minted = call_hook("mint_doi", publication_id=publication.id, metadata=metadata)
        publication.doi = next((str(d) for d in minted if d), None)
        view = view_run(session, run.id, scope=_scope(organisation_id))
        return ReceivedRun(view, publication.id, identifier, publication.doi, package_sha256)


def _json_object(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _environment(recorded: dict[str, Any]) -> Environment:
    """The environment the run was recorded in, as the package's environment.json says."""
    packages = [p for p in recorded.get("packages", []) if isinstance(p, str)]
    return Environment(
        _text(recorded.get("user")),
        _text(recorded.get("host")) or "",
        _text(recorded.get("os")) or "",
        _text(recorded.get("interpreter")) or "",
        _text(recorded.get("interpreter_version")) or "",
        json.dumps(packages[:10_000]),
    )


def _scope(organisation_id: str) -> Any:
    from cairn.provenance._select import Scope

    return Scope((organisation_id,))


def _text(value: object, longest: int = 256) -> str | None:
    """A string from the crate, trimmed to what its column holds (or ``None``)."""
    return (value.strip()[:longest] or None) if isinstance(value, str) else None


def _time(value: object) -> Any:
    from datetime import UTC, datetime

    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
