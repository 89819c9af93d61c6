"""Resumable (tus) uploads in the workspace service, on both databases: two PATCHes racing on
one upload, a body cut short, bytes a killed writer left past the durable offset, and gc of
expired uploads."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from cairn.accounts import service as accounts
from cairn.accounts.service import Actor
from cairn.blobs import BlobStore, open_blob_store
from cairn.db import UnitOfWork, make_sessionmaker, utcnow
from cairn.errors import Conflict, NotFound
from cairn.workspaces import resumable as tus
from cairn.workspaces import service
from cairn.workspaces.models import WorkspaceUpload
from tests.concurrency import race
from tests.conftest import _wipe
from tests.factories import make_org, make_user

NAME = "filename ZGF0YS5iaW4="  # data.bin


@dataclass
class World:
    uow: UnitOfWork
    blobs: BlobStore
    resumable: tus.Resumable
    actor: Actor
    workspace_id: int

    def start(self, length: int) -> str:
        state = tus.create_upload(
            self.uow,
            self.blobs,
            self.actor,
            self.workspace_id,
            length=length,
            metadata=NAME,
            resumable=self.resumable,
        )
        return state.id

    def append(self, upload_id: str, offset: int, body: object) -> tus.ResumableUpload:
        return tus.append_upload(
            self.uow,
            self.blobs,
            self.actor,
            self.workspace_id,
            upload_id,
            offset=offset,
            body=body,  # type: ignore[arg-type]
            resumable=self.resumable,
        )

    def offset(self, upload_id: str) -> int:
        with self.uow.transaction() as session:
            state = tus.upload_status(session, self.actor, self.workspace_id, upload_id)
            return state.offset

    def files(self) -> dict[str, int]:
        with self.uow.transaction() as session:
            view = service.view_workspace(session, self.actor, self.workspace_id)
            return {f.public_path: f.size for f in view.files}


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    uow = UnitOfWork(make_sessionmaker(engine))
    with uow.transaction() as session:
        org, user = make_org(session), make_user(session)
        accounts.add_member(session, user=user, organisation=org, privilege="manage")
        actor = accounts.authenticate_user(session, user)
        workspace_id = service.create_workspace(session, actor).workspace.id
    blobs = open_blob_store(tmp_path / "blobs")
    resumable = tus.Resumable(
        folder=tus.partial_folder(blobs, tmp_path),
        work_dir=tmp_path / "work",
        expiry=timedelta(hours=1),
        max_upload_bytes=1024**3,
    )
    try:
        yield World(uow, blobs, resumable, actor, workspace_id)
    finally:
        _wipe(engine)


def test_two_patches_racing_on_one_upload_write_it_once(world: World) -> None:
    """The first PATCH holds the upload while its body streams; a second one at the same
    offset is refused (409) and writes nothing, and once the first is done its offset is
    stale (409 again). The upload then holds the first PATCH's bytes exactly."""
    upload_id = world.start(10)
    streaming, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def slow_body() -> Iterator[bytes]:
        yield b"AAAAA"
        streaming.set()
        assert release.wait(30)
        yield b"BBB"

    def first() -> None:
        try:
            outcome["first"] = world.append(upload_id, 0, slow_body())
        except Exception as exc:  # reported by the assertion below
            outcome["first"] = exc

    thread = threading.Thread(target=first)
    thread.start()
    assert streaming.wait(30)
    with pytest.raises(Conflict, match="Another request"):
        world.append(upload_id, 0, [b"CCCCCCCC"])
    release.set()
    thread.join(30)
    assert isinstance(outcome["first"], tus.ResumableUpload), outcome
    assert outcome["first"].offset == 8
    with pytest.raises(Conflict, match="not the upload's offset 8"):
        world.append(upload_id, 0, [b"CCCCCCCC"])
    assert world.offset(upload_id) == 8
    assert (world.resumable.folder / upload_id).read_bytes() == b"AAAAABBB"
    world.append(upload_id, 8, [b"CC"])
    assert world.files() == {"data.bin": 10}


def test_two_patches_started_together_leave_one_winner(world: World) -> None:
    """No staging by events: both start at once; exactly one is applied, whatever the timing."""
    upload_id = world.start(6)
    start = threading.Barrier(2)
    results: list[object] = []

    def run(data: bytes) -> None:
        start.wait()
        try:
            results.append(world.append(upload_id, 0, [data]))
        except Conflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in (b"111", b"222")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    won = [r for r in results if isinstance(r, tus.ResumableUpload)]
    assert len(won) == 1 and len(results) == 2, results
    assert world.offset(upload_id) == 3
    assert (world.resumable.folder / upload_id).read_bytes() in (b"111", b"222")


def test_a_body_cut_short_keeps_its_durable_bytes(world: World) -> None:
    upload_id = world.start(10)

    def cut() -> Iterator[bytes]:
        yield b"12345"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        world.append(upload_id, 0, cut())
    assert world.offset(upload_id) == 5
    world.append(upload_id, 5, [b"67890"])
    assert world.files() == {"data.bin": 10}


def test_bytes_past_the_durable_offset_are_cut_off_on_resume(world: World) -> None:
    """What a writer killed before it raised the offset left behind is not part of the upload."""
    upload_id = world.start(6)
    world.append(upload_id, 0, [b"abc"])
    with open(world.resumable.folder / upload_id, "ab") as partial:
        partial.write(b"GARBAGE")
    assert world.offset(upload_id) == 3
    world.append(upload_id, 3, [b"def"])
    with world.uow.transaction() as session:
        view = service.view_workspace(session, world.actor, world.workspace_id)
        (stored,) = view.files
    assert world.blobs.read_bytes(stored.sha256) == b"abcdef"


def test_gc_removes_expired_uploads_and_orphan_files_only(world: World) -> None:
    expired, live, busy = world.start(10), world.start(10), world.start(10)
    world.append(expired, 0, [b"12345"])
    with world.uow.transaction() as session:
        session.execute(
            update(WorkspaceUpload)
            .where(WorkspaceUpload.id.in_([expired, busy]))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    folder = world.resumable.folder
    orphan, fresh_orphan = folder / "0rphan", folder / "fresh"
    orphan.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    fresh_orphan.write_bytes(b"y")
    held = os.open(folder / busy, os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # being written right now: gc leaves it
    try:
        with world.uow.transaction() as session:
            dry = tus.purge_expired_uploads(
                session, folder, older_than=timedelta(hours=1), dry_run=True
            )
        assert sorted(dry) == sorted([expired, "0rphan"])
        assert (folder / expired).exists() and orphan.exists()
        with world.uow.transaction() as session:
            removed = tus.purge_expired_uploads(session, folder, older_than=timedelta(hours=1))
    finally:
        os.close(held)
    assert sorted(removed) == sorted([expired, "0rphan"])
    assert sorted(p.name for p in folder.iterdir()) == sorted([live, busy, "fresh"])
    with world.uow.transaction() as session:
        ids = set(session.scalars(select(WorkspaceUpload.id)))
    assert ids == {live, busy}
    with pytest.raises(NotFound):
        world.offset(expired)


def test_unfinished_uploads_per_workspace_are_capped(world: World) -> None:
    """Each unfinished upload holds a partial file: at most MAX_UNFINISHED at once, counted
    under the workspace's lock, so creations racing for the last places cannot pass it."""
    started = [world.start(10) for _ in range(tus.MAX_UNFINISHED - 2)]
    made: list[str] = []
    errors = race(*[lambda: made.append(world.start(10)) for _ in range(4)])
    assert len(made) == 2 and len(errors) == 2
    assert all(isinstance(e, Conflict) and "unfinished" in str(e) for e in errors)
    with world.uow.transaction() as session:  # an expired one no longer counts
        session.execute(
            update(WorkspaceUpload)
            .where(WorkspaceUpload.id == started[0])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    world.append(world.start(3), 0, [b"abc"])  # so one more can start, and finish
    assert world.files() == {"data.bin": 3}
