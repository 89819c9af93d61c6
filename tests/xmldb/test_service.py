"""The XML server without HTTP, on both databases: concurrent conflicting commits, database
creation on first use, the parsed-document cache, and normalised storage."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cairn.accounts import service as accounts
from cairn.blobs import BlobStore
from cairn.config import Settings
from cairn.db import UnitOfWork, make_sessionmaker
from cairn.errors import Conflict, Forbidden, NotFound
from cairn.xmldb._session import XmlServer
from cairn.xmldb._xml import canonical_count, normalise, parse_tree
from cairn.xmldb.errors import MalformedXml, TransactionConflict
from tests.factories import Member


@pytest.fixture
def server(engine: Engine, blobs: BlobStore, settings: Settings) -> XmlServer:
    return XmlServer(UnitOfWork(make_sessionmaker(engine)), blobs, cache_bytes=1 << 20)


def _actor(server: XmlServer, member: Member) -> accounts.Actor:
    with server.uow.transaction() as session:
        actor = accounts.authenticate(session, member.token)
        _ = actor.user.memberships
        return actor


def test_racing_commits_on_one_document_one_wins(
    server: XmlServer, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    actor = _actor(server, member)
    setup = server.open_session(actor, member.organisation_id)
    setup.load_document("doc", "<v>0</v>", replace=False)
    racers = [server.open_session(actor, member.organisation_id) for _ in range(2)]
    for n, xs in enumerate(racers):
        xs.begin()
        xs.load_document("doc", f"<v>{n + 1}</v>", replace=True)
        xs.load_document(f"extra{n}", "<e/>", replace=False)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def commit(xs: object) -> None:
        barrier.wait()
        try:
            xs.commit()  # type: ignore[attr-defined]
            outcomes.append("ok")
        except TransactionConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=commit, args=(xs,)) for xs in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    docs = {d.name: d for d in setup.list_documents()}
    winner = int(setup.execute("string(doc('doc'))", lite=True)["text"]) - 1
    assert docs["doc"].version == 2
    assert set(docs) == {"doc", f"extra{winner}"}  # the loser's other change is not there


def test_the_database_is_created_once_and_only_for_members(
    server: XmlServer, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    actor = _actor(server, member)
    one = server.open_session(actor, member.organisation_id)
    with server.uow.transaction() as session:
        from cairn.accounts.models import Organisation

        org = session.get(Organisation, member.organisation_id)
        assert org is not None
        name = org.name
    two = server.open_session(actor, name)  # by name, too
    assert one.database_id == two.database_id
    stranger = _actor(server, make_member())
    with pytest.raises(NotFound):
        server.open_session(stranger, member.organisation_id)
    with pytest.raises(NotFound):
        server.session(stranger, one.id)


def test_viewers_read_but_cannot_write(
    server: XmlServer, make_member: Callable[..., Member]
) -> None:
    owner = make_member()
    viewer = make_member("view", organisation_id=owner.organisation_id)
    server.open_session(_actor(server, owner), owner.organisation_id).load_document(
        "d", "<d/>", replace=False
    )
    xs = server.open_session(_actor(server, viewer), owner.organisation_id)
    assert xs.execute("name(doc('d')/*)", lite=True)["text"] == "d"
    with pytest.raises(Forbidden):
        xs.load_document("e", "<e/>", replace=False)


def test_names_are_unique_and_documents_parse_once_per_version(
    server: XmlServer, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    xs = server.open_session(_actor(server, member), member.organisation_id)
    xs.load_document("d", "<d>1</d>", replace=False)
    with pytest.raises(Conflict):
        xs.load_document("d", "<d>2</d>", replace=False)
    before = server.trees.parses
    for _ in range(3):
        xs.execute("string(doc('d'))", lite=True)
    assert server.trees.parses == before + 1
    xs.load_document("d", "<d>2</d>", replace=True)
    assert xs.execute("string(doc('d'))", lite=True)["text"] == "2"
    assert server.trees.parses == before + 2


def test_malformed_xml_names_line_and_column() -> None:
    with pytest.raises(MalformedXml) as caught:
        normalise("<a>\n  <b></a>")
    assert caught.value.detail["line"] == 2
    assert caught.value.detail["column"] > 0
    with pytest.raises(MalformedXml):
        normalise('<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>')


def test_storage_is_normalised_and_counts_every_numbered_node() -> None:
    stored = normalise('<?xml version="1.0" encoding="ISO-8859-1"?><!--c--><a x="1">t<b/>u</a>')
    assert stored.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    # document, comment, a, @x, "t", b, "u"
    assert stored.node_count == 7 == canonical_count(parse_tree(stored.content))


def test_an_idle_session_is_closed_and_its_transaction_rolled_back(
    engine: Engine, blobs: BlobStore, make_member: Callable[..., Member]
) -> None:
    now = [1000.0]  # the server's clock, moved by hand instead of waiting half an hour
    server = XmlServer(
        UnitOfWork(make_sessionmaker(engine)), blobs, idle_timeout=60, clock=lambda: now[0]
    )
    member = make_member()
    actor = _actor(server, member)
    idle = server.open_session(actor, member.organisation_id)
    busy = server.open_session(actor, member.organisation_id)
    idle.begin()
    idle.load_document("draft", "<d/>", replace=False)
    now[0] += 45
    server.session(actor, busy.id)  # a request keeps a session alive
    now[0] += 30
    assert server.close_idle() == 1
    with pytest.raises(NotFound, match="without a request; its open transaction was rolled back"):
        server.session(actor, idle.id)
    assert server.session(actor, busy.id) is busy
    assert [d.name for d in busy.list_documents()] == []  # nothing of the draft applied
    now[0] += 61
    with pytest.raises(NotFound, match="without a request"):
        server.session(actor, busy.id)  # closed by the lookup's own sweep


def test_the_demo_seeds_metadata_to_query(engine: Engine, blobs: BlobStore, tmp_path: Path) -> None:
    from cairn.demo import DEMO_EMAIL, DEMO_ORG, seed_demo

    uow = UnitOfWork(make_sessionmaker(engine))
    assert seed_demo(uow, blobs, work_dir=tmp_path)
    with uow.transaction() as session:
        user = accounts.find_user(session, email=DEMO_EMAIL)
        actor = accounts.authenticate_user(session, user)
    server = XmlServer(uow, blobs)
    xs = server.open_session(actor, DEMO_ORG)
    answer = xs.execute('collection("metadata")//*:title/string()', lite=True)
    assert answer["text"].splitlines() == ["A demo paper", "Synthetic bird survey, demo data"]


def test_a_snapshot_is_reused_until_a_commit_anywhere_changes_the_database(
    server: XmlServer, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    actor = _actor(server, member)
    xs = server.open_session(actor, member.organisation_id)
    xs.load_document("d", "<v>1</v>", replace=False)
    reads = server.snapshot_reads
    for _ in range(3):
        assert xs.execute("string(doc('d'))", lite=True)["text"] == "1"
    assert server.snapshot_reads == reads + 1  # read once after the load, then reused
    # Another server process on the same database commits: the next statement here sees it.
    other = XmlServer(server.uow, server.blobs)
    writer = other.open_session(actor, member.organisation_id)
    writer.load_document("d", "<v>2</v>", replace=True)
    assert xs.execute("string(doc('d'))", lite=True)["text"] == "2"
    writer.execute('CREATE COLLECTION "c"')
    writer.load_document("e", "<e/>", "c", replace=False)
    assert xs.execute("count(collection('c'))", lite=True)["text"] == "1"
    writer.execute('CREATE INDEX "i" ON doc("d")/v BY . AS xs:string')
    assert xs.execute('count(index-scan("i", "2", "EQ"))', lite=True)["text"] == "1"
    assert server.snapshot_reads == reads + 4
