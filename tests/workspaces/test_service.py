"""The workspace service on both databases: uploads, state changes, deletion, the package, and
the races between them (an upload overtaken by a delete, lock or release is never applied)."""

from __future__ import annotations

import io
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from cairn.accounts import service as accounts
from cairn.accounts.service import Actor
from cairn.blobs import BlobStore, open_blob_store
from cairn.db import UnitOfWork, make_sessionmaker
from cairn.errors import BadRequest, Forbidden, Invalid, NotFound
from cairn.workspaces import service
from cairn.workspaces.models import Workspace, WorkspaceFile
from cairn.workspaces.service import Receive, UploadRequest
from tests.archives import write_tar_gz
from tests.conftest import _wipe
from tests.factories import make_org, make_user

TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"


@dataclass
class World:
    uow: UnitOfWork
    blobs: BlobStore
    work_dir: Path
    actor: Actor
    stranger: Actor

    def upload(self, receive: Receive, workspace_id: int | None = None) -> service.WorkspaceView:
        return service.upload(
            self.uow,
            self.blobs,
            self.actor,
            receive,
            work_dir=self.work_dir,
            workspace_id=workspace_id,
        )

    def package(self, workspace_id: int, **options: object) -> service.Package:
        return service.get_package(
            self.uow,
            self.blobs,
            self.actor,
            workspace_id,
            work_dir=self.work_dir,
            **options,  # type: ignore[arg-type]
        )

    def count(self, model: type[Workspace] | type[WorkspaceFile]) -> int:
        with self.uow.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


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
        yield World(uow, open_blob_store(tmp_path / "blobs"), tmp_path / "work", *actors)
    finally:
        _wipe(engine)


def a_file(
    tmp_path: Path, name: str = "main.tex", data: bytes = TEX, archive: str | None = None
) -> Receive:
    path = tmp_path / name
    path.write_bytes(data)
    return service.uploaded_file(path, archive=archive)


def test_upload_creates_then_adds_and_replaces(world: World, tmp_path: Path) -> None:
    archive = write_tar_gz(tmp_path / "p.tar.gz", {"main.tex": TEX, "fig/a.txt": b"a\n"})
    view = world.upload(service.uploaded_file(archive))
    workspace = view.workspace
    assert {f.public_path for f in view.files} == {"main.tex", "fig/a.txt"}
    assert workspace.owner_id == world.actor.id and workspace.state == service.ACTIVE
    first_checksum = workspace.checksum
    again = world.upload(a_file(tmp_path, "a.txt", b"changed\n"), workspace.id)
    assert len(again.files) == 3 and again.workspace.checksum != first_checksum
    replaced = world.upload(a_file(tmp_path, "a.txt", b"changed again\n"), workspace.id)
    assert len(replaced.files) == 3
    assert any(f.message == "replaced existing file" for f in replaced.findings)
    assert archive.exists()  # uploaded_file leaves the caller's file alone


def test_new_rows_go_in_path_order_and_the_summary_can_skip_them(
    world: World, tmp_path: Path
) -> None:
    """Rows are inserted in the order of the path index and of every read (issue #13 §8: a
    50,000-file upload's reads then scan the table in order); the native summary reads none."""
    names = [f"d{i % 7}/f{i:03d}.txt" for i in range(60)]  # archive order is not path order
    archive = write_tar_gz(tmp_path / "p.tar.gz", {n: n.encode() for n in names})
    wid = world.upload(service.uploaded_file(archive)).workspace.id
    with world.uow.transaction() as session:
        rows = session.execute(
            select(WorkspaceFile.public_path).order_by(WorkspaceFile.id)
        ).scalars()
        assert list(rows) == sorted(names)
        brief = service.view_workspace(session, world.actor, wid, files=False)
        assert brief.files == [] and brief.workspace.file_count == 60
        assert len(service.view_workspace(session, world.actor, wid).files) == 60


def test_unknown_archive_and_empty_file_create_nothing(world: World, tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match=r"Known: .*math"):
        world.upload(a_file(tmp_path, archive="no-such-archive"))
    with pytest.raises(Invalid, match="zero length"):
        world.upload(a_file(tmp_path, "empty.txt", b""))
    assert world.count(Workspace) == 0


def test_a_failed_creating_upload_leaves_no_workspace(world: World, tmp_path: Path) -> None:
    @contextmanager
    def crashing() -> Iterator[UploadRequest]:
        raise OSError("the client went away")
        yield  # pragma: no cover

    with pytest.raises(OSError):
        world.upload(crashing)
    assert world.count(Workspace) == 0


def test_a_fatal_upload_changes_no_file(world: World, tmp_path: Path) -> None:
    view = world.upload(a_file(tmp_path))
    wid, checksum = view.workspace.id, view.workspace.checksum
    after = world.upload(a_file(tmp_path, "broken.tar.gz", b"\x1f\x8b\x08\x00garbage" * 10), wid)
    assert after.workspace.upload_status == "ERRORS"
    assert any(f.level == "fatal" for f in after.findings)
    assert {f.public_path for f in after.files} == {"main.tex"}
    assert after.workspace.checksum == checksum


def test_state_changes_refuse_uploads_and_are_idempotent(world: World, tmp_path: Path) -> None:
    wid = world.upload(a_file(tmp_path)).workspace.id
    for action, blocked in [("lock", True), ("lock", True), ("unlock", False)]:
        with world.uow.transaction() as session:
            view, done = service.change_state(session, world.actor, wid, action)  # type: ignore[arg-type]
        assert done.endswith("workspace")
        if blocked:
            with pytest.raises(Forbidden, match="locked"):
                world.upload(a_file(tmp_path, "b.txt", b"b\n"), wid)
    with world.uow.transaction() as session:
        view, _ = service.change_state(session, world.actor, wid, "release")
    assert view.workspace.state == service.RELEASED
    with pytest.raises(Forbidden, match="not active"):
        world.upload(a_file(tmp_path, "b.txt", b"b\n"), wid)
    with world.uow.transaction() as session:
        view, _ = service.change_state(session, world.actor, wid, "unrelease")
    assert world.upload(a_file(tmp_path, "b.txt", b"b\n"), wid).workspace.file_count == 2


def test_delete_file_all_and_workspace(world: World, tmp_path: Path) -> None:
    archive = write_tar_gz(
        tmp_path / "p.tar.gz", {"main.tex": TEX, "b.txt": b"b\n", "c.txt": b"c\n"}
    )
    wid = world.upload(service.uploaded_file(archive)).workspace.id
    with world.uow.transaction() as session:
        view = service.delete_file(session, world.actor, wid, "b.txt")
        assert {f.public_path for f in view.files} == {"main.tex", "c.txt"}
        with pytest.raises(NotFound):
            service.delete_file(session, world.actor, wid, "b.txt")
    with world.uow.transaction() as session:
        assert service.delete_all_files(session, world.actor, wid).workspace.file_count == 0
    with world.uow.transaction() as session:
        assert service.delete_workspace(session, world.actor, wid).workspace.state == "DELETED"
    with world.uow.transaction() as session, pytest.raises(NotFound):
        service.delete_workspace(session, world.actor, wid)
    with pytest.raises(NotFound):
        world.upload(a_file(tmp_path), wid)


def test_another_organisation_sees_nothing(world: World, tmp_path: Path) -> None:
    wid = world.upload(a_file(tmp_path)).workspace.id
    with world.uow.transaction() as session:
        for call in (
            lambda: service.view_workspace(session, world.stranger, wid),
            lambda: service.delete_file(session, world.stranger, wid, "main.tex"),
            lambda: service.change_state(session, world.stranger, wid, "lock"),
            lambda: service.file_download(session, world.stranger, wid, "main.tex"),
        ):
            with pytest.raises(NotFound):
                call()
    with pytest.raises(NotFound):
        service.upload(
            world.uow,
            world.blobs,
            world.stranger,
            a_file(tmp_path),
            work_dir=world.work_dir,
            workspace_id=wid,
        )


def test_package_is_cached_until_the_content_changes(world: World, tmp_path: Path) -> None:
    wid = world.upload(a_file(tmp_path)).workspace.id
    head = world.package(wid, build=False)
    assert head.sha256 is None and head.size is None  # HEAD builds nothing
    with world.uow.transaction() as session:
        assert service.view_workspace(session, world.actor, wid).workspace.package_sha256 is None
    built = world.package(wid)
    assert built.sha256 and world.blobs.exists(built.sha256)
    assert world.package(wid, build=False).sha256 == built.sha256  # now HEAD knows the size
    assert world.package(wid, client_has=lambda etag: etag == built.checksum).not_modified
    world.upload(a_file(tmp_path, "more.txt", b"more\n"), wid)
    rebuilt = world.package(wid)
    assert rebuilt.checksum != built.checksum and rebuilt.sha256 != built.sha256
    with world.uow.transaction() as session:
        log = [e.message for e in service.read_log(session, world.actor, wid)]
    assert log.count(f"package built ({built.size} bytes)") == 1
    assert sum(m.startswith("downloaded package") for m in log) == 2


def test_two_package_builds_racing_agree(world: World, tmp_path: Path) -> None:
    archive = write_tar_gz(
        tmp_path / "p.tar.gz", {f"f{n}.txt": b"%d\n" % n * 5000 for n in range(40)}
    )
    wid = world.upload(service.uploaded_file(archive)).workspace.id
    results: list[service.Package] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def build() -> None:
        try:
            start.wait()
            results.append(world.package(wid))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({r.sha256 for r in results}) == 1
    with world.uow.transaction() as session:
        workspace = service.view_workspace(session, world.actor, wid).workspace
    assert workspace.package_sha256 == results[0].sha256


StateChange = Callable[[World, int], None]


def _delete(world: World, wid: int) -> None:
    with world.uow.transaction() as session:
        service.delete_workspace(session, world.actor, wid)


def _state(action: str) -> StateChange:
    def change(world: World, wid: int) -> None:
        with world.uow.transaction() as session:
            service.change_state(session, world.actor, wid, action)  # type: ignore[arg-type]

    return change


@pytest.mark.parametrize(
    ("change", "refusal"),
    [(_delete, NotFound), (_state("lock"), Forbidden), (_state("release"), Forbidden)],
    ids=["delete", "lock", "release"],
)
def test_an_upload_overtaken_by_a_state_change_is_never_applied(
    world: World, tmp_path: Path, change: StateChange, refusal: type[Exception]
) -> None:
    """The upload passes its first check, then the workspace changes while its body is being
    received and unpacked: applying must see the change (once it did not: it read a stale
    copy of the row) and refuse."""
    wid = world.upload(a_file(tmp_path)).workspace.id
    late = tmp_path / "late.txt"
    late.write_bytes(b"late\n")

    @contextmanager
    def slow_receive() -> Iterator[UploadRequest]:
        change(world, wid)  # another request commits while this body is still arriving
        yield UploadRequest(late, "late.txt")

    with pytest.raises(refusal):
        world.upload(slow_receive, wid)
    with world.uow.transaction() as session:
        paths = session.scalars(
            select(WorkspaceFile.public_path).where(WorkspaceFile.workspace_id == wid)
        ).all()
    assert "late.txt" not in paths


def test_one_archive_gives_one_package_in_any_workspace(world: World, tmp_path: Path) -> None:
    """Members keep their archive's modification times (as tar does), so the same archive
    gives the same checksum and byte-identical packages in two workspaces, uploaded apart."""
    archive = tmp_path / "p.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data, mtime in [("main.tex", TEX, 1_600_000_000), ("b.txt", b"b\n", 0)]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
    first = world.upload(service.uploaded_file(archive))
    second = world.upload(service.uploaded_file(archive))
    assert first.workspace.checksum == second.workspace.checksum
    times = {f.public_path: int(f.modified_at.timestamp()) for f in first.files}
    assert times == {"main.tex": 1_600_000_000, "b.txt": 0}
    one, two = world.package(first.workspace.id), world.package(second.workspace.id)
    assert one.sha256 == two.sha256 and one.checksum == two.checksum
    with tarfile.open(
        fileobj=io.BytesIO(world.blobs.read_bytes(one.sha256 or "")), mode="r:gz"
    ) as tar:
        assert {m.name: m.mtime for m in tar.getmembers()} == times


def test_a_lone_file_and_odd_member_times_take_the_upload_time(
    world: World, tmp_path: Path
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    lone = world.upload(a_file(tmp_path))
    assert lone.files[0].modified_at >= before
    zipped = tmp_path / "z.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr(zipfile.ZipInfo("old.txt", date_time=(1999, 12, 31, 23, 59, 58)), b"old\n")
    view = world.upload(service.uploaded_file(zipped))
    assert view.files[0].modified_at == datetime(1999, 12, 31, 23, 59, 58, tzinfo=UTC)
    odd = tmp_path / "odd.tar"
    with tarfile.open(odd, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("negative.txt")
        info.size, info.mtime = 2, -5
        tar.addfile(info, io.BytesIO(b"n\n"))
    negative = world.upload(service.uploaded_file(odd))
    assert negative.files[0].modified_at >= before
