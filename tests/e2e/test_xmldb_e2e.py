"""End to end: the XML database through `cairn xml` and the navigational client against a
real `cairn serve`, and a commit after a real server restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cairn.client.xmldb import connect
from cairn.errors import NotFound
from tests.e2e.conftest import Server, _serve
from tests.xmldb.conftest import PERSONS, PETS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EMAIL, PASSWORD = "ada@example.org", "Analytical-1843!"
ORG = "Engine Lab"


@pytest.fixture(scope="module")
def ada(server: Server) -> Server:
    return server.sign_in(EMAIL, PASSWORD, ORG)


def test_cli_load_query_list_get_delete(ada: Server, tmp_path: Path) -> None:
    source = tmp_path / "pets.xml"
    source.write_text(PETS)
    loaded = ada.cli("xml", "load", str(source), "--db", ORG, "--json")
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["name"] == "pets"
    asked = ada.cli("xml", "query", 'doc("pets")/pets/*/string()', "--db", ORG)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.split() == ["Tom", "Sam"]
    listed = json.loads(ada.cli("xml", "list", "--db", ORG, "--json").stdout)
    assert [d["name"] for d in listed] == ["pets"]
    got = ada.cli("xml", "get", "pets", "--db", ORG)
    assert "<cat>Tom</cat>" in got.stdout
    bad = ada.cli("xml", "query", "1 +", "--db", ORG)
    assert bad.returncode != 0 and "XPST0003" in bad.stderr
    assert ada.cli("xml", "delete", "pets", "--db", ORG).returncode == 0
    missing = ada.cli("xml", "get", "pets", "--db", ORG)
    assert missing.returncode == 4

    # Sedna's LOAD through a query: the CLI sends the file the statement names.
    statement = f'LOAD "{source}" "again" "animals"'
    assert ada.cli("xml", "query", statement, "--db", ORG).returncode == 0
    assert ada.cli(
        "xml", "query", 'collection("animals")//cat/string()', "--db", ORG
    ).stdout.split() == ["Tom"]
    # A workspace's file, read on the server.
    uploaded = ada.cli("workspace", "upload", str(source), "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    wid = str(json.loads(uploaded.stdout)["id"])
    loaded = ada.cli("xml", "load", "pets.xml", "--workspace", wid, "--name", "ws", "--db", ORG)
    assert loaded.returncode == 0, loaded.stderr
    assert "<dog>Sam</dog>" in ada.cli("xml", "get", "ws", "--db", ORG).stdout
    absent = ada.cli("xml", "load", str(tmp_path / "absent.xml"), "--db", ORG)
    assert absent.returncode == 2 and "is not a file" in absent.stderr


def test_the_papers_example_over_real_http(ada: Server) -> None:
    with connect(ada.url, ORG, EMAIL, PASSWORD) as con:
        con.load_document("persons", PERSONS)
        con.load_document("pets2", PETS.encode())
        con.begin()
        people = con.create_statement().execute_query('document("persons")/*/person')
        pets = con.create_statement().execute_query('document("pets2")/*/*/text()')
        nicks = []
        for person in people:
            for child in person.as_node().children():
                node = child.as_node()
                if node.node_name() == "nick":
                    nicks.append(node.string_value())
                if node.node_name() == "name":
                    nicks += [a.as_node().string_value() for a in node.attributes()]
        found = [str(p.as_atom()) for p in pets if str(p.as_atom()) in nicks]
        con.commit()
    assert found == ["Tom", "Sam"]


def test_commit_after_a_real_restart_applies_nothing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("restart")
    first = _serve(root, {})
    server = next(first)
    server.sign_in(EMAIL, PASSWORD, ORG)
    con = connect(server.url, ORG, EMAIL, PASSWORD)
    con.begin()
    con.load_document("half", "<h/>")
    first.close()  # stops the process: its sessions are gone
    second = _serve(root, {})
    again = next(second)
    try:
        con.client.base_url = again.url
        con.client._http.base_url = again.url  # type: ignore[assignment]
        with pytest.raises(NotFound) as lost:
            con.commit()
        assert "restarted" in str(lost.value)
        with connect(again.url, ORG, EMAIL, PASSWORD) as fresh:
            assert fresh.list_documents() == []
    finally:
        con.client.close()
        second.close()
