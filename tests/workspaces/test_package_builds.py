"""Background package builds on both databases: ``refresh_package`` records a package only for
the content it built, and ``PackageBuilder`` coalesces builds per workspace. Every wait is on
a build's completion or on an event the build sets, never on a guessed delay."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from cairn.accounts import service as accounts
from cairn.accounts.service import Actor
from cairn.blobs import BlobStore, open_blob_store
from cairn.db import UnitOfWork, make_sessionmaker
from cairn.workspaces import _builds, service
from tests.archives import write_tar_gz
from tests.conftest import _wipe
from tests.factories import make_org, make_user

TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"


class World:
    def __init__(self, uow: UnitOfWork, blobs: BlobStore, tmp: Path, actor: Actor) -> None:
        self.uow, self.blobs, self.tmp, self.actor = uow, blobs, tmp, actor
        self.work_dir = tmp / "work"

    def upload(self, files: dict[str, bytes]) -> int:
        archive = write_tar_gz(self.tmp / "up.tar.gz", files)
        view = service.upload(
            self.uow,
            self.blobs,
            self.actor,
            service.uploaded_file(archive),
            work_dir=self.work_dir,
        )
        return view.workspace.id

    def refresh(self, wid: int) -> int | None:
        return service.refresh_package(self.uow, self.blobs, wid, work_dir=self.work_dir)

    def workspace(self, wid: int) -> Any:
        with self.uow.transaction() as session:
            workspace = service.view_workspace(session, self.actor, wid).workspace
            session.expunge(workspace)
            return workspace

    def built_lines(self, wid: int) -> list[str]:
        with self.uow.transaction() as session:
            return [
                e.message
                for e in service.read_log(session, self.actor, wid)
                if e.message.startswith("package built")
            ]


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    uow = UnitOfWork(make_sessionmaker(engine))
    with uow.transaction() as session:
        org, user = make_org(session), make_user(session)
        accounts.add_member(session, user=user, organisation=org, privilege="manage")
        actor = accounts.authenticate_user(session, user)
    try:
        yield World(uow, open_blob_store(tmp_path / "blobs"), tmp_path, actor)
    finally:
        _wipe(engine)


def test_refresh_builds_once_and_the_download_reuses_it(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "a.txt": b"a\n"})
    assert world.workspace(wid).package_size is None
    size = world.refresh(wid)
    workspace = world.workspace(wid)
    assert size is not None and workspace.package_size == size
    assert workspace.package_checksum == workspace.checksum
    assert world.refresh(wid) == size  # cached: nothing built again
    assert world.built_lines(wid) == [f"package built ({size} bytes)"]
    package = service.get_package(world.uow, world.blobs, world.actor, wid, work_dir=world.work_dir)
    assert (package.sha256, package.size) == (workspace.package_sha256, size)
    assert world.built_lines(wid) == [f"package built ({size} bytes)"]


def test_a_build_overtaken_by_a_change_records_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    wid = world.upload({"main.tex": TEX, "a.txt": b"a\n"})
    real = _builds.build_package

    def change_then_build(*args: Any, **kwargs: Any) -> tuple[str, int]:
        with world.uow.transaction() as session:  # another request commits meanwhile
            service.delete_file(session, world.actor, wid, "a.txt")
        return real(*args, **kwargs)

    monkeypatch.setattr(_builds, "build_package", change_then_build)
    assert world.refresh(wid) is None
    workspace = world.workspace(wid)
    assert workspace.package_sha256 is None and world.built_lines(wid) == []
    monkeypatch.setattr(_builds, "build_package", real)
    assert world.refresh(wid) is not None  # the build the change queued records its own
    workspace = world.workspace(wid)
    assert workspace.package_checksum == workspace.checksum


def test_a_download_during_a_background_build_is_recorded_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background build read the workspace, then a download built and stored the same
    package before the build finished: one 'package built' line, one provenance run."""
    from cairn.provenance.models import Run

    wid = world.upload({"main.tex": TEX, "a.txt": b"a\n"})
    real = _builds.build_package

    def download_then_build(*args: Any, **kwargs: Any) -> tuple[str, int]:
        service.get_package(world.uow, world.blobs, world.actor, wid, work_dir=world.work_dir)
        return real(*args, **kwargs)

    monkeypatch.setattr(_builds, "build_package", download_then_build)
    size = world.refresh(wid)
    assert size == world.workspace(wid).package_size
    assert len(world.built_lines(wid)) == 1
    with world.uow.transaction() as session:
        kinds = [run.kind for run in session.query(Run).all()]
    assert kinds.count("workspace.package") == 1


def test_nothing_is_built_for_an_empty_or_deleted_workspace(world: World) -> None:
    with world.uow.transaction() as session:
        empty = service.create_workspace(session, world.actor).workspace.id
    assert world.refresh(empty) is None
    wid = world.upload({"main.tex": TEX})
    with world.uow.transaction() as session:
        service.delete_workspace(session, world.actor, wid)
    assert world.refresh(wid) is None
    assert world.workspace(wid).package_sha256 is None


class Gate:
    """A build that tells when it has started and waits to be let through."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.go = threading.Event()
        self.calls: list[int] = []

    def __call__(self, workspace_id: int) -> None:
        self.calls.append(workspace_id)
        self.started.set()
        assert self.go.wait(timeout=60), "the test never let the build through"


def test_builder_coalesces_queued_builds_and_waits_on_completion() -> None:
    gate = Gate()
    builder = service.PackageBuilder(gate)
    try:
        running = builder.submit(1)
        assert gate.started.wait(timeout=60)
        assert builder.building(1) and not builder.building(2)
        queued = builder.submit(1)  # the running build may have read older content
        assert queued is not running
        assert builder.submit(1) is queued  # a queued build reads the newest when it starts
        other = builder.submit(2)
        gate.go.set()
        builder.wait(1)
        assert running.done() and queued.done()
        builder.wait_idle()
        assert other.done() and not builder.building(1) and not builder.building(2)
        assert sorted(gate.calls) == [1, 1, 2]
    finally:
        gate.go.set()
        builder.close()


def test_a_failing_build_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(workspace_id: int) -> None:
        raise OSError("disk full")

    builder = service.PackageBuilder(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="cairn.workspaces._builds"):
            builder.submit(7).result(timeout=60)
        assert "background package build of workspace 7 failed" in caplog.text
        assert not builder.building(7)
    finally:
        builder.close()
