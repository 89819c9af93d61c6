"""Node tables (``_nodes``): every record equals the one Saxon answers, tables are saved and
read back after a restart without a parse, and a damaged saved table is built again."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from cairn.accounts import service as accounts
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork, make_sessionmaker
from cairn.xmldb import _engine as engine
from cairn.xmldb import _nodes
from cairn.xmldb._session import MAX_STRING, XmlServer, XmlSession
from cairn.xmldb._xml import normalise
from cairn.xmldb.models import XmlDocument
from tests.factories import Member

LONG = "long text " * 80  # over MAX_STRING: records leave the value out, parts read it

DOCUMENTS = {
    "namespaces": """<r xmlns="urn:a" xmlns:b="urn:b" xmlns:z="urn:z" b:top="1">
  <a b:x="1" y="2" z:w="3">one</a>
  <b:c xmlns:m="urn:m" xmlns="">plain<m:d m:q="q"/><e xmlns="urn:e"/></b:c>
  <f xmlns:b="urn:other"><b:g/></f>
</r>""",
    "bases": """<r xml:base="http://example.org/a/b/">
  <c xml:base="sub/"><d xml:base="../up/x.xml">t</d><e/></c>
  <f xml:base="urn:isbn:1"><g xml:base="rel/"/></f>
  <h xml:base="/root/"><i xml:base="https://other.example/"/></h>
</r>""",
    "instructions": """<?xml version="1.0"?>
<!-- before --><?first  with  data ?><r><?inner?>text<!--inside-->more<?p x?></r>
<!--after--><?last?>""",
    "entities": f"""<!DOCTYPE r [<!ENTITY e "ent&#38;#38;ity"> <!ENTITY w "&lt;wrapped&gt;">]>
<r a="&e; &amp; &#x20AC;">a&e;<![CDATA[<cdata> & ]]>&lt;&#x20AC;&#13;<b>&w;</b>
<long>{LONG}</long><![CDATA[]]><c>x<![CDATA[y]]>z</c></r>""",
}


def _actor(uow: UnitOfWork, member: Member) -> accounts.Actor:
    with uow.transaction() as session:
        actor = accounts.authenticate(session, member.token)
        _ = actor.user.memberships
        return actor


@pytest.fixture
def uow(engine: Engine) -> UnitOfWork:
    return UnitOfWork(make_sessionmaker(engine))


def _session(uow: UnitOfWork, blobs: BlobStore, member: Member) -> tuple[XmlServer, XmlSession]:
    server = XmlServer(uow, blobs, cache_bytes=1 << 24)
    return server, server.open_session(_actor(uow, member), member.organisation_id)


def _document_oid(xs: XmlSession, name: str) -> str:
    answer = xs.execute(f"doc('{name}')")
    oid: str = answer["items"][0]["oid"]
    return oid


def _saxon_records(xs: XmlSession, name: str) -> list[dict[str, Any]]:
    """Every record of the document as Saxon answers them (no node table involved)."""

    def run() -> list[dict[str, Any]]:
        assert xs.txn is not None
        tree = xs._tree(xs.txn, name)
        return xs._portion(xs.txn, tree.root, 1 << 30)

    return engine.on_saxon_thread(run)


def _table_records(xs: XmlSession, name: str) -> list[dict[str, Any]]:
    assert xs.txn is not None
    doc = xs.txn.document(name)
    assert doc is not None
    table = xs._table(xs.txn, doc, wait=True)
    assert table is not None
    return xs._table_portion(doc, table, 0, 1 << 30, "following")


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_record_equals_saxons(
    name: str, uow: UnitOfWork, blobs: BlobStore, make_member: Callable[..., Member]
) -> None:
    server, xs = _session(uow, blobs, make_member())
    xs.load_document(name, DOCUMENTS[name], replace=False)
    xs.begin()
    saxon = _saxon_records(xs, name)
    table = _table_records(xs, name)
    assert len(table) == normalise(DOCUMENTS[name]).node_count
    assert table == saxon
    for record in saxon:  # each node on its own, as a client miss asks for it
        assert xs.node(record["oid"], 256)[0] == record
        for scope in ("following", "siblings"):
            got = xs.node(record["oid"], 4096, scope)
            assert all(r in saxon for r in got)
        if record["kind"] == "element":  # namespace nodes, one after the other
            ns_oid = record["first_namespace"]
            while ns_oid is not None:
                ns = xs.node(ns_oid)[0]
                by_saxon = functools.partial(xs._saxon_node, ns_oid, 256, "")
                saxon_ns = engine.on_saxon_thread(by_saxon)
                assert ns == saxon_ns[0]
                ns_oid = ns["next_sibling"]
        if record["string_value"] is None:  # read in parts, as Saxon cuts them
            assert record["string_length"] > MAX_STRING
            for offset in (0, 100, record["string_length"] - 3):
                want = engine.on_saxon_thread(
                    functools.partial(xs._saxon_string, record["oid"], offset, 300)
                )
                assert xs.node_string(record["oid"], offset, 300) == want
    assert server.tables.builds == 1
    xs.rollback()


def test_saved_tables_round_trip_and_refuse_damage() -> None:
    content = normalise(DOCUMENTS["entities"]).content
    table = _nodes.build(content, "urn:x")
    data = _nodes.encode(table, "a" * 64, "urn:x")
    assert _nodes.decode(data, "a" * 64, "urn:x") == table
    assert _nodes.decode(data, "b" * 64, "urn:x") is None  # another document's bytes
    assert _nodes.decode(data, "a" * 64, "urn:y") is None  # another name (base URI)
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        assert _nodes.decode(data[:cut], "a" * 64, "urn:x") is None
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    assert _nodes.decode(bytes(flipped), "a" * 64, "urn:x") is None
    empty = _nodes.build(b"", "urn:e")
    assert (empty.size, empty.tree_size, empty.string_value(0)) == (1, 1, "")


def _records_sha(uow: UnitOfWork, oid: str) -> str | None:
    """The saved table of the document of node ``oid``."""
    with uow.transaction() as session:
        found: str | None = session.scalar(
            select(XmlDocument.records_sha256).where(XmlDocument.id == oid.rsplit(".", 1)[0])
        )
        return found


def test_a_restarted_server_reads_the_table_back_without_a_parse(
    uow: UnitOfWork, blobs: BlobStore, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    first, xs = _session(uow, blobs, member)
    xs.load_document("d", DOCUMENTS["namespaces"], replace=False)
    oid = _document_oid(xs, "d")
    before = xs.node(oid, 1 << 20)
    assert first.tables.builds == 1
    assert _records_sha(uow, oid) is not None

    restarted, again = _session(uow, blobs, member)  # a new process: nothing in memory
    after = again.node(oid, 1 << 20)
    assert after == before
    assert restarted.trees.parses == 0  # Saxon never parsed the document
    assert (restarted.tables.builds, restarted.tables.reads) == (0, 1)
    assert again.node_string(before[1]["oid"], 0, 3) == before[1]["string_value"][:3]
    assert restarted.trees.parses == 0


@pytest.mark.parametrize("damage", ["flipped byte", "not a table"])
def test_a_damaged_saved_table_is_built_again(
    damage: str, uow: UnitOfWork, blobs: BlobStore, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    _, xs = _session(uow, blobs, member)
    xs.load_document("d", DOCUMENTS["bases"], replace=False)
    oid = _document_oid(xs, "d")
    before = xs.node(oid, 1 << 20)
    sha = _records_sha(uow, oid)
    assert sha is not None
    doc_id = oid.rsplit(".", 1)[0]
    if damage == "flipped byte":
        data = bytearray(blobs.read_bytes(sha))
        data[len(data) // 2] ^= 0x55
        bad = blobs.put(bytes(data)).sha256
    else:
        with uow.transaction() as session:
            bad = session.scalars(select(XmlDocument.sha256).where(XmlDocument.id == doc_id)).one()
    with uow.transaction() as session:
        session.execute(
            update(XmlDocument).where(XmlDocument.id == doc_id).values(records_sha256=bad)
        )

    restarted, again = _session(uow, blobs, member)
    assert again.node(oid, 1 << 20) == before
    assert (restarted.tables.builds, restarted.tables.reads) == (1, 0)
    repaired = _records_sha(uow, oid)
    assert repaired not in (None, bad)
    assert repaired == sha  # the same table again, saved in the same bytes


def test_an_updated_document_gets_a_new_table(
    uow: UnitOfWork, blobs: BlobStore, make_member: Callable[..., Member]
) -> None:
    _, xs = _session(uow, blobs, make_member())
    xs.load_document("d", "<r><a>1</a></r>", replace=False)
    oid = _document_oid(xs, "d")
    xs.node(oid)
    old = _records_sha(uow, oid)
    xs.execute("UPDATE insert <b>2</b> into doc('d')/r")
    assert _records_sha(uow, oid) is None  # the saved table was of the old content
    xs.begin()
    records = _table_records(xs, "d")
    assert [r["string_value"] for r in records] == ["12", "12", "1", "1", "2", "2"]
    assert records == _saxon_records(xs, "d")
    xs.rollback()
    assert _records_sha(uow, oid) not in (None, old)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_positions_of_a_few_nodes_without_the_trees_index(name: str) -> None:
    content = normalise(DOCUMENTS[name]).content

    def check() -> None:
        tree = engine.Tree(engine.parse_document(content, "urn:x"))
        query = "declare variable $r external; ($r, $r//node())"
        nodes = engine.evaluate(query, {"r": tree.root})
        items = [nodes.item_at(i) for i in range(nodes.size)]
        want = [tree.position(g) for g in engine.generate_ids(items)]
        assert engine.document_positions(items) == want == list(range(len(items)))

    engine.on_saxon_thread(check)


def test_a_first_answer_names_its_nodes_without_indexing_the_tree(
    uow: UnitOfWork, blobs: BlobStore, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    first, xs = _session(uow, blobs, member)
    xs.load_document("d", DOCUMENTS["namespaces"], replace=False)
    query = "doc('d')//*[local-name() = ('a', 'g')]"
    doc = xs.list_documents()[0]
    engine.on_saxon_thread(lambda: first.trees.get(doc).size)  # this server's tree: indexed
    want = [item["oid"] for item in xs.execute(query)["items"]]
    restarted, again = _session(uow, blobs, member)
    answer = again.execute(query)
    assert [item["oid"] for item in answer["items"]] == want
    assert answer["records"][0]["oid"] == want[0]
    assert not engine.on_saxon_thread(lambda: restarted.trees.get(doc).indexed)


def test_a_refused_note_of_a_saved_table_fails_no_statement_and_is_retried(
    uow: UnitOfWork,
    blobs: BlobStore,
    make_member: Callable[..., Member],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The row update that notes a saved table is refused once (the database's refusal is
    simulated: a lock timeout cannot be provoked on demand on both databases)."""
    from sqlalchemy.exc import OperationalError

    from cairn.xmldb import service

    real = service.save_node_table
    refused: list[str] = []

    def refuse_once(session: Any, doc_id: str, content: str, table: str) -> None:
        if not refused:
            refused.append(doc_id)
            raise OperationalError("UPDATE xml_documents", {}, Exception("database is locked"))
        real(session, doc_id, content, table)

    monkeypatch.setattr(service, "save_node_table", refuse_once)
    _, xs = _session(uow, blobs, make_member())
    xs.load_document("d", "<r><a>1</a></r>", replace=False)
    oid = _document_oid(xs, "d")
    assert xs.node(oid)[0]["string_value"] == "1"  # waits for the table, then notes it
    assert xs.execute("string(doc('d'))", lite=True)["text"] == "1"
    assert refused == [oid.rsplit(".", 1)[0]]  # one call was refused, and failed nothing
    assert _records_sha(uow, oid) is not None  # a later call noted it
