"""The provenance service: store runs, select them with RunManager's selectors, view, trace,
check out and delete them, and record the platform's own activity.

Functions take a session (and the blob store where they touch content), ``flush()`` and never
commit. ``scope`` says whose runs: ``LOCAL`` (the data folder's store, no organisation) or an
organisation set (a server); another organisation's run is *not found*.
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from cairn.blobs import BlobStore
from cairn.db import referenced_blobs, utcnow
from cairn.errors import Invalid
from cairn.provenance import lineage
from cairn.provenance._draft import RunDraft, run_values
from cairn.provenance._environment import Environment
from cairn.provenance._paths import path_key, stored_path
from cairn.provenance._select import LOCAL, RunSelector, Scope, select_runs_query
from cairn.provenance.capture import CapturedFile, archive_files
from cairn.provenance.errors import NoSelector, NotArchived, NotPublished, RunNotFound
from cairn.provenance.models import FileVersion, Publication, Run, RunEdge, RunTag

if TYPE_CHECKING:
    from cairn.accounts.service import Actor

__all__ = [
    "LOCAL",
    "ActivityFile",
    "DeleteReport",
    "Lineage",
    "PathVersion",
    "PublishedPackage",
    "RunDraft",
    "RunNotFound",
    "RunSelector",
    "RunView",
    "Scope",
    "archive_files",
    "checkout",
    "copy_blob",
    "delete_runs",
    "export_file_records",
    "file_records",
    "get_run",
    "list_runs",
    "page_runs",
    "path_versions",
    "plot_runs",
    "published_package",
    "purge_blobs",
    "record_activity",
    "save_run",
    "scope_for",
    "select_runs",
    "start_run",
    "trace_runs",
    "view_run",
    "view_runs",
]

_HASH = re.compile(r"[0-9a-f]{64}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# --- storing ---------------------------------------------------------------------------------


def start_run(session: Session, draft: RunDraft, *, organisation_id: str | None = None) -> Run:
    """Write the run's row now (status ``running``), as RunManager's startRecord does, so a run
    killed outright still shows in the listings."""
    run = Run(organisation_id=organisation_id, **run_values(draft))
    session.add(run)
    session.flush()
    for tag in dict.fromkeys(t for t in draft.tags if t):
        session.add(RunTag(run_seq=run.seq, tag=tag[:256]))
    session.flush()
    return run


def _versions(
    session: Session, organisation_id: str | None, files: Sequence[CapturedFile]
) -> dict[tuple[object, ...], FileVersion]:
    """Existing file versions with the same path, content and times (shared between runs)."""
    keys = sorted({path_key(f.path) for f in files})
    found: dict[tuple[object, ...], FileVersion] = {}
    for chunk in (keys[i : i + 500] for i in range(0, len(keys), 500)):
        query = select(FileVersion).where(
            FileVersion.path_key.in_(chunk),
            Scope(None).clause(FileVersion.organisation_id)
            if organisation_id is None
            else FileVersion.organisation_id == organisation_id,
        )
        for version in session.scalars(query):
            found[_identity(version)] = version
    return found


def _identity(item: FileVersion | CapturedFile) -> tuple[object, ...]:
    return (item.path, item.sha256, item.size, item.modified_at, item.created_at)


def save_run(
    session: Session, draft: RunDraft, *, run: Run | None = None, organisation_id: str | None = None
) -> Run:
    """Store a finished run: its row (``run`` when ``start_run`` wrote it), file versions and
    edges, in bulk (one INSERT per table, not a flush per file). Call ``archive_files``
    first, so rows only ever name blobs that are stored."""
    if run is None:
        run = start_run(session, draft, organisation_id=organisation_id)
    else:
        for name, value in run_values(draft).items():
            setattr(run, name, value)
        session.flush()
    files = [*draft.used, *draft.generated]
    existing = _versions(session, run.organisation_id, files)
    ids: dict[tuple[object, ...], int] = {}
    fresh: dict[tuple[object, ...], dict[str, object]] = {}
    for item in files:
        key = _identity(item)
        archived = item.sha256 if item.sha256 and draft.archived.get(item.sha256) else None
        version = existing.get(key)
        if version is not None:
            ids[key] = version.id
            if archived and version.archived_sha256 is None:
                version.archived_sha256 = archived
        elif key not in fresh:
            fresh[key] = {
                "organisation_id": run.organisation_id,
                "path": item.path,
                "path_key": path_key(item.path),
                "sha256": item.sha256,
                "size": item.size,
                "modified_at": item.modified_at,
                "created_at": item.created_at,
                "archived_sha256": archived,
                "flagged": item.flagged,
            }
    if fresh:
        # Each new id comes back with its identity, not in parameter order: SQLite has no
        # sentinel column for ``sort_by_parameter_order``, so SQLAlchemy would fall back to one
        # INSERT per row there (10,000 statements for a 10,000-file upload, #14).
        new = session.execute(
            insert(FileVersion).returning(
                FileVersion.id,
                FileVersion.path,
                FileVersion.sha256,
                FileVersion.size,
                FileVersion.modified_at,
                FileVersion.created_at,
            ),
            list(fresh.values()),
        )
        ids.update((tuple(identity), new_id) for new_id, *identity in new)
    now = utcnow()
    edges = {(ids[_identity(item)], item.access) for item in files}
    if edges:
        session.execute(
            insert(RunEdge),
            [
                {"run_seq": run.seq, "file_id": fid, "access": access, "at": now}
                for fid, access in sorted(edges)
            ],
        )
    session.flush()
    return run


@dataclass(frozen=True)
class ActivityFile:
    """A blob an activity used or generated, with the name it had there (optional).

    ``stored`` says whether the blob store holds these bytes: an uploaded archive is known by
    its hash only (its members are stored, not the archive), so it is recorded, not archived."""

    sha256: str
    path: str | None = None
    size: int | None = None
    stored: bool = True


def record_activity(
    session: Session,
    *,
    organisation_id: str | None,
    kind: str,
    used: Sequence[ActivityFile | str] = (),
    generated: Sequence[ActivityFile | str] = (),
    tags: Sequence[str] = (),
    user: str | None = None,
    description: str | None = None,
) -> Run:
    """Record one of the platform's own actions (an upload, a package build, a processing
    execution) as a run whose inputs and outputs are blobs, so lineage queries cross from
    scripts into the platform and back. Other areas call this; it only adds rows."""
    if not kind or len(kind) > 64:
        raise Invalid("an activity needs a kind of at most 64 characters")

    blobs = [ActivityFile(item) if isinstance(item, str) else item for item in [*used, *generated]]

    def as_file(blob: ActivityFile, access: str) -> CapturedFile:
        if _HASH.fullmatch(blob.sha256) is None:
            raise Invalid(f"not a blob hash: {blob.sha256!r}")
        path, _ = stored_path(blob.path or f"blob:{blob.sha256}")
        return CapturedFile(path=path, access=access, sha256=blob.sha256, size=blob.size)

    now = utcnow()
    draft = RunDraft(
        kind=kind,
        script=description or kind,
        tags=list(tags),
        started_at=now,
        ended_at=now,
        status="ok",
        exit_code=0,
        env=Environment(user, platform.node(), platform.platform(), "cairn", _version(), "[]"),
        used=[as_file(blob, "read") for blob in blobs[: len(used)]],
        generated=[as_file(blob, "write") for blob in blobs[len(used) :]],
    )
    # Only what the blob store holds may be named as archived (``cairn check`` checks it).
    draft.archived = {blob.sha256: True for blob in blobs if blob.stored}
    return save_run(session, draft, organisation_id=organisation_id)


def _version() -> str:
    from cairn import __version__

    return f"cairn {__version__}"


@dataclass(frozen=True)
class PublishedPackage:
    """One publication of a run and the SHA-256 of its package (the zip), for other areas."""

    run_id: str
    run_seq: int
    organisation_id: str | None
    publication_id: str
    version: int
    sha256: str


def published_package(session: Session, ref: str, *, scope: Scope) -> PublishedPackage:
    """The package of the publication ``ref`` names, or of the latest publication of the run
    ``ref`` names (its UUID or number): what the archive seals for a published run.

    Raises:
        RunNotFound: no such run or publication in ``scope`` (another organisation's).
        NotPublished: the run was never published.
    """
    text = ref.strip().lower()
    named = session.get(Publication, text) if _UUID.fullmatch(text) else None
    run = get_run(session, named.run_seq if named is not None else text, scope=scope)
    publication = (
        named
        or session.scalars(
            select(Publication)
            .where(Publication.run_seq == run.seq, Publication.package_sha256 != "")
            .order_by(Publication.version.desc())
            .limit(1)
        ).first()
    )
    if publication is None or not publication.package_sha256:
        raise NotPublished(
            f"Run {run.seq} is not a published run: publish it first (cairn runs publish "
            f"{run.seq} --to URL)."
        )
    return PublishedPackage(
        run.id,
        run.seq,
        run.organisation_id,
        publication.id,
        publication.version,
        publication.package_sha256,
    )


# --- selecting and viewing --------------------------------------------------------------------


def select_runs(session: Session, selector: RunSelector, *, scope: Scope = LOCAL) -> list[Run]:
    return list(session.scalars(select_runs_query(selector, scope)))


def get_run(session: Session, ref: str | int, *, scope: Scope = LOCAL) -> Run:
    """One run by UUID or sequence number; another organisation's is not found."""
    text = str(ref).strip()
    query = select(Run).where(scope.clause(Run.organisation_id))
    if text.isdigit() and len(text) < 10:
        query = query.where(Run.seq == int(text))
    else:
        query = query.where(Run.id == text)
    run = session.scalar(query)
    if run is None:
        raise RunNotFound(f"No run {text!r}.")
    return run


def tags_of(session: Session, seqs: Sequence[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {seq: [] for seq in seqs}
    for chunk in lineage.chunks(list(seqs)):
        rows = session.execute(
            select(RunTag.run_seq, RunTag.tag).where(RunTag.run_seq.in_(chunk)).order_by(RunTag.tag)
        )
        for seq, tag in rows:
            found[seq].append(tag)
    return found


def list_runs(
    session: Session, selector: RunSelector, *, scope: Scope = LOCAL
) -> list[dict[str, object]]:
    """One row per selected run (RunManager's listRuns columns)."""
    runs = select_runs(session, selector, scope=scope)
    tags = tags_of(session, [r.seq for r in runs])
    return [run_row(run, tags[run.seq]) for run in runs]


def run_row(run: Run, tags: Sequence[str]) -> dict[str, object]:
    return {
        "seq": run.seq,
        "run_id": run.id,
        "kind": run.kind,
        "script": run.script,
        "tags": list(tags),
        "start_time": run.started_at.isoformat(),
        "end_time": run.ended_at.isoformat() if run.ended_at else None,
        "status": run.status,
        "exit_code": run.exit_code,
        "error_message": run.error_message,
    }


@dataclass
class RunView:
    """One run with its files: ``used`` holds (version, access) pairs."""

    run: Run
    tags: list[str]
    used: list[tuple[FileVersion, str]]
    generated: list[FileVersion]

    def as_dict(self) -> dict[str, object]:
        run = self.run
        return {
            **run_row(run, self.tags),
            "script_sha256": run.script_sha256,
            "arguments": json.loads(run.arguments),
            "cwd": run.cwd,
            "traceback": run.traceback,
            "user": run.username,
            "host": run.host,
            "os": run.os,
            "interpreter": run.interpreter,
            "interpreter_version": run.interpreter_version,
            "packages": json.loads(run.packages),
            "console_log": run.console_log,
            "used": [{**version_dict(v), "access": access} for v, access in self.used],
            "generated": [version_dict(v) for v in self.generated],
        }


def version_dict(version: FileVersion) -> dict[str, object]:
    return {
        "path": version.path,
        "sha256": version.sha256,
        "size": version.size,
        "modified_time": version.modified_at.isoformat() if version.modified_at else None,
        "created_time": version.created_at.isoformat() if version.created_at else None,
        "archived": version.archived_sha256 is not None,
        "flagged": version.flagged,
    }


def _files_of(session: Session, seqs: Sequence[int]) -> dict[int, list[tuple[FileVersion, str]]]:
    found: dict[int, list[tuple[FileVersion, str]]] = {seq: [] for seq in seqs}
    for chunk in lineage.chunks(list(seqs)):
        rows = session.execute(
            select(RunEdge.run_seq, FileVersion, RunEdge.access)
            .join(FileVersion, FileVersion.id == RunEdge.file_id)
            .where(RunEdge.run_seq.in_(chunk))
            .order_by(FileVersion.path, FileVersion.id)
        )
        for seq, version, access in rows:
            found[seq].append((version, access))
    return found


def view_runs(session: Session, selector: RunSelector, *, scope: Scope = LOCAL) -> list[RunView]:
    runs = select_runs(session, selector, scope=scope)
    return _views(session, runs)


def _views(session: Session, runs: Sequence[Run]) -> list[RunView]:
    seqs = [r.seq for r in runs]
    tags, files = tags_of(session, seqs), _files_of(session, seqs)
    return [
        RunView(
            run=run,
            tags=tags[run.seq],
            used=[(v, a) for v, a in files[run.seq] if a != "write"],
            generated=[v for v, a in files[run.seq] if a == "write"],
        )
        for run in runs
    ]


# --- deleting ----------------------------------------------------------------------------------


@dataclass
class DeleteReport:
    runs: list[dict[str, object]]
    unreferenced_blobs: list[str]  # archived versions no remaining row needs (purge after commit)


def delete_runs(
    session: Session, selector: RunSelector, *, scope: Scope = LOCAL, noop: bool = False
) -> DeleteReport:
    """Delete the selected runs and the file versions only they used; refuses an empty
    selector (that would delete everything). The blobs they freed are listed for
    ``purge_blobs``, to be called once this transaction has committed."""
    if selector.is_empty():
        raise NoSelector(
            "Refusing to delete every run: give at least one selector (run id, script, "
            "start, end, tag, error or seq)."
        )
    runs = select_runs(session, selector, scope=scope)
    rows = list_runs_rows(session, runs)
    seqs = [r.seq for r in runs]
    if noop or not seqs:
        return DeleteReport(rows, [])
    file_ids: set[int] = set()
    for chunk in lineage.chunks(seqs):
        file_ids.update(session.scalars(select(RunEdge.file_id).where(RunEdge.run_seq.in_(chunk))))
        session.execute(delete(RunEdge).where(RunEdge.run_seq.in_(chunk)))
        session.execute(delete(RunTag).where(RunTag.run_seq.in_(chunk)))
        session.execute(delete(Run).where(Run.seq.in_(chunk)))
    candidates: set[str] = set()
    ids = sorted(file_ids)
    for chunk in lineage.chunks(ids):
        still_used = set(
            session.scalars(select(RunEdge.file_id).where(RunEdge.file_id.in_(chunk)).distinct())
        )
        orphans = [i for i in chunk if i not in still_used]
        if orphans:
            candidates.update(
                h
                for h in session.scalars(
                    select(FileVersion.archived_sha256).where(
                        FileVersion.id.in_(orphans), FileVersion.archived_sha256.is_not(None)
                    )
                )
                if h
            )
            session.execute(delete(FileVersion).where(FileVersion.id.in_(orphans)))
    session.flush()
    return DeleteReport(rows, sorted(candidates - referenced_blobs(session)))


def list_runs_rows(session: Session, runs: Sequence[Run]) -> list[dict[str, object]]:
    tags = tags_of(session, [r.seq for r in runs])
    return [run_row(run, tags[run.seq]) for run in runs]


def purge_blobs(session: Session, blobs: BlobStore, candidates: Iterable[str]) -> list[str]:
    """Delete the blobs among ``candidates`` that no row references (re-checked now)."""
    referenced = referenced_blobs(session)
    gone = [h for h in candidates if h not in referenced]
    for sha256 in gone:
        blobs.delete(sha256)
    return gone


# --- lineage -----------------------------------------------------------------------------------


@dataclass
class Lineage:
    """The runs and file versions a trace reached, and the edges between them."""

    start: str
    direction: str
    join: str
    runs: list[RunView]
    files: list[FileVersion]

    def as_dict(self) -> dict[str, object]:
        shown = {f.id for f in self.files}
        return {
            "start": self.start,
            "direction": self.direction,
            "join": self.join,
            "runs": [run_row(v.run, v.tags) for v in self.runs],
            "files": [{"id": f.id, **version_dict(f)} for f in self.files],
            "edges": [
                {"run_id": v.run.id, "file_id": f.id, "access": a}
                for v in self.runs
                for f, a in [*v.used, *((g, "write") for g in v.generated)]
                if f.id in shown
            ],
        }


def _path_keys(path: str, *, resolve: bool = True) -> set[str]:
    """The ``path_key`` values ``path`` may be stored under: as given and, with ``resolve``,
    made absolute against the current folder (a server passes False: its folder is no
    caller's)."""
    shown, _ = stored_path(path)
    keys = {path_key(shown)}
    if resolve and not shown.startswith("/"):
        keys.add(path_key(os.path.normpath(os.path.join(os.getcwd(), shown))))
    return keys


def _seeds(
    session: Session, target: str, scope: Scope, direction: str
) -> tuple[list[int], list[Run]]:
    """File version ids to start from, and the run itself when ``target`` names one."""
    text = target.strip()
    files_ok = scope.clause(FileVersion.organisation_id)
    if _HASH.fullmatch(text.lower()):
        ids = session.scalars(
            select(FileVersion.id).where(FileVersion.sha256 == text.lower(), files_ok)
        ).all()
        if ids:
            return list(ids), []
    if _UUID.fullmatch(text.lower()) or (text.isdigit() and len(text) < 10):
        try:
            run = get_run(session, text, scope=scope)
        except RunNotFound:
            run = None
        if run is not None:
            edges = session.execute(
                select(RunEdge.file_id, RunEdge.access).where(RunEdge.run_seq == run.seq)
            ).all()
            wanted = {"upstream": {"read", "execute"}, "downstream": {"write"}}
            kinds = wanted.get(direction, {"read", "execute", "write"})
            return [fid for fid, access in edges if access in kinds], [run]
    ids = session.scalars(
        select(FileVersion.id).where(FileVersion.path_key.in_(_path_keys(text)), files_ok)
    ).all()
    if not ids:
        raise RunNotFound(f"No recorded run, file or content matches {target!r}.")
    return list(ids), []


def trace_runs(
    session: Session,
    target: str,
    *,
    direction: str = "upstream",
    join: str = "hash",
    scope: Scope = LOCAL,
) -> Lineage:
    """Everything upstream (or downstream, or both) of a file, a content hash or a run."""
    seeds, start_runs = _seeds(session, target, scope, direction)
    found = lineage.reach(session, seeds=seeds, direction=direction, join=join, scope=scope)
    seqs = sorted(found.run_seqs | {r.seq for r in start_runs})
    runs: list[Run] = []
    for chunk in lineage.chunks(seqs):
        runs.extend(session.scalars(select(Run).where(Run.seq.in_(chunk))))
    runs.sort(key=lambda r: (r.started_at, r.seq))
    views = _views(session, runs)
    known: dict[int, FileVersion] = {}
    for view in views:  # the runs' own inputs and outputs belong in the picture
        known.update((v.id, v) for v, _ in view.used)
        known.update((v.id, v) for v in view.generated)
    missing = sorted(found.file_ids - known.keys())  # found versions no run here touched
    for chunk in lineage.chunks(missing):
        known.update(
            (v.id, v) for v in session.scalars(select(FileVersion).where(FileVersion.id.in_(chunk)))
        )
    files = sorted(known.values(), key=lambda f: (f.path, f.id))
    return Lineage(target, direction, join, views, files)


@dataclass
class PathVersion:
    """One content seen at a path: the runs that generated it and the runs that used it."""

    sha256: str | None
    size: int | None
    first_seen: datetime
    generated_by: list[dict[str, object]]
    used_by: list[dict[str, object]]

    def as_dict(self) -> dict[str, object]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "first_seen": self.first_seen.isoformat(),
            "generated_by": self.generated_by,
            "used_by": self.used_by,
        }


def path_versions(
    session: Session, path: str, *, scope: Scope = LOCAL, resolve: bool = True
) -> list[PathVersion]:
    """The different contents recorded at ``path`` (as stored, or, with ``resolve``, relative
    to the current folder), oldest first, each with the runs that generated and used it:
    which runs produced different versions of one file (#14 lineage).

    Raises:
        RunNotFound: no run of the scope saw that path.
    """
    rows = session.execute(
        select(FileVersion, RunEdge.access, Run)
        .join(RunEdge, RunEdge.file_id == FileVersion.id)
        .join(Run, Run.seq == RunEdge.run_seq)
        .where(
            FileVersion.path_key.in_(_path_keys(path.strip(), resolve=resolve)),
            scope.clause(Run.organisation_id),
        )
        .order_by(Run.started_at, Run.seq)
    ).all()
    if not rows:
        raise RunNotFound(f"No recorded run saw the path {path!r}.")
    found: dict[object, PathVersion] = {}
    for version, access, run in rows:
        content = version.sha256 or f"unhashed:{version.id}"
        entry = found.get(content)
        seen = version.modified_at or run.started_at
        if entry is None:
            entry = found[content] = PathVersion(version.sha256, version.size, seen, [], [])
        entry.first_seen = min(entry.first_seen, seen)
        brief = {"run_id": run.id, "seq": run.seq, "script": run.script, "path": version.path}
        target = entry.generated_by if access == "write" else entry.used_by
        if brief not in target:
            target.append(brief)
    return sorted(found.values(), key=lambda v: v.first_seen)


def plot_runs(session: Session, selector: RunSelector, *, scope: Scope = LOCAL) -> Lineage:
    """The selected runs (RunManager's plotRuns) and every file they used or generated, as a
    ``Lineage`` that ``plot.render`` draws: runs that share a file version are joined by it."""
    views = _views(session, select_runs(session, selector, scope=scope))
    files = {v.id: v for view in views for v, _ in view.used}
    files |= {v.id: v for view in views for v in view.generated}
    views.sort(key=lambda view: (view.run.started_at, view.run.seq))
    shown = sorted(files.values(), key=lambda f: (f.path, f.id))
    return Lineage("selection", "selected", "version", views, shown)


# --- file versions -----------------------------------------------------------------------------


def _run_version(session: Session, run: Run, path: str, access: str | None) -> FileVersion:
    shown, _ = stored_path(path)
    keys = {path_key(shown), path_key(os.path.normpath(os.path.join(os.getcwd(), shown)))}
    rows = list(
        session.execute(
            select(FileVersion, RunEdge.access)
            .join(RunEdge, RunEdge.file_id == FileVersion.id)
            .where(RunEdge.run_seq == run.seq, FileVersion.path_key.in_(keys))
        ).all()
    )
    if access:
        rows = [r for r in rows if r[1] == access]
    if not rows:
        raise RunNotFound(f"Run {run.id} neither used nor generated {path!r}.")
    # The version the run left behind wins over the one it found.
    rows.sort(key=lambda r: r[1] != "write")
    return rows[0][0]


def checkout(
    session: Session,
    blobs: BlobStore,
    run_ref: str | int,
    path: str,
    *,
    to: str | os.PathLike[str],
    access: str | None = None,
    scope: Scope = LOCAL,
) -> FileVersion:
    """Write the exact version of ``path`` that a run used or generated to ``to``.

    The one it generated when it did both, unless ``access`` ("read" / "write") says."""
    run = get_run(session, run_ref, scope=scope)
    version = _run_version(session, run, path, access)
    if version.archived_sha256 is None:
        raise NotArchived(
            f"The version of {version.path!r} in run {run.id} was recorded by hash only"
            + (f" ({version.flagged})." if version.flagged else ".")
        )
    target = Path(to)
    if target.is_dir():
        target = target / Path(version.path).name
    copy_blob(blobs, version.archived_sha256, target)
    return version


def copy_blob(blobs: BlobStore, sha256: str, target: Path) -> None:
    """Write a blob to ``target`` whole or not at all (through a partial file beside it)."""
    partial = target.with_name(f".{target.name}.cairn-partial")
    with blobs.open(sha256) as source, open(partial, "wb") as out:
        while chunk := source.read(1 << 20):
            out.write(chunk)
    os.replace(partial, target)


def file_records(
    session: Session, run_ref: str | int, base: str, *, scope: Scope = LOCAL
) -> dict[str, list[str]]:
    """The run's used and generated paths relative to ``base`` (absolute when outside it)."""
    run = get_run(session, run_ref, scope=scope)
    view = _views(session, [run])[0]
    root = os.path.normpath(os.path.abspath(base))

    def rel(path: str) -> str:
        inside = path == root or path.startswith(root.rstrip("/") + "/")
        return os.path.relpath(path, root) if inside else path

    inputs = [rel(v.path) for v, access in view.used if access == "read"]
    return {
        "inputs": list(dict.fromkeys(inputs)),
        "outputs": list(dict.fromkeys(rel(v.path) for v in view.generated)),
    }


def export_file_records(
    session: Session,
    run_ref: str | int,
    base: str,
    *,
    to: str | os.PathLike[str] | None = None,
    scope: Scope = LOCAL,
) -> str:
    """The YAML (``inputs:`` / ``outputs:``) that YesWorkflow's recon reads (RunManager's
    exportFileRecords2Yaml); written to ``to`` when given. Strings are JSON-quoted, which is
    valid YAML whatever the path holds."""
    records = file_records(session, run_ref, base, scope=scope)
    lines: list[str] = []
    for section in ("inputs", "outputs"):
        items = records[section]
        lines.append(f"{section}:" + ("" if items else " []"))
        lines.extend(f"  - {json.dumps(item, ensure_ascii=False)}" for item in items)
    document = "\n".join(lines) + "\n"
    if to is not None:
        Path(to).write_text(document, encoding="utf-8")
    return document


# --- on a server: the caller's organisations --------------------------------------------------


def scope_for(actor: Actor, organisation_id: str | None = None) -> Scope:
    """The organisations whose runs ``actor`` may see (one, when named and a member)."""
    if organisation_id is not None:
        if organisation_id not in actor.privileges:
            raise RunNotFound(f"No organisation {organisation_id!r}.")
        return Scope((organisation_id,))
    return Scope(tuple(sorted(actor.privileges)))


def page_runs(
    session: Session,
    selector: RunSelector,
    *,
    scope: Scope,
    page: int,
    page_size: int,
) -> tuple[list[dict[str, object]], int]:
    """One page of ``list_runs`` rows and the total."""
    from cairn.db import paginate

    runs, total = paginate(
        session, select_runs_query(selector, scope), page=page, page_size=page_size
    )
    return list_runs_rows(session, list(runs)), total


def view_run(session: Session, run_ref: str, *, scope: Scope) -> RunView:
    return _views(session, [get_run(session, run_ref, scope=scope)])[0]
