"""Sedna's DDL through ``execute``: LOAD (client file, stdin, workspace file), CREATE/DROP
DOCUMENT and COLLECTION, inside transactions like any change, on both databases."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from cairn.client import Client
from cairn.client.xmldb import Connection, connect
from cairn.errors import Invalid
from cairn.xmldb._ddl import Definition, parse_definition, workspace_source
from tests.factories import PASSWORD, Member
from tests.xmldb.conftest import PERSONS, PETS, Api


def workspace_with(client: TestClient, member: Member, name: str, data: bytes) -> int:
    answer = client.post(
        "/api/v1/workspaces/upload", headers=member.headers, files={"file": (name, data)}
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


# --- parsing ----------------------------------------------------------------------------------


def test_parse_every_form_and_leave_queries_alone() -> None:
    assert parse_definition('LOAD "a.xml" "a"') == Definition("load", "a", None, "a.xml")
    assert parse_definition("load 'it''s.xml' 'd' 'c';") == Definition("load", "d", "c", "it's.xml")
    assert parse_definition('LOAD STDIN "d"') == Definition("load", "d", None, None)
    assert parse_definition('create document "d" in collection "c"') == Definition(
        "create document", "d", "c"
    )
    assert parse_definition('DROP DOCUMENT "d"') == Definition("drop document", "d", None)
    assert parse_definition('CREATE COLLECTION "c"') == Definition("create collection", None, "c")
    assert parse_definition('DROP COLLECTION "a""b"') == Definition("drop collection", None, 'a"b')
    for query in ('doc("load")/x', "load/x", "<create/>", 'UPDATE delete doc("a")//b', "1 + 1"):
        assert parse_definition(query) is None
    for bad in ('LOAD "a.xml"', "CREATE DOCUMENT d", 'DROP COLLECTION "c" "d"', 'LOAD "" "d"'):
        with pytest.raises(Invalid):
            parse_definition(bad)
    assert workspace_source("workspace:12/data/eml.xml") == (12, "data/eml.xml")
    assert workspace_source("data/eml.xml") is None
    for bad in ("workspace:x/a.xml", "workspace:12", "workspace:12/"):
        with pytest.raises(Invalid):
            workspace_source(bad)


# --- documents and collections ----------------------------------------------------------------


def test_create_document_is_empty_until_an_insert_fills_it(api: Api) -> None:
    assert api.query('CREATE DOCUMENT "log" IN COLLECTION "logs"')["kind"] == "ddl"
    assert api.lite('count(doc("log")/node())') == "0"
    assert api.lite('count(collection("logs"))') == "1"
    doc_oid = api.query('doc("log")')["items"][0]["oid"]
    assert api.call("GET", "/documents/log").text == ""

    api.query('UPDATE insert (<?pi x?>, <log><entry n="1"/></log>) into doc("log")')
    assert api.lite('doc("log")/log/entry/@n/string()') == "1"
    assert api.query('doc("log")')["items"][0]["oid"] == doc_oid  # the document node's OID stays
    assert "<log>" in api.call("GET", "/documents/log").text

    api.query('CREATE DOCUMENT "other"')
    for bad in (
        'UPDATE insert (<a/>, <b/>) into doc("other")',
        'UPDATE insert "text" into doc("other")',
        'UPDATE insert attribute x {1} into doc("other")',
    ):
        api.query(bad, status=422)
    assert api.lite('count(doc("other")/node())') == "0"


def test_drop_document_and_collections_follow_the_transaction(api: Api) -> None:
    api.load("persons", PERSONS, collection="people")
    api.load("pets", PETS, collection="animals")
    api.query('CREATE COLLECTION "people"', status=409)
    api.query('DROP DOCUMENT "persons" IN COLLECTION "animals"', status=404)
    api.query('DROP COLLECTION "nowhere"', status=404)

    api.call("POST", "/begin")
    api.query('DROP COLLECTION "animals"')
    api.query('CREATE COLLECTION "empty"')
    assert api.lite('count(collection("empty"))') == "0"
    api.query('doc("pets")', status=404)
    api.call("POST", "/rollback")
    assert api.lite('doc("pets")/pets/cat/string()') == "Tom"
    api.query('collection("empty")', status=404)

    api.query('DROP COLLECTION "animals"')  # autocommit
    api.query('doc("pets")', status=404)
    names = [d["name"] for d in api.call("GET", "/documents")["items"]]
    assert names == ["persons"]
    api.query('DROP DOCUMENT "persons" IN COLLECTION "people"')
    assert api.call("GET", "/documents")["items"] == []
    api.query('CREATE COLLECTION "animals"')  # the name is free again
    assert api.lite('count(collection("animals"))') == "0"


def test_dropping_a_collection_another_transaction_filled_conflicts(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    first, second = Api(client, member), Api(client, member)
    first.query('CREATE COLLECTION "c"')
    first.call("POST", "/begin")
    first.query('DROP COLLECTION "c"')
    second.load("late", PETS, collection="c")  # commits first
    answer = first.call("POST", "/commit", status=409)
    assert answer["code"] == "transaction-conflict"
    assert second.lite('doc("late")/pets/dog/string()') == "Sam"
    assert second.lite('count(collection("c"))') == "1"


# --- loading ----------------------------------------------------------------------------------


def test_load_of_a_client_file_asks_the_client_for_its_bytes(api: Api) -> None:
    answer = api.query('LOAD "/etc/passwd" "pw"')
    assert answer["kind"] == "load"
    assert answer["load"] == {"document": "pw", "collection": None, "file": "/etc/passwd"}
    api.query('doc("pw")', status=404)  # the server read nothing
    assert api.query('LOAD STDIN "in" "c"')["load"]["file"] is None
    api.load("pets", PETS)
    api.query('LOAD "pets.xml" "pets"', status=409)  # the name is taken: said before any bytes


def test_the_client_sends_the_file_a_load_names(
    client: TestClient,
    make_member: Callable[..., Member],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member = make_member()
    con = connect(
        "http://testserver", member.organisation_id, member.email, PASSWORD, http_client=client
    )
    (tmp_path / "pets.xml").write_text(PETS)
    stmt = con.create_statement()
    con.begin()
    stmt.execute(f'LOAD "{tmp_path / "pets.xml"}" "pets" "animals"')
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(PERSONS.encode())))
    assert stmt.execute_query_lite('LOAD STDIN "persons"') == ""
    assert stmt.execute_query_lite('doc("pets")/pets/cat/string()') == "Tom"
    con.rollback()
    assert con.list_documents() == []
    stmt.execute(f'LOAD "{tmp_path / "pets.xml"}" "pets" "animals"')
    assert [d["collection"] for d in con.list_documents()] == ["animals"]
    assert len(stmt.execute_query('DROP DOCUMENT "pets"')) == 0
    con.close()


def test_the_client_reads_no_file_its_statement_did_not_name(tmp_path: Path) -> None:
    """A hostile server is outside this machine's trust, so this one is a fake: it answers a
    LOAD of one file by asking for another."""
    secret = tmp_path / "secret.xml"
    secret.write_text("<secret/>")
    sent: list[str] = []

    def hostile(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path.endswith("/statements"):
            load = {"document": "x", "collection": None, "file": str(secret)}
            return httpx.Response(200, json={"kind": "load", "size": 0, "load": load})
        return httpx.Response(201, json={"id": "s1", "database_id": "d", "organisation_id": "o"})

    http = httpx.Client(base_url="http://hostile", transport=httpx.MockTransport(hostile))
    con = Connection(Client("http://hostile", token="t", http_client=http), "db")
    with pytest.raises(ValueError, match="not named by the statement"):
        con.create_statement().execute('LOAD "harmless.xml" "x"')
    assert not any(path.endswith("/documents") for path in sent)


def test_load_from_a_workspace_file(client: TestClient, make_member: Callable[..., Member]) -> None:
    member = make_member()
    api = Api(client, member)
    wid = workspace_with(client, member, "pets.xml", PETS.encode())
    api.query(f'LOAD "workspace:{wid}/pets.xml" "pets" "animals"')
    assert api.lite('collection("animals")/pets/dog/string()') == "Sam"
    made = api.call(
        "POST", "/documents", 201, json={"name": "again", "workspace_id": wid, "path": "pets.xml"}
    )
    assert made["name"] == "again" and made["node_count"] > 1
    log = client.get(f"/api/v1/workspaces/{wid}/log", headers=member.headers)
    assert "downloaded file 'pets.xml'" in log.text

    api.query(f'LOAD "workspace:{wid}/missing.xml" "m"', status=404)
    text_ws = workspace_with(client, member, "notes.txt", b"not <xml\n")
    bad = api.query(f'LOAD "workspace:{text_ws}/notes.txt" "notes"', status=400)
    assert bad["code"] == "malformed-xml" and bad["errors"]["line"] == 1
    for body in (
        {"name": "x"},
        {"name": "x", "content": PETS, "workspace_id": wid, "path": "pets.xml"},
        {"name": "x", "workspace_id": wid},
    ):
        api.call("POST", "/documents", 422, json=body)

    stranger = make_member()  # another organisation: its workspace is not found, not read
    theirs = workspace_with(client, stranger, "theirs.xml", b"<theirs/>")
    api.query(f'LOAD "workspace:{theirs}/theirs.xml" "theirs"', status=404)
    api.call("POST", "/documents", 404, json={"name": "t", "workspace_id": theirs, "path": "t"})
    assert "theirs" not in json.dumps(api.call("GET", "/documents"))


def test_a_view_only_member_cannot_define(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    owner = make_member()
    viewer = Api(client, make_member("view", organisation_id=owner.organisation_id))
    for statement in ('CREATE DOCUMENT "d"', 'CREATE COLLECTION "c"', 'LOAD STDIN "d"'):
        viewer.query(statement, status=403)
    assert viewer.call("GET", "/documents")["items"] == []


def test_a_collection_of_several_documents(api: Api) -> None:
    """Regression: binding a collection of two or more documents aborted the server process
    (saxonche's ClassCastException on a map of sequences)."""
    for name in ("c", "a", "b"):
        api.load(name, f"<doc>{name}</doc>", collection="three")
    assert api.lite('collection("three")/doc/string()').splitlines() == ["a", "b", "c"]
    assert api.lite('count(collection("three"))') == "3"
