"""The SDK against the in-process app: FastAPI's TestClient is the SDK's ``http_client``, so
every call runs the real routes, services and database, with no server process."""

from __future__ import annotations

import hashlib
import socket
import stat
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cairn import errors
from cairn.accounts import service as accounts
from cairn.accounts.models import Organisation as OrganisationRow
from cairn.client import (
    Client,
    CreditEntry,
    Credits,
    Finding,
    Organisation,
    User,
    Workspace,
    WorkspaceFile,
    connect,
    from_saved_login,
    login,
)
from cairn.client.credentials import credentials_path
from cairn.config import Settings
from cairn.db import make_engine, make_sessionmaker, session_scope
from tests.archives import write_tar_gz
from tests.factories import PASSWORD, Member

TEX = b"\\documentclass{article}\n\\begin{document}Hello.\\end{document}\n"
BIB = b"@article{k, title={T}, year={2024}}\n"


class Counter:
    """A progress callback that adds up the bytes it is told about."""

    def __init__(self) -> None:
        self.total = 0
        self.calls = 0

    def __call__(self, n: int) -> None:
        self.total += n
        self.calls += 1


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    """The app in-process; server errors raise in the test, they are never hidden as a 500."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member(credits=10)


@pytest.fixture
def me(http: TestClient, member: Member) -> User:
    return login(
        email=member.email, password=PASSWORD, client=Client("http://testserver", http_client=http)
    )


def test_login_gives_a_typed_user_with_organisations_and_credits(
    me: User, member: Member, settings: Settings
) -> None:
    assert isinstance(me, User) and me.id == member.user_id and me.email == member.email
    assert isinstance(me.created_at, datetime) and me.created_at.tzinfo is not None
    assert isinstance(me.expires_at, datetime) and me.expires_at > me.created_at
    assert me.token and me.token != member.token  # a fresh token of its own

    organisations = list(me.organisations)
    assert [o.id for o in organisations] == [member.organisation_id]
    org = organisations[0]
    assert isinstance(org, Organisation) and org.privilege == "manage"
    assert isinstance(org.created_at, datetime) and org.created_at.tzinfo is not None
    assert me.organisation(org.id) == org
    first, matches = me.find_organisations(name=org.name[:3].lower())
    assert first == org and [o.id for o in matches] == [org.id]
    assert me.find_organisations(name="no such lab")[0] is None

    # More ledger entries than one page (the SDK fetches 100 at a time).
    engine = make_engine(settings)
    with session_scope(make_sessionmaker(engine)) as session:
        row = session.get(OrganisationRow, org.id)
        assert row is not None
        for n in range(101):
            accounts.grant_credits(session, organisation=row, amount=-1, reason=f"run {n}")
    engine.dispose()
    credits = org.credits
    assert isinstance(credits, Credits) and credits.organisation_id == org.id
    assert credits.balance == 10 - 101
    entries = list(credits.entries)
    assert len(entries) == 102 and len({e.id for e in entries}) == 102
    assert all(isinstance(e, CreditEntry) and isinstance(e.created_at, datetime) for e in entries)
    assert sum(e.amount for e in entries) == credits.balance
    assert [e.created_at for e in entries] == sorted((e.created_at for e in entries), reverse=True)
    assert entries[-1].reason == "test" and entries[-1].amount == 10


def test_members_and_grants_through_the_sdk(
    me: User, member: Member, make_member: Callable[..., Member]
) -> None:
    viewer = make_member("view", organisation_id=member.organisation_id)
    org = me.organisation(member.organisation_id)
    listed = {m.email: m.privilege for m in org.members}
    assert listed == {member.email: "manage", viewer.email: "view"}
    granted = org.grant(viewer.user_id, "execute")
    assert (granted.user_id, granted.privilege) == (viewer.user_id, "execute")
    assert {m.user_id: m.privilege for m in org.members}[viewer.user_id] == "execute"
    with pytest.raises(errors.Conflict):
        org.grant(member.user_id, "view")  # the last manager cannot step down
    with pytest.raises(errors.Invalid):
        org.grant(viewer.user_id, "root")


def test_workspace_life_cycle_through_the_sdk(me: User, member: Member, tmp_path: Path) -> None:
    archive = write_tar_gz(tmp_path / "paper.tar.gz", {"main.tex": TEX, "refs.bib": BIB})
    sent = Counter()
    workspace = me.client.workspaces.upload(archive, progress=sent)
    assert sent.total == archive.stat().st_size and sent.calls >= 1
    assert isinstance(workspace, Workspace) and isinstance(workspace.id, int)
    assert workspace.organisation_id == member.organisation_id
    assert workspace.owner_id == member.user_id
    assert (workspace.state, workspace.lock_state) == ("ACTIVE", "UNLOCKED")
    assert workspace.status in ("READY", "READY_WITH_WARNINGS")
    assert all(isinstance(f, Finding) for f in workspace.findings)
    assert isinstance(workspace.created_at, datetime) and workspace.file_count == 2
    assert workspace.total_size == len(TEX) + len(BIB)

    fetched = me.client.workspaces.get(workspace.id)
    assert fetched.checksum == workspace.checksum and fetched.file_count == 2
    assert workspace.id in {w.id for w in me.client.workspaces.list()}
    assert workspace.id in {w.id for w in me.client.workspaces.list(mine=True)}
    (org,) = me.organisations
    assert workspace.id in {w.id for w in org.workspaces}

    files = {f.path: f for f in workspace.files}
    assert set(files) == {"main.tex", "refs.bib"}
    main = files["main.tex"]
    assert isinstance(main, WorkspaceFile) and isinstance(main.modified_at, datetime)
    assert main.sha256 == hashlib.sha256(TEX).hexdigest() and main.size == len(TEX)
    assert workspace.file("main.tex") == main

    received = Counter()
    package = workspace.download(tmp_path, progress=received)
    assert package == tmp_path / f"{workspace.id}.tar.gz"
    assert received.total == package.stat().st_size > 0
    with tarfile.open(package, "r:gz") as tar:
        assert sorted(tar.getnames()) == ["main.tex", "refs.bib"]
        member_file = tar.extractfile("main.tex")
        assert member_file is not None and member_file.read() == TEX
    one = Counter()
    single = workspace.download(tmp_path / "copy.tex", file="main.tex", progress=one)
    assert single.read_bytes() == TEX and one.total == len(TEX)
    assert not list(tmp_path.glob("*.part"))

    before = workspace.checksum
    extra = tmp_path / "notes.txt"
    extra.write_bytes(b"some notes\n")
    assert workspace.upload(extra) is workspace  # refreshed in place
    assert workspace.file_count == 3 and workspace.checksum != before
    assert me.client.workspaces.upload(extra, workspace_id=workspace.id).file_count == 3

    workspace.lock()
    assert workspace.lock_state == "LOCKED"
    with pytest.raises(errors.Forbidden) as refused:
        workspace.upload(extra)
    assert refused.value.status_code == 403
    assert refused.value.problem["code"] == "forbidden" == errors.Forbidden.code
    assert "locked" in str(refused.value)
    with pytest.raises(errors.Forbidden):
        workspace.delete_file("notes.txt")
    workspace.unlock()
    assert workspace.lock_state == "UNLOCKED"

    workspace.delete_file("notes.txt")
    assert workspace.file_count == 2
    assert {f.path for f in workspace.files} == {"main.tex", "refs.bib"}
    with pytest.raises(errors.NotFound) as missing:
        workspace.file("notes.txt")
    assert missing.value.status_code == 404

    workspace.release()
    assert workspace.state == "RELEASED"
    with pytest.raises(errors.Forbidden):
        workspace.delete_all()
    workspace.unrelease()
    assert workspace.state == "ACTIVE"
    workspace.delete_all()
    assert workspace.file_count == 0 and list(workspace.files) == []
    with pytest.raises(errors.NotFound):
        workspace.download(tmp_path / "empty.tar.gz")
    assert not (tmp_path / "empty.tar.gz").exists()

    messages = [entry["message"] for entry in workspace.log()]
    assert any("locked" in m for m in messages) and any("deleted all" in m for m in messages)

    workspace.delete()
    assert workspace.state == "DELETED"
    assert workspace.refresh().state == "DELETED"
    with pytest.raises(errors.NotFound):
        workspace.delete()


def test_empty_workspace_then_upload_into_it(me: User, tmp_path: Path) -> None:
    workspace = me.client.workspaces.create()
    assert workspace.file_count == 0 and workspace.state == "ACTIVE"
    source = tmp_path / "main.tex"
    source.write_bytes(TEX)
    workspace.upload(source, ancillary=True)
    assert [f.path for f in workspace.files] == ["anc/main.tex"]


def test_unknown_ids_and_bad_uploads_raise_the_server_errors(me: User, tmp_path: Path) -> None:
    with pytest.raises(errors.NotFound) as unknown:
        me.client.workspaces.get(2_000_000_000)
    assert unknown.value.status_code == 404 and unknown.value.problem["code"] == "not-found"
    with pytest.raises(errors.NotFound):
        me.organisation("no-such-organisation")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(errors.BadRequest) as refused:
        me.client.workspaces.upload(empty)
    assert refused.value.status_code == 400 and "zero length" in str(refused.value)
    with pytest.raises(errors.BadRequest):
        me.client.workspaces.upload(
            write_tar_gz(tmp_path / "a.tar.gz", {"a.txt": b"a"}), archive="nope"
        )


def test_another_organisations_workspace_is_not_found(
    me: User, http: TestClient, make_member: Callable[..., Member], tmp_path: Path
) -> None:
    source = tmp_path / "main.tex"
    source.write_bytes(TEX)
    mine = me.client.workspaces.upload(source)
    stranger = make_member()
    other = login(
        email=stranger.email,
        password=PASSWORD,
        client=Client("http://testserver", http_client=http),
    )
    with pytest.raises(errors.NotFound):
        other.client.workspaces.get(mine.id)
    assert mine.id not in {w.id for w in other.client.workspaces.list()}
    with pytest.raises(errors.NotFound):
        other.client.workspaces.upload(
            source, organisation_id=me.client.workspaces.get(mine.id).organisation_id
        )


def test_resources_ignore_fields_a_newer_server_adds(me: User, tmp_path: Path) -> None:
    source = tmp_path / "main.tex"
    source.write_bytes(TEX)
    workspace = me.client.workspaces.upload(source)
    newer = Workspace.bind(me.client, {**workspace.to_dict(), "new_field": 1, "findings": []})
    assert newer.id == workspace.id and newer.checksum == workspace.checksum
    assert not hasattr(newer, "new_field") and "new_field" not in newer.to_dict()
    assert newer.refresh().file_count == 1  # bound: it can call the server
    (item,) = workspace.files
    file_newer = WorkspaceFile.bind(me.client, {**item.to_dict(), "etag": "x", "mime": "y"})
    assert file_newer == item


def test_connect_with_a_token_and_logout(me: User, http: TestClient) -> None:
    again = connect(me.token or "", client=Client("http://testserver", http_client=http))
    assert again.id == me.id and again.email == me.email
    me.logout()
    with pytest.raises(errors.Unauthorized) as gone:
        list(me.client.workspaces.list())
    assert gone.value.status_code == 401 and gone.value.problem["code"] == "unauthorized"
    with pytest.raises(errors.Unauthorized):
        login(
            email=me.email, password="Wrong-passw0rd!", client=Client("http://x", http_client=http)
        )


# --- the saved login ------------------------------------------------------------------------------
# from_saved_login() builds its own httpx client for the saved URL (it takes no http_client),
# so it needs the app listening on a port: uvicorn in a thread of this process.


@pytest.fixture
def served(app: FastAPI) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_saved_login_is_private_and_resumes(
    served: str,
    http: TestClient,
    member: Member,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with pytest.raises(errors.Unauthorized):
        from_saved_login()
    me = login(email=member.email, password=PASSWORD, client=Client(served, http_client=http))
    me.save_login()
    saved = credentials_path()
    assert saved.is_relative_to(tmp_path / "config")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert me.token is not None and me.token in saved.read_text()

    with from_saved_login() as again:
        assert again.id == me.id and again.token == me.token
        assert again.client.base_url == served
        assert again.expires_at == me.expires_at
        assert [o.id for o in again.organisations] == [member.organisation_id]


@pytest.mark.parametrize("key", ["user_id", "id"])
def test_login_by_user_id_or_its_other_name_id(http: TestClient, member: Member, key: str) -> None:
    """The manual logs in by ``email=``, ``user_id=`` or ``id=``."""
    me = login(
        password=PASSWORD,
        client=Client("http://testserver", http_client=http),
        **{key: member.user_id},
    )
    assert me.id == member.user_id and me.email == member.email
