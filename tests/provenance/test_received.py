"""`POST /api/v1/runs/published`: a package `publish_run` wrote becomes a read-only run of the
organisation, listed and traced; hostile zips and bad bags are refused and leave nothing."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cairn.blobs import BlobStore
from cairn.client import Client
from cairn.config import Settings
from cairn.db import UnitOfWork, make_engine, make_sessionmaker, migrate
from cairn.plugins import get_plugin_manager
from cairn.provenance import RecordResult, RunStore, test_doi
from cairn.provenance.publishing import publish_run, put_metadata
from cairn.provenance.recording import record_script
from tests.archives import published_zip, tar_gz
from tests.factories import Member

Runner = Callable[..., RecordResult]
API = "/api/v1/runs/published"
SCRIPT = """\
import pathlib
pathlib.Path("doubled.txt").write_text(pathlib.Path("in.txt").read_text() * 2)
"""
LICENSED = {"title": "Doubling", "creators": ["Ada Lovelace"], "license": "CC-BY-4.0"}


@pytest.fixture
def package(store: RunStore, run_script: Runner, project: Path, tmp_path: Path) -> Path:
    """A real published package of a locally recorded run (the zip `cairn runs publish` writes)."""
    (project / "in.txt").write_text("abc")
    run = run_script(SCRIPT, name="double.py")
    with store.uow.transaction() as session:
        put_metadata(session, run.run_id, LICENSED)
    (tmp_path / "out").mkdir()
    with store.uow.transaction() as session:
        return publish_run(session, store.blobs, run.run_id, to=tmp_path / "out").path


def _upload(
    client: TestClient, member: Member, content: bytes, **form: str
) -> tuple[int, dict[str, object]]:
    answer = client.post(
        API, headers=member.headers, files={"file": ("run.zip", content)}, data=form
    )
    return answer.status_code, answer.json()


def _runs(client: TestClient, member: Member) -> int:
    total: int = client.get("/api/v1/runs", headers=member.headers).json()["total"]
    return total


def test_a_published_package_becomes_a_traceable_run(
    client: TestClient, make_member: Callable[..., Member], package: Path
) -> None:
    member = make_member()
    code, body = _upload(client, member, package.read_bytes())
    assert code == 201, body
    run = body["run"]
    assert isinstance(run, dict)
    assert run["kind"] == "published" and run["tags"] == ["published"]
    assert body["package_sha256"] == hashlib.sha256(package.read_bytes()).hexdigest()
    assert str(body["identifier"]).startswith("urn:uuid:") and body["doi"] is None
    assert [f["path"] for f in run["generated"]] == ["published:outputs/doubled.txt"]
    assert {f["path"] for f in run["used"]} == {
        "published:inputs/in.txt",
        "published:scripts/double.py",
    }
    doubled = run["generated"][0]
    assert doubled["sha256"] == hashlib.sha256(b"abcabc").hexdigest() and doubled["archived"]
    listed = client.get("/api/v1/runs", headers=member.headers).json()["items"]
    assert [r["run_id"] for r in listed] == [run["run_id"]]

    # A workspace built from the run's output is downstream of it, joined by content.
    made = client.post(
        "/api/v1/workspaces/upload",
        headers=member.headers,
        files={"file": ("paper.tar.gz", tar_gz({"doubled.txt": b"abcabc"}))},
    )
    assert made.status_code == 201, made.text
    built = client.get(f"/api/v1/workspaces/{made.json()['id']}/package", headers=member.headers)
    assert built.status_code == 200
    down = client.get(
        f"/api/v1/runs/{run['run_id']}/trace",
        params={"direction": "downstream"},
        headers=member.headers,
    ).json()
    assert {r["kind"] for r in down["runs"]} == {"published", "workspace.package"}

    again_code, again = _upload(client, member, package.read_bytes())
    assert again_code == 409 and again["code"] == "conflict"
    assert _runs(client, member) == 3  # the published run, the upload and the package build


def test_another_organisation_cannot_upload_into_yours(
    client: TestClient, make_member: Callable[..., Member], package: Path
) -> None:
    owner, stranger = make_member(), make_member()
    code, body = _upload(
        client, stranger, package.read_bytes(), organisation_id=owner.organisation_id
    )
    assert code == 404, body
    assert _runs(client, owner) == 0 and _runs(client, stranger) == 0


def _zip(members: dict[str, bytes], *, links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in links:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _tampered(package: Path) -> bytes:
    """The package with one payload file's content changed (its manifest line now lies)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("outputs/doubled.txt"):
                data = b"forged"
            target.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "says"),
    [
        ("climbs out", lambda p: _zip({"bag/../../evil.txt": b"x"}), "unsafe path"),
        ("absolute", lambda p: _zip({"/etc/evil": b"x"}), "unsafe path"),
        ("backslash", lambda p: _zip({"bag\\..\\evil": b"x"}), "unsafe path"),
        ("a link", lambda p: _zip({"bag/link": b"/etc/passwd"}, links=("bag/link",)), "plain"),
        ("two folders", lambda p: _zip({"a/x": b"1", "b/y": b"2"}), "one folder"),
        ("a file and a folder", lambda p: _zip({"bag/a": b"1", "bag/a/b": b"2"}), "twice"),
        ("a folder and a file", lambda p: _zip({"bag/a/b": b"1", "bag/a": b"2"}), "twice"),
        ("a zip bomb", lambda p: _zip({"bag/zeros": bytes(60 << 20)}), "zip bomb"),
        ("not a zip", lambda p: b"this is not a zip file at all\n", "not a zip"),
        ("not a bag", lambda p: _zip({"bag/data/x.txt": b"x"}), "not a BagIt bag"),
        ("a forged file", _tampered, "not a valid bag"),
    ],
)
def test_hostile_packages_are_refused_and_leave_nothing(
    client: TestClient,
    make_member: Callable[..., Member],
    settings: Settings,
    package: Path,
    name: str,
    make: Callable[[Path], bytes],
    says: str,
) -> None:
    member = make_member()
    code, body = _upload(client, member, make(package))
    assert code == 422, (name, body)
    assert says in str(body["detail"]), (name, body)
    assert _runs(client, member) == 0
    leftovers = list(settings.work_dir.glob("published-*")) + list(
        settings.work_dir.glob("upload-*")
    )
    assert leftovers == []


@pytest.fixture
def minting() -> Iterator[None]:
    manager = get_plugin_manager()
    manager.register(test_doi, name="test-doi")
    try:
        yield
    finally:
        manager.unregister(name="test-doi")


def test_a_minting_plugin_gives_the_publication_a_doi(
    client: TestClient, make_member: Callable[..., Member], package: Path, minting: None
) -> None:
    code, body = _upload(client, make_member(), package.read_bytes())
    assert code == 201, body
    assert body["doi"] == f"{test_doi.TEST_PREFIX}/cairn.{body['publication_id']}"


def test_the_sdk_uploads_a_package(
    client: TestClient, make_member: Callable[..., Member], package: Path
) -> None:
    member = make_member()
    sdk = Client("http://testserver", token=member.token, http_client=client)
    received = sdk.runs.upload_published(package)
    assert received["run"]["kind"] == "published"
    assert sdk.runs.get(received["run"]["run_id"]).generated[0].archived


def test_a_minimal_bag_without_environment_is_received(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    code, body = _upload(client, make_member(), published_zip())
    assert code == 201, body
    run = body["run"]
    assert isinstance(run, dict) and run["used"] == []
    assert [f["path"] for f in run["generated"]] == ["published:outputs/result.txt"]


def test_a_crate_naming_files_outside_the_bag_reads_none_of_them(
    client: TestClient, make_member: Callable[..., Member], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    names = (str(secret), "../../secret.txt", "outputs/../../bagit.txt", "file:///etc/hostname")
    code, body = _upload(client, make_member(), published_zip(names=names))
    assert code == 201, body
    run = body["run"]
    assert isinstance(run, dict) and run["used"] == []  # named, not in the bag: not read
    assert [f["path"] for f in run["generated"]] == ["published:outputs/result.txt"]


def test_a_refused_upload_records_no_publication_and_the_retry_works(
    engine: Engine,
    blobs: BlobStore,
    project: Path,
    tmp_path: Path,
    client: TestClient,
    make_member: Callable[..., Member],
) -> None:
    """`publish --to URL`: the upload runs inside the local transaction (#14). The local store
    is the test's database on PostgreSQL; on SQLite a file of its own, as a researcher's data
    folder is (one SQLite file cannot take the server's write while the local one is open)."""
    from sqlalchemy import func, select

    from cairn.errors import NotFound
    from cairn.provenance.models import Publication

    local = engine
    if engine.dialect.name == "sqlite":
        local = make_engine(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/l.db"))
        migrate(local)
    (tmp_path / "work").mkdir()
    store = RunStore(UnitOfWork(make_sessionmaker(local)), blobs, tmp_path / "work")
    (project / "in.txt").write_text("abc")
    (project / "double.py").write_text(SCRIPT)
    run = record_script(project / "double.py", store=store)
    with store.uow.transaction() as session:
        put_metadata(session, run.run_id, LICENSED)
    member, stranger = make_member(), make_member()
    sdk = Client("http://testserver", token=member.token, http_client=client)
    out = tmp_path / "out"
    out.mkdir()

    def into(organisation_id: str) -> Callable[[Path], object]:
        return lambda path: sdk.runs.upload_published(path, organisation_id=organisation_id)

    def publications() -> int:
        with store.uow.transaction() as session:
            count = session.scalar(
                select(func.count()).select_from(Publication).where(Publication.run_seq == run.seq)
            )
        return int(count or 0)

    # the server refuses: the member does not belong to the stranger's organisation
    with pytest.raises(NotFound), store.uow.transaction() as session:
        publish_run(session, store.blobs, run.run_id, to=out, upload=into(stranger.organisation_id))
    assert publications() == 0
    assert _runs(client, stranger) == 0  # and nothing arrived there
    # the retry needs no update=True and is version 1
    with store.uow.transaction() as session:
        published = publish_run(
            session, store.blobs, run.run_id, to=out, upload=into(member.organisation_id)
        )
    assert published.version == 1 and publications() == 1
    assert published.uploaded["run"]["kind"] == "published"
    assert _runs(client, member) == 1
    if local is not engine:
        local.dispose()
