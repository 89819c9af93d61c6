"""Uploads recorded as provenance activities (#14), on both databases: an applied upload used
the uploaded file and generated the files it added or changed; a refused or fatal one records
nothing; lineage runs from a workspace file back through the upload to the run that made the
archive; the 10,000-file case writes its file versions in bulk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select

from cairn.accounts import service as accounts
from cairn.accounts.service import Actor
from cairn.blobs import BlobStore, open_blob_store
from cairn.blobs.check import check_blobs
from cairn.db import UnitOfWork, make_sessionmaker, referenced_blobs
from cairn.provenance import service as provenance
from cairn.provenance.capture import CapturedFile
from cairn.provenance.models import Run
from cairn.workspaces import service
from tests.archives import tar_gz, write_tar_gz
from tests.conftest import _wipe
from tests.factories import Member, make_org, make_user

TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"


@dataclass
class World:
    uow: UnitOfWork
    blobs: BlobStore
    tmp: Path
    actor: Actor
    stranger: Actor

    def upload(self, archive: Path, workspace_id: int | None = None) -> service.WorkspaceView:
        return service.upload(
            self.uow,
            self.blobs,
            self.actor,
            service.uploaded_file(archive),
            work_dir=self.tmp / "work",
            workspace_id=workspace_id,
        )

    def uploads(self) -> list[provenance.RunView]:
        """The recorded upload activities, oldest first."""
        with self.uow.transaction() as session:
            scope = provenance.scope_for(self.actor)
            runs = session.scalars(
                select(Run).where(Run.kind == "workspace.upload").order_by(Run.seq)
            ).all()
            return [provenance.view_run(session, run.id, scope=scope) for run in runs]


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    uow = UnitOfWork(make_sessionmaker(engine))
    with uow.transaction() as session:
        actors = []
        for _ in range(2):
            org, user = make_org(session), make_user(session)
            accounts.add_member(session, user=user, organisation=org, privilege="manage")
            actors.append(accounts.authenticate_user(session, user))
    try:
        yield World(uow, open_blob_store(tmp_path / "blobs"), tmp_path, *actors)
    finally:
        _wipe(engine)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def used(view: provenance.RunView) -> list[tuple[str | None, str | None, int | None]]:
    return [(v.sha256, v.path, v.size) for v, _ in view.used]


def generated(view: provenance.RunView) -> dict[str, str | None]:
    return {v.path: v.sha256 for v in view.generated}


def test_an_upload_used_its_archive_and_generated_what_it_added_or_changed(
    world: World,
) -> None:
    first = write_tar_gz(world.tmp / "paper.tar.gz", {"main.tex": TEX, "a.txt": b"a\n"})
    view = world.upload(first)
    (activity,) = world.uploads()
    assert activity.run.organisation_id == view.workspace.organisation_id
    assert activity.run.status == "ok" and activity.run.username == world.actor.id
    assert used(activity) == [(sha(first.read_bytes()), "paper.tar.gz", first.stat().st_size)]
    assert generated(activity) == {"main.tex": sha(TEX), "a.txt": sha(b"a\n")}
    # The archive itself is not stored (its members are): known by hash, never named archived,
    # so `cairn check` finds every blob the database names.
    assert [v.archived_sha256 for v, _ in activity.used] == [None]
    assert {v.archived_sha256 for v in activity.generated} == {sha(TEX), sha(b"a\n")}
    with world.uow.read() as session:
        assert check_blobs(world.blobs, referenced_blobs(session)).ok

    # Again, with main.tex unchanged, a.txt changed and b.txt new: only those two generated.
    files = {"main.tex": TEX, "a.txt": b"changed\n", "b.txt": b"b\n"}
    second = write_tar_gz(world.tmp / "again.tar.gz", files)
    world.upload(second, view.workspace.id)
    activity = world.uploads()[1]
    assert used(activity)[0][0] == sha(second.read_bytes())
    assert generated(activity) == {"a.txt": sha(b"changed\n"), "b.txt": sha(b"b\n")}


def test_a_fatal_or_refused_upload_records_nothing(world: World) -> None:
    view = world.upload(write_tar_gz(world.tmp / "ok.tar.gz", {"main.tex": TEX}))
    assert len(world.uploads()) == 1
    broken = world.tmp / "broken.tar"
    broken.write_bytes(b"not a tar archive at all\n")
    after = world.upload(broken, view.workspace.id)  # fatal: "not a tar file"
    assert after.workspace.checksum == view.workspace.checksum
    # Refused at the merge: a file where the workspace has a folder (and the reverse).
    clash = write_tar_gz(world.tmp / "clash.tar.gz", {"main.tex/inner.txt": b"x\n"})
    refused = world.upload(clash, view.workspace.id)
    assert refused.workspace.checksum == view.workspace.checksum
    assert any(f.level == "fatal" for f in refused.findings)
    assert len(world.uploads()) == 1


def test_lineage_from_a_workspace_file_reaches_the_upload_and_the_run_that_made_it(
    world: World,
) -> None:
    figure = b"\x89PNG figure bytes\n"
    archive = write_tar_gz(world.tmp / "paper.tar.gz", {"main.tex": TEX, "fig.png": figure})
    (organisation,) = world.actor.privileges
    with world.uow.transaction() as session:  # a script run, published to the organisation
        draft = provenance.RunDraft(
            script="make_paper.py",
            status="ok",
            used=[CapturedFile(path="fig.png", access="read", sha256=sha(figure), size=14)],
            generated=[
                CapturedFile(
                    path="paper.tar.gz",
                    access="write",
                    sha256=sha(archive.read_bytes()),
                    size=archive.stat().st_size,
                )
            ],
        )
        script = provenance.save_run(session, draft, organisation_id=organisation)
        script_id = script.id
    world.upload(archive)
    (upload,) = world.uploads()
    with world.uow.transaction() as session:
        scope = provenance.scope_for(world.actor)
        found = provenance.trace_runs(session, sha(TEX), direction="upstream", scope=scope)
        assert {v.run.id for v in found.runs} == {upload.run.id, script_id}
        down = provenance.trace_runs(session, script_id, direction="downstream", scope=scope)
        assert upload.run.id in {v.run.id for v in down.runs}
        # Another organisation sees neither the upload nor the lineage.
        other = provenance.scope_for(world.stranger)
        with pytest.raises(provenance.RunNotFound):
            provenance.trace_runs(session, sha(TEX), direction="upstream", scope=other)


def test_ten_thousand_files_are_one_bulk_insert(world: World, engine: Engine) -> None:
    files = {f"d{i % 50}/f{i:05d}.txt": f"{i}\n".encode() for i in range(10_000)}
    archive = write_tar_gz(world.tmp / "many.tar.gz", files)
    statements: list[tuple[str, bool]] = []

    def seen(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if "prov_file_versions" in sql and sql.lstrip().upper().startswith("INSERT"):
            statements.append((sql, many))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        world.upload(archive)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    (activity,) = world.uploads()
    assert len(generated(activity)) == 10_000
    # One INSERT ... RETURNING for every row; SQLAlchemy sends it in pages of 1,000 rows
    # ("insertmanyvalues"), so 11 versions (10,000 files and the archive) take 11 pages at most.
    assert 1 <= len(statements) <= 11
    assert all(sql.count("VALUES") == 1 for sql, _ in statements)


def test_the_http_upload_names_the_bytes_it_received(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    data = tar_gz({"main.tex": TEX})
    answer = client.post(
        "/api/v1/workspaces/upload",
        headers=member.headers,
        files={"file": ("paper.tar.gz", data)},
    )
    assert answer.status_code == 201, answer.text
    runs = client.get("/api/v1/runs", headers=member.headers, params={"script": "upload of"}).json()
    assert runs["total"] == 1
    run = client.get(f"/api/v1/runs/{runs['items'][0]['run_id']}", headers=member.headers).json()
    assert run["kind"] == "workspace.upload"
    assert [(f["sha256"], f["path"]) for f in run["used"]] == [(sha(data), "paper.tar.gz")]
    assert [f["sha256"] for f in run["generated"]] == [sha(TEX)]
