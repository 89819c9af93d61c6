"""Workspace checkpoints on both databases: save, list, download, restore, delete; the limit of
ten; blobs shared, not copied; and the races (two saves, a restore against an upload)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from cairn.accounts import service as accounts
from cairn.accounts.service import Actor
from cairn.blobs import BlobStore, open_blob_store
from cairn.blobs.check import collect_garbage
from cairn.db import UnitOfWork, make_sessionmaker, referenced_blobs
from cairn.errors import BadRequest, Conflict, Forbidden, NotFound
from cairn.workspaces import service
from cairn.workspaces.models import WorkspaceCheckpoint, WorkspaceCheckpointFile
from tests.archives import write_tar_gz
from tests.concurrency import race
from tests.conftest import _wipe
from tests.factories import make_org, make_user

TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"


@dataclass
class World:
    uow: UnitOfWork
    blobs: BlobStore
    work_dir: Path
    tmp: Path
    actor: Actor
    stranger: Actor

    def upload(self, files: dict[str, bytes], workspace_id: int | None = None) -> int:
        archive = write_tar_gz(self.tmp / f"up{len(list(self.tmp.iterdir()))}.tar.gz", files)
        view = service.upload(
            self.uow,
            self.blobs,
            self.actor,
            service.uploaded_file(archive),
            work_dir=self.work_dir,
            workspace_id=workspace_id,
        )
        assert view.workspace.upload_status != "ERRORS", view.findings
        return view.workspace.id

    def call(self, fn: Callable[..., object], *args: object, actor: Actor | None = None) -> object:
        with self.uow.transaction() as session:
            return fn(session, actor or self.actor, *args)

    def save(self, wid: int) -> service.SavedCheckpoint:
        saved = self.call(service.save_checkpoint, wid)
        assert isinstance(saved, service.SavedCheckpoint)
        return saved

    def files(self, wid: int) -> dict[str, str]:
        with self.uow.transaction() as session:
            view = service.view_workspace(session, self.actor, wid)
            return {f.public_path: f.sha256 for f in view.files}

    def summary(self, wid: int) -> service.WorkspaceView:
        with self.uow.transaction() as session:
            view = service.view_workspace(session, self.actor, wid)
            session.expunge_all()
            return view

    def log(self, wid: int) -> list[str]:
        with self.uow.transaction() as session:
            return [e.message for e in service.read_log(session, self.actor, wid)]


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    uow = UnitOfWork(make_sessionmaker(engine))
    with uow.transaction() as session:
        actors = []
        for _ in range(2):
            org, user = make_org(session), make_user(session)
            accounts.add_member(session, user=user, organisation=org, privilege="manage")
            actors.append(accounts.authenticate_user(session, user))
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    try:
        yield World(uow, open_blob_store(tmp_path / "blobs"), tmp_path / "work", uploads, *actors)
    finally:
        _wipe(engine)


def test_save_list_and_restore_gives_exactly_the_saved_files(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "fig/a.txt": b"a\n"})
    saved_files, saved_checksum = world.files(wid), world.summary(wid).workspace.checksum
    saved = world.save(wid)
    assert saved.created and saved.checkpoint.checksum == saved_checksum
    assert (saved.checkpoint.file_count, saved.checkpoint.created_by) == (2, world.actor.id)
    world.upload({"fig/a.txt": b"changed\n", "extra.txt": b"new\n"}, wid)
    with world.uow.transaction() as session:
        service.delete_file(session, world.actor, wid, "main.tex")
    assert world.files(wid) != saved_files
    view = world.call(service.restore_checkpoint, wid, saved.checkpoint.id)
    assert isinstance(view, service.WorkspaceView)
    assert world.files(wid) == saved_files
    after = world.summary(wid).workspace
    assert after.checksum == saved_checksum and after.file_count == 2
    assert f"restored checkpoint {saved_checksum} (2 files; 2 replaced)" in world.log(wid)
    with world.uow.transaction() as session:
        listed = service.list_checkpoints(session, world.actor, wid)
        assert [c.checksum for c in listed] == [saved_checksum]
        # arXiv names a checkpoint by its checksum; cairn's id works as well.
        by_sum = service.find_checkpoint(session, world.actor, wid, saved_checksum)
        assert by_sum.id == saved.checkpoint.id


def test_saving_the_same_content_twice_keeps_one_checkpoint(world: World) -> None:
    wid = world.upload({"main.tex": TEX})
    first, second = world.save(wid), world.save(wid)
    assert first.created and not second.created
    assert second.checkpoint.id == first.checkpoint.id
    with world.uow.transaction() as session:
        assert len(service.list_checkpoints(session, world.actor, wid)) == 1


def test_checkpoints_share_blobs_and_gc_keeps_them(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "data.bin": b"\x00\x01" * 500})
    stored = set(world.blobs.iter_hashes())
    checkpoint = world.save(wid).checkpoint
    assert set(world.blobs.iter_hashes()) == stored  # no byte written for a checkpoint
    saved = world.files(wid)
    with world.uow.transaction() as session:
        service.delete_all_files(session, world.actor, wid)
    with world.uow.transaction() as session:
        rows = session.execute(select(WorkspaceCheckpointFile.sha256)).scalars().all()
        assert sorted(rows) == sorted(saved.values())
        referenced = referenced_blobs(session)
    # Only the checkpoint refers to these blobs now: a gc with no grace period keeps them.
    report = collect_garbage(world.blobs, referenced, grace=timedelta(0))
    assert not set(saved.values()) & set(report.deleted)
    world.call(service.restore_checkpoint, wid, checkpoint.id)
    for path, sha256 in world.files(wid).items():
        assert world.blobs.read_bytes(sha256) == {"main.tex": TEX}.get(path, b"\x00\x01" * 500)


def test_an_empty_workspace_has_nothing_to_save(world: World) -> None:
    with world.uow.transaction() as session:
        wid = service.create_workspace(session, world.actor).workspace.id
    with pytest.raises(BadRequest, match="workspace is empty"):
        world.save(wid)


def test_an_eleventh_checkpoint_is_a_conflict(world: World) -> None:
    wid = world.upload({"main.tex": TEX})
    for n in range(service.MAX_CHECKPOINTS):
        world.upload({"n.txt": b"%d\n" % n}, wid)
        assert world.save(wid).created
    world.upload({"n.txt": b"eleven\n"}, wid)
    with pytest.raises(service.CheckpointLimit, match="keeps 10 checkpoints") as refused:
        world.save(wid)
    assert isinstance(refused.value, Conflict)
    with world.uow.transaction() as session:
        listed = service.list_checkpoints(session, world.actor, wid)
        assert len(listed) == 10
        # Content already saved is no new checkpoint, so it is not refused.
        service.restore_checkpoint(session, world.actor, wid, listed[-1].id)
    assert not world.save(wid).created


def test_a_locked_or_released_workspace_refuses_restore(world: World) -> None:
    wid = world.upload({"main.tex": TEX})
    checkpoint = world.save(wid).checkpoint.id
    world.upload({"b.txt": b"b\n"}, wid)
    for action, undo in [("lock", "unlock"), ("release", "unrelease")]:
        world.call(service.change_state, wid, action)
        with pytest.raises(Forbidden):
            world.call(service.restore_checkpoint, wid, checkpoint)
        assert set(world.files(wid)) == {"main.tex", "b.txt"}
        world.save(wid)  # saving changes no file: allowed (and the second is the first)
        world.call(service.change_state, wid, undo)
    with world.uow.transaction() as session:
        assert len(service.list_checkpoints(session, world.actor, wid)) == 2
    world.call(service.restore_checkpoint, wid, checkpoint)
    assert set(world.files(wid)) == {"main.tex"}


def test_delete_one_and_all(world: World) -> None:
    wid = world.upload({"main.tex": TEX})
    first = world.save(wid).checkpoint
    world.upload({"b.txt": b"b\n"}, wid)
    second = world.save(wid).checkpoint
    world.call(service.delete_checkpoint, wid, first.checksum)
    with pytest.raises(NotFound, match="checkpoint not found"):
        world.call(service.delete_checkpoint, wid, first.id)
    with pytest.raises(NotFound, match="checkpoint not found"):
        world.call(service.restore_checkpoint, wid, first.id)
    world.upload({"c.txt": b"c\n"}, wid)
    world.save(wid)
    view_count = world.call(service.delete_all_checkpoints, wid)
    assert isinstance(view_count, tuple) and view_count[1] == 2
    with world.uow.transaction() as session:
        assert service.list_checkpoints(session, world.actor, wid) == []
        assert session.scalar(select(func.count()).select_from(WorkspaceCheckpointFile)) == 0
    assert set(world.files(wid)) == {"main.tex", "b.txt", "c.txt"}  # files untouched
    assert f"deleted checkpoint {first.checksum}" in world.log(wid)
    assert "deleted all checkpoints (2)" in world.log(wid)
    assert second.checksum  # it was among the two


def test_deleting_the_workspace_removes_its_checkpoints(world: World) -> None:
    wid = world.upload({"main.tex": TEX})
    world.save(wid)
    world.call(service.delete_workspace, wid)
    with world.uow.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WorkspaceCheckpoint)) == 0
    with pytest.raises(NotFound):
        world.save(wid)


def test_another_organisation_sees_no_checkpoint(world: World) -> None:
    wid = world.upload({"main.tex": TEX})
    checkpoint = world.save(wid).checkpoint
    for fn, args in [
        (service.save_checkpoint, ()),
        (service.list_checkpoints, ()),
        (service.find_checkpoint, (checkpoint.id,)),
        (service.restore_checkpoint, (checkpoint.id,)),
        (service.delete_checkpoint, (checkpoint.checksum,)),
        (service.delete_all_checkpoints, ()),
    ]:
        with pytest.raises(NotFound):
            world.call(fn, wid, *args, actor=world.stranger)
    with pytest.raises(NotFound):
        service.checkpoint_package(
            world.uow, world.blobs, world.stranger, wid, checkpoint.id, work_dir=world.work_dir
        )
    # A checkpoint of another workspace is not found through this one either.
    other = world.upload({"other.tex": TEX})
    with pytest.raises(NotFound):
        world.call(service.restore_checkpoint, other, checkpoint.id)


def test_a_checkpoints_package_is_the_workspace_package_of_that_content(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "fig/a.txt": b"a\n"})
    checkpoint = world.save(wid).checkpoint
    workspace_package = service.get_package(
        world.uow, world.blobs, world.actor, wid, work_dir=world.work_dir
    )
    world.upload({"later.txt": b"later\n"}, wid)

    def package(**options: object) -> service.Package:
        return service.checkpoint_package(
            world.uow,
            world.blobs,
            world.actor,
            wid,
            checkpoint.checksum,
            work_dir=world.work_dir,
            **options,  # type: ignore[arg-type]
        )

    assert package(build=False).sha256 is None  # a HEAD builds nothing
    built = package()
    assert built.sha256 == workspace_package.sha256 and built.checksum == checkpoint.checksum
    with tarfile.open(
        fileobj=io.BytesIO(world.blobs.read_bytes(built.sha256 or "")), mode="r:gz"
    ) as tar:
        assert sorted(tar.getnames()) == ["fig/a.txt", "main.tex"]
    assert package(build=False).size == built.size  # cached now
    assert package(client_has=lambda etag: etag == checkpoint.checksum).not_modified


def test_restore_reuses_the_checkpoints_built_package(world: World) -> None:
    wid = world.upload({"main.tex": TEX})
    checkpoint = world.save(wid).checkpoint
    built = service.checkpoint_package(
        world.uow, world.blobs, world.actor, wid, checkpoint.id, work_dir=world.work_dir
    )
    world.upload({"b.txt": b"b\n"}, wid)
    world.call(service.restore_checkpoint, wid, checkpoint.id)
    workspace = world.summary(wid).workspace
    assert (workspace.package_sha256, workspace.package_checksum) == (
        built.sha256,
        checkpoint.checksum,
    )


def test_two_saves_racing_keep_one_checkpoint(world: World) -> None:
    wid = world.upload({"main.tex": TEX})
    results: list[service.SavedCheckpoint] = []
    errors = race(lambda: results.append(world.save(wid)), lambda: results.append(world.save(wid)))
    assert not errors
    assert sorted(r.created for r in results) == [False, True]
    assert len({r.checkpoint.id for r in results}) == 1
    with world.uow.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WorkspaceCheckpoint)) == 1


def test_saves_racing_at_the_limit_never_pass_it(world: World) -> None:
    """Nine checkpoints; a save races an upload-then-save, so two different contents compete
    for the tenth place: exactly one may take it, whatever the order."""
    wid = world.upload({"main.tex": TEX})
    for n in range(service.MAX_CHECKPOINTS - 1):
        world.upload({"n.txt": b"%d\n" % n}, wid)
        world.save(wid)
    world.upload({"n.txt": b"tenth\n"}, wid)

    def upload_then_save() -> None:
        world.upload({"n.txt": b"eleventh\n"}, wid)
        world.save(wid)

    errors = race(lambda: world.save(wid), upload_then_save)
    with world.uow.transaction() as session:
        count = session.scalar(select(func.count()).select_from(WorkspaceCheckpoint))
    assert count == service.MAX_CHECKPOINTS
    assert all(isinstance(e, service.CheckpointLimit) for e in errors), errors
    assert len(errors) <= 1


def test_a_restore_racing_an_upload_is_one_or_the_other_never_a_mix(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "a.txt": b"a\n"})
    checkpoint = world.save(wid).checkpoint
    saved = world.files(wid)
    world.upload({"b.txt": b"b\n"}, wid)
    late = {f"late/{n}.txt": b"%d\n" % n for n in range(30)}
    errors = race(
        lambda: world.call(service.restore_checkpoint, wid, checkpoint.id),
        lambda: world.upload(late, wid),
    )
    assert not errors
    final = world.files(wid)
    restored_last = final == saved
    upload_last = set(final) == set(saved) | set(late)
    assert restored_last or upload_last, sorted(final)
    workspace = world.summary(wid).workspace
    assert workspace.file_count == len(final)
    with world.uow.transaction() as session:
        assert workspace.checksum == service.manifest_checksum(service.list_files(session, wid))
    if restored_last:
        assert workspace.checksum == checkpoint.checksum
