"""The workspace quarantine (issue #13, section 3) on both databases: every rule that removes a
file keeps it (a positive and a negative case each), the owner lists, downloads and restores it
through an upload's checks, a taken name is a conflict, a locked workspace refuses, two restores
racing on one entry restore it once, and the blobs go with the workspace."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from cairn.accounts import service as accounts
from cairn.accounts.service import Actor
from cairn.blobs import BlobStore, open_blob_store
from cairn.blobs.check import collect_garbage
from cairn.db import UnitOfWork, make_sessionmaker, referenced_blobs
from cairn.errors import Forbidden, Invalid, NotFound
from cairn.workspaces import service
from cairn.workspaces._limits import DEFAULT_LIMITS
from cairn.workspaces._unpack import process_upload
from cairn.workspaces.models import WorkspaceRemovedFile
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
    stranger: Actor  # another organisation
    colleague: Actor  # the actor's organisation, execute privilege, not the owner

    def upload_archive(
        self, archive: Path, workspace_id: int | None = None, *, target: str | None = None
    ) -> service.WorkspaceView:
        return service.upload(
            self.uow,
            self.blobs,
            self.actor,
            service.uploaded_file(archive, archive=target if workspace_id is None else None),
            work_dir=self.work_dir,
            workspace_id=workspace_id,
        )

    def upload(
        self, files: dict[str, bytes], workspace_id: int | None = None, *, target: str | None = None
    ) -> int:
        archive = write_tar_gz(self.tmp / f"up{len(list(self.tmp.iterdir()))}.tar.gz", files)
        view = self.upload_archive(archive, workspace_id, target=target)
        return view.workspace.id

    def removed(self, wid: int, actor: Actor | None = None) -> list[WorkspaceRemovedFile]:
        with self.uow.transaction() as session:
            items, total = service.page_removed(session, actor or self.actor, wid)
            assert total == len(items)
            session.expunge_all()
            return list(items)

    def by_path(self, wid: int) -> dict[str, WorkspaceRemovedFile]:
        return {r.public_path: r for r in self.removed(wid)}

    def files(self, wid: int) -> dict[str, bytes]:
        with self.uow.transaction() as session:
            view = service.view_workspace(session, self.actor, wid)
            return {f.public_path: self.blobs.read_bytes(f.sha256) for f in view.files}

    def summary(self, wid: int) -> service.WorkspaceView:
        with self.uow.transaction() as session:
            view = service.view_workspace(session, self.actor, wid)
            session.expunge_all()
            return view

    def restore(
        self, wid: int, entry_id: str, *, actor: Actor | None = None, **options: object
    ) -> service.WorkspaceView:
        return service.restore_removed(
            self.uow,
            self.blobs,
            actor or self.actor,
            wid,
            entry_id,
            work_dir=self.work_dir,
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    uow = UnitOfWork(make_sessionmaker(engine))
    with uow.transaction() as session:
        orgs, actors = [], []
        for _ in range(2):
            org, user = make_org(session), make_user(session)
            accounts.add_member(session, user=user, organisation=org, privilege="manage")
            orgs.append(org)
            actors.append(accounts.authenticate_user(session, user))
        colleague = make_user(session)
        accounts.add_member(session, user=colleague, organisation=orgs[0], privilege="execute")
        actors.append(accounts.authenticate_user(session, colleague))
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    try:
        yield World(uow, open_blob_store(tmp_path / "blobs"), tmp_path / "work", uploads, *actors)
    finally:
        _wipe(engine)


def _tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A tar.gz that may hold one name twice (tar appends)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return path


# --- every rule that removes keeps the file --------------------------------------------------


@pytest.mark.parametrize(
    ("target", "path", "rule"),
    [
        (None, ".env", "hidden"),
        (None, "Thumbs.db", "junk"),
        (None, "__MACOSX/._main.tex", "macosx"),
        ("arxiv", ".env", "RemoveFilesWithLeadingDot"),
        ("arxiv", "__MACOSX/._main.tex", "RemoveMacOSXHiddenFiles"),
        ("arxiv", "missfont.log", "RemoveMissingFontFile"),
        ("arxiv", "main.synctex.gz", "RemoveSyncTeXFiles"),
        ("arxiv", "aa.dem", "RemoveAADemoFile"),
    ],
)
def test_a_file_the_upload_rules_remove_is_kept_with_its_rule(
    world: World, target: str | None, path: str, rule: str
) -> None:
    data = b"removed but kept " + path.encode()
    wid = world.upload({"main.tex": TEX, "notes.txt": b"kept\n", path: data}, target=target)
    assert path not in world.files(wid)
    entries = world.by_path(wid)
    assert set(entries) == {path}, entries  # the kept files are not in the quarantine
    entry = entries[path]
    assert entry.rule == rule and entry.reason
    assert world.blobs.read_bytes(entry.sha256) == data
    assert (entry.size, entry.removed_by) == (len(data), world.actor.id)
    view = world.summary(wid)
    assert (view.removed_count, view.removed_size) == (1, len(data))


def test_an_upload_without_removals_keeps_an_empty_quarantine(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "data/a.csv": b"1,2\n"}, target="arxiv")
    assert world.removed(wid) == []
    assert world.summary(wid).removed_count == 0


def test_a_fatal_upload_keeps_nothing(world: World) -> None:
    wid = world.upload({"main.tex": TEX})
    archive = write_tar_gz(world.tmp / "fatal.tar.gz", {".env": b"x", "../escape.txt": b"y"})
    view = world.upload_archive(archive, wid)
    assert view.workspace.upload_status == "ERRORS"
    assert world.removed(wid) == []


def test_the_earlier_copy_of_a_name_given_twice_is_kept(world: World) -> None:
    archive = _tar(world.tmp / "twice.tar.gz", [("a.txt", b"first\n"), ("a.txt", b"last\n")])
    wid = world.upload_archive(archive).workspace.id
    assert world.files(wid) == {"a.txt": b"last\n"}
    entry = world.by_path(wid)["a.txt"]
    assert entry.rule == "duplicate" and world.blobs.read_bytes(entry.sha256) == b"first\n"


def test_tex_generated_files_are_kept_also_when_the_tex_comes_later(world: World) -> None:
    wid = world.upload({"paper.aux": b"\\relax\n", "other.log": b"log\n"}, target="arxiv")
    assert world.removed(wid) == []  # no paper.tex yet: negative case
    world.upload({"paper.tex": TEX}, wid)
    entries = world.by_path(wid)
    assert set(entries) == {"paper.aux"}
    assert entries["paper.aux"].rule == "RemoveTeXGeneratedFiles"
    assert world.blobs.read_bytes(entries["paper.aux"].sha256) == b"\\relax\n"
    # In one upload: the new file never reaches the workspace, but it is kept.
    world.upload({"paper.log": b"This is pdfTeX\n"}, wid)
    assert "paper.log" in world.by_path(wid)
    assert "paper.log" not in world.files(wid)


def test_a_bib_is_kept_once_its_bbl_arrives(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "main.bib": b"@article{x}\n"}, target="arxiv")
    assert world.removed(wid) == []  # .bib without .bbl stays in the workspace
    world.upload({"main.bbl": b"\\begin{thebibliography}{}\n"}, wid)
    entry = world.by_path(wid)["main.bib"]
    assert entry.rule == "CheckForMissingReferences"
    assert world.blobs.read_bytes(entry.sha256) == b"@article{x}\n"
    assert "main.bib" not in world.files(wid)


def test_the_text_before_a_repair_is_kept(world: World) -> None:
    crlf = TEX.replace(b"\n", b"\r\n")
    big = b"%" + b"x" * 70_000 + b"\r\n" + crlf  # larger than the head: repaired by rename
    wid = world.upload({"main.tex": crlf, "big.tex": big, "lf.tex": TEX}, target="arxiv")
    files, entries = world.files(wid), world.by_path(wid)
    assert files["main.tex"] == TEX
    assert set(entries) == {"main.tex", "big.tex"}  # lf.tex needed no repair
    assert entries["main.tex"].rule == "UnMacify"
    assert world.blobs.read_bytes(entries["main.tex"].sha256) == crlf
    assert world.blobs.read_bytes(entries["big.tex"].sha256) == big
    assert files["big.tex"] == big.replace(b"\r\n", b"\n")


def test_a_file_an_upload_replaces_is_kept_unless_its_bytes_are_the_same(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "a.txt": b"old\n"})
    world.upload({"a.txt": b"new\n", "main.tex": TEX}, wid)
    entries = world.by_path(wid)
    assert set(entries) == {"a.txt"}  # main.tex came back with the same bytes
    assert entries["a.txt"].rule == "replaced"
    assert world.blobs.read_bytes(entries["a.txt"].sha256) == b"old\n"


def test_a_drive_letter_name_that_replaces_a_file_keeps_the_old_one(world: World) -> None:
    wid = world.upload({"windows.txt": b"old\n", "main.tex": TEX})
    archive = _tar(world.tmp / "drive.tar.gz", [("c:\\data\\windows.txt", b"new\n")])
    world.upload_archive(archive, wid)
    assert world.files(wid)["windows.txt"] == b"new\n"
    entry = world.by_path(wid)["windows.txt"]
    assert entry.rule == "replaced" and world.blobs.read_bytes(entry.sha256) == b"old\n"


def test_removed_bytes_count_toward_the_stored_size(world: World) -> None:
    wid = world.upload({"main.tex": TEX, ".secret": b"12345"})
    view = world.summary(wid)
    assert view.workspace.total_size == len(TEX)
    assert (view.removed_count, view.removed_size) == (1, 5)


# --- who may see it ---------------------------------------------------------------------------


def test_only_the_owner_sees_the_quarantine(world: World) -> None:
    wid = world.upload({"main.tex": TEX, ".env": b"TOKEN=1\n"})
    entry = world.removed(wid)[0]
    with world.uow.transaction() as session, pytest.raises(NotFound):
        service.page_removed(session, world.stranger, wid)
    with world.uow.transaction() as session, pytest.raises(NotFound):
        service.find_removed(session, world.stranger, wid, entry.id)
    with pytest.raises(NotFound):
        world.restore(wid, entry.id, actor=world.stranger)
    # A colleague may see the workspace, but removed files may hold secrets: only its owner.
    with world.uow.transaction() as session, pytest.raises(Forbidden):
        service.page_removed(session, world.colleague, wid)
    with pytest.raises(Forbidden):
        world.restore(wid, entry.id, actor=world.colleague)
    # Another workspace's entry id is not found in this one.
    other = world.upload({"x.tex": TEX})
    with world.uow.transaction() as session, pytest.raises(NotFound):
        service.find_removed(session, world.actor, other, entry.id)


# --- restore -----------------------------------------------------------------------------------


def test_restore_puts_the_file_back_and_empties_the_entry(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "a.txt": b"old\n"})
    world.upload({"a.txt": b"new\n"}, wid)
    entry = world.by_path(wid)["a.txt"]
    world.restore(wid, entry.id, path="restored/a.txt")
    files = world.files(wid)
    assert files["restored/a.txt"] == b"old\n" and files["a.txt"] == b"new\n"
    assert world.removed(wid) == []
    with world.uow.transaction() as session:
        log = [e.message for e in service.read_log(session, world.actor, wid)]
    assert "restored removed file 'a.txt' as 'restored/a.txt' (removed by replaced)" in log


def test_restoring_into_a_taken_name_is_a_conflict_unless_overwrite(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "a.txt": b"old\n"})
    world.upload({"a.txt": b"new\n"}, wid)
    entry = world.by_path(wid)["a.txt"]
    with pytest.raises(service.NameTaken, match="overwrite=true"):
        world.restore(wid, entry.id)
    assert world.files(wid)["a.txt"] == b"new\n"  # nothing changed
    assert [r.id for r in world.removed(wid)] == [entry.id]
    world.restore(wid, entry.id, overwrite=True)
    assert world.files(wid)["a.txt"] == b"old\n"
    # The file the restore replaced is kept in its turn: nothing is lost either way.
    (replaced,) = world.removed(wid)
    assert replaced.rule == "replaced" and world.blobs.read_bytes(replaced.sha256) == b"new\n"


def test_a_restore_the_checks_would_remove_again_is_refused(world: World) -> None:
    wid = world.upload({"main.tex": TEX, ".env": b"TOKEN=1\n"})
    entry = world.by_path(wid)[".env"]
    with pytest.raises(Invalid, match="another path"):
        world.restore(wid, entry.id)
    assert set(world.by_path(wid)) == {".env"} and ".env" not in world.files(wid)
    world.restore(wid, entry.id, path="env.txt")  # under a name the checks keep
    assert world.files(wid)["env.txt"] == b"TOKEN=1\n"


def test_a_restore_goes_through_the_merge_checks(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "a.txt": b"old\n"})
    world.upload({"a.txt": b"new\n"}, wid)
    entry = world.by_path(wid)["a.txt"]
    # 'main.tex/a.txt' would make main.tex a file and a folder at once.
    with pytest.raises(Invalid, match="both a file and a folder"):
        world.restore(wid, entry.id, path="main.tex/a.txt")
    assert [r.id for r in world.removed(wid)] == [entry.id]
    assert set(world.files(wid)) == {"main.tex", "a.txt"}


def test_a_locked_or_released_workspace_refuses_restore(world: World) -> None:
    wid = world.upload({"main.tex": TEX, ".env": b"x\n"})
    entry = world.removed(wid)[0]
    for action, undo in (("lock", "unlock"), ("release", "unrelease")):
        with world.uow.transaction() as session:
            service.change_state(session, world.actor, wid, action)  # type: ignore[arg-type]
        with pytest.raises(Forbidden):
            world.restore(wid, entry.id, path="env.txt")
        with world.uow.transaction() as session:
            service.change_state(session, world.actor, wid, undo)  # type: ignore[arg-type]
    world.restore(wid, entry.id, path="env.txt")


def test_two_restores_of_one_entry_restore_it_once(world: World) -> None:
    wid = world.upload({"main.tex": TEX, "a.txt": b"old\n"})
    world.upload({"a.txt": b"new\n"}, wid)
    entry = world.by_path(wid)["a.txt"]
    errors = race(
        lambda: world.restore(wid, entry.id, path="one.txt"),
        lambda: world.restore(wid, entry.id, path="two.txt"),
    )
    assert len(errors) == 1 and isinstance(errors[0], NotFound), errors
    files = world.files(wid)
    assert ("one.txt" in files) != ("two.txt" in files)  # exactly one of them
    assert world.removed(wid) == []


# --- purged with the workspace ----------------------------------------------------------------


def test_gc_keeps_quarantined_blobs_and_deleting_the_workspace_releases_them(
    world: World,
) -> None:
    secret = b"only in the quarantine\n"
    shared = b"also a file of another workspace\n"
    wid = world.upload({"main.tex": TEX, ".a": secret, ".b": shared})
    other = world.upload({"shared.txt": shared})
    entries = world.by_path(wid)
    with world.uow.transaction() as session:
        referenced = referenced_blobs(session)
    report = collect_garbage(world.blobs, referenced, grace=timedelta(0))
    assert entries[".a"].sha256 not in report.deleted  # the quarantine holds it
    with world.uow.transaction() as session:
        service.delete_workspace(session, world.actor, wid)
    with world.uow.transaction() as session:
        count = session.scalar(
            select(func.count())
            .select_from(WorkspaceRemovedFile)
            .where(WorkspaceRemovedFile.workspace_id == wid)
        )
        referenced = referenced_blobs(session)
    assert count == 0
    report = collect_garbage(world.blobs, referenced, grace=timedelta(0))
    assert entries[".a"].sha256 in report.deleted
    assert entries[".b"].sha256 not in report.deleted  # still a file of the other workspace
    assert world.files(other)["shared.txt"] == shared


def test_a_removed_file_above_the_limits_is_kept_and_fails_nothing(tmp_path: Path) -> None:
    """Before the quarantine a hidden file was skipped unread; keeping it must not make an
    upload that passed fail the per-file or total limit of the kept files."""
    limits = replace(DEFAULT_LIMITS, max_file_bytes=1000, max_total_bytes=1500)
    archive = write_tar_gz(tmp_path / "big.tar.gz", {"a.txt": b"a\n", ".git/pack": b"\1" * 1200})
    staging = tmp_path / "staging"
    result = process_upload(archive, archive.name, staging=staging, limits=limits)
    assert not result.fatal, result.findings
    assert [f.public_path for f in result.files] == ["a.txt"]
    assert [(q.public_path, q.size) for q in result.quarantined] == [(".git/pack", 1200)]
    # A kept file of that size still fails (the negative case).
    archive = write_tar_gz(tmp_path / "kept.tar.gz", {"b.txt": b"\1" * 1200})
    result = process_upload(archive, archive.name, staging=tmp_path / "s2", limits=limits)
    assert result.fatal
