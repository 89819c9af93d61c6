"""arXiv's rules over the whole workspace (issue #13, section 1) through
``workspaces.service.upload`` on both databases: TeX-generated files (17), DVI (21), the source
type (27) and ``.bib`` without ``.bbl`` (28), also when the deciding file comes in a later
upload; and the general target, which keeps cairn's own rules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cairn.accounts import service as accounts
from cairn.accounts.service import Actor
from cairn.blobs import BlobStore, open_blob_store
from cairn.db import UnitOfWork, make_sessionmaker
from cairn.workspaces import service
from cairn.workspaces._arxiv_rules import MSG_BIB_NO_BBL, msg_bbl_missing, msg_dvi
from tests.archives import write_tar_gz
from tests.conftest import _wipe
from tests.factories import make_org, make_user

TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"
BIB = b"@article{x, title={T}}\n"
BBL = b"\\begin{thebibliography}{1}\n\\end{thebibliography}\n"
PDF = b"%PDF-1.4\n%%EOF\n"
DVI = b"\xf7\x02" + bytes(64)
DOCX_NAMES = ("[Content_Types].xml", "word/document.xml")


@dataclass
class World:
    uow: UnitOfWork
    blobs: BlobStore
    work_dir: Path
    actor: Actor
    count: int = 0

    def upload(
        self,
        files: dict[str, bytes],
        workspace_id: int | None = None,
        archive: str | None = "arxiv",
    ) -> service.WorkspaceView:
        self.count += 1
        path = write_tar_gz(self.work_dir.parent / f"upload{self.count}.tar.gz", files)
        return service.upload(
            self.uow,
            self.blobs,
            self.actor,
            service.uploaded_file(path, archive=archive if workspace_id is None else None),
            work_dir=self.work_dir,
            workspace_id=workspace_id,
        )

    def view(self, workspace_id: int) -> service.WorkspaceView:
        with self.uow.transaction() as session:
            return service.view_workspace(session, self.actor, workspace_id)


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    uow = UnitOfWork(make_sessionmaker(engine))
    with uow.transaction() as session:
        org, user = make_org(session), make_user(session)
        accounts.add_member(session, user=user, organisation=org, privilege="manage")
        actor = accounts.authenticate_user(session, user)
    try:
        yield World(uow, open_blob_store(tmp_path / "blobs"), tmp_path / "work", actor)
    finally:
        _wipe(engine)


def paths(view: service.WorkspaceView) -> set[str]:
    return {f.public_path for f in view.files}


def triples(
    view: service.WorkspaceView, level: str | None = None
) -> list[tuple[str, str | None, str]]:
    return [
        (f.level, f.public_path, f.message)
        for f in view.findings
        if level is None or f.level == level
    ]


# --- rule 17 -----------------------------------------------------------------------------------
def test_tex_generated_files_go_next_to_their_tex(world: World) -> None:
    view = world.upload(
        {
            "main.tex": TEX,
            "main.aux": b"\\relax\n",
            "main.LOG": b"log\n",
            "main.pdf": PDF,
            "other.pdf": PDF,
            "sub/main.log": b"log\n",  # another folder: no main.tex beside it
            "anc/main.pdf": PDF,
        }
    )
    assert paths(view) == {"main.tex", "other.pdf", "sub/main.log", "anc/main.pdf"}
    assert triples(view, "info") == [
        ("info", p, f"Removed file '{p}' due to name conflict.")
        for p in ("main.LOG", "main.aux", "main.pdf")
    ]
    assert view.workspace.upload_status == "READY"


def test_tex_generated_files_go_whichever_upload_brings_the_tex(world: World) -> None:
    first = world.upload({"paper.pdf": PDF, "fig.png": b"\x89PNG\r\n\x1a\n"})
    wid = first.workspace.id
    assert paths(first) == {"paper.pdf", "fig.png"}
    second = world.upload({"paper.tex": TEX}, wid)
    assert paths(second) == {"paper.tex", "fig.png"}
    assert ("info", "paper.pdf", "Removed file 'paper.pdf' due to name conflict.") in triples(
        second
    )
    third = world.upload({"paper.aux": b"\\relax\n"}, wid)
    assert paths(third) == {"paper.tex", "fig.png"}
    assert third.workspace.checksum == second.workspace.checksum  # nothing changed


# --- rule 21 -----------------------------------------------------------------------------------
def test_dvi_is_fatal_unless_its_tex_is_there(world: World) -> None:
    refused = world.upload({"paper.dvi": DVI, "fig.png": b"\x89PNG\r\n\x1a\n"})
    assert refused.files == [] and refused.workspace.upload_status == "ERRORS"
    assert triples(refused, "fatal") == [("fatal", "paper.dvi", msg_dvi("paper.dvi"))]
    kept = world.upload({"paper.dvi": DVI, "paper.tex": TEX})
    assert paths(kept) == {"paper.tex"} and kept.workspace.upload_status == "READY"
    general = world.upload({"paper.dvi": DVI, "fig.png": b"\x89PNG\r\n\x1a\n"}, archive=None)
    assert paths(general) == {"paper.dvi", "fig.png"}


# --- rule 27 -----------------------------------------------------------------------------------
def _docx(tmp: Path) -> bytes:
    import zipfile

    path = tmp / "paper.docx"
    with zipfile.ZipFile(path, "w") as zf:
        for name in DOCX_NAMES:
            zf.writestr(name, "<x/>")
    return path.read_bytes()


@pytest.mark.parametrize(
    ("name", "data", "source_format", "message"),
    [
        ("paper.docx", None, "invalid", "Submissions in docx are no longer supported."),
        ("style.sty", b"\\ProvidesPackage{style}\n", "invalid", "Found single TeX auxiliary file"),
        ("fig.eps", b"\xc5\xd0\xd3\xc6" + bytes(26) + b"%!PS\n", "invalid", "Found single DOS EPS"),
        ("paper.pdf", PDF, "pdf", None),
        ("main.tex", TEX, "tex", None),
    ],
)
def test_source_type_of_a_lone_file(
    world: World,
    tmp_path: Path,
    name: str,
    data: bytes | None,
    source_format: str,
    message: str | None,
) -> None:
    view = world.upload({name: data if data is not None else _docx(tmp_path)})
    assert view.workspace.source_format == source_format
    assert paths(view) == {name}  # kept: the workspace shows ERRORS, as on arXiv
    fatal = triples(view, "fatal")
    if message is None:
        assert fatal == [] and view.workspace.upload_status != "ERRORS"
    else:
        assert len(fatal) == 1 and fatal[0][2].startswith(message)
        assert view.workspace.upload_status == "ERRORS"


def test_a_lone_auxiliary_file_is_fine_once_the_tex_comes(world: World) -> None:
    first = world.upload({"style.sty": b"\\ProvidesPackage{style}\n"})
    assert first.workspace.upload_status == "ERRORS"
    second = world.upload({"main.tex": TEX}, first.workspace.id)
    assert second.workspace.source_format == "tex"
    assert second.workspace.upload_status == "READY" and triples(second, "fatal") == []


def test_the_general_target_only_warns_about_the_source_type(world: World) -> None:
    view = world.upload({"style.sty": b"\\ProvidesPackage{style}\n"}, archive=None)
    assert view.workspace.upload_status == "READY_WITH_WARNINGS"
    assert [level for level, _, _ in triples(view)] == ["warn"]


# --- rule 28 -----------------------------------------------------------------------------------
def test_bib_without_bbl_is_an_error_and_stays(world: World) -> None:
    view = world.upload({"main.tex": TEX, "refs.bib": BIB})
    assert paths(view) == {"main.tex", "refs.bib"}
    assert view.workspace.upload_status == "ERRORS"
    assert triples(view) == [
        ("warn", "refs.bib", MSG_BIB_NO_BBL),
        ("fatal", "refs.bib", msg_bbl_missing("refs")),
    ]
    general = world.upload({"main.tex": TEX, "refs.bib": BIB}, archive=None)
    assert general.workspace.upload_status == "READY" and paths(general) == {"main.tex", "refs.bib"}


def test_bib_goes_once_its_bbl_is_there(world: World) -> None:
    view = world.upload({"main.tex": TEX, "refs.bib": BIB, "refs.bbl": BBL, "other.bib": BIB})
    assert paths(view) == {"main.tex", "refs.bbl", "other.bib"}
    assert (
        "warn",
        "refs.bib",
        "Removed file 'refs.bib': the references come from 'refs.bbl'.",
    ) in (triples(view))
    assert ("fatal", "other.bib", msg_bbl_missing("other")) in triples(view)


def test_bib_goes_when_the_bbl_comes_in_a_later_upload(world: World) -> None:
    first = world.upload({"main.tex": TEX, "sub/refs.bib": BIB})
    assert first.workspace.upload_status == "ERRORS"
    second = world.upload({"sub/refs.bbl": BBL}, first.workspace.id)
    assert paths(second) == {"main.tex", "sub/refs.bbl"}
    assert second.workspace.upload_status == "READY_WITH_WARNINGS"
    assert triples(second, "fatal") == []
    assert second.workspace.checksum != first.workspace.checksum
    # What the summary shows is what the database holds.
    again = world.view(second.workspace.id)
    assert paths(again) == paths(second) and again.workspace.total_size == len(TEX) + len(BBL)
