"""First checks of the XML API through the in-process app (both databases)."""

from __future__ import annotations

from tests.xmldb.conftest import PERSONS, PETS, Api


def test_load_query_and_navigate(api: Api) -> None:
    api.load("persons", PERSONS)
    api.load("pets", PETS, collection="animals")
    assert api.lite('count(doc("persons")//person)') == "5"
    assert api.lite('for $p in collection("animals")/pets/* return string($p)') == "Tom\nSam"
    answer = api.query('document("persons")/*/person')
    assert answer["size"] == 5
    first = answer["items"][0]
    assert first["kind"] == "element"
    records = {r["oid"]: r for r in answer["records"]}
    me = records[first["oid"]]
    assert me["name"]["local"] == "person"
    child = records[me["first_child"]]
    assert child["kind"] == "element" and child["name"]["local"] == "name"
    nodes = api.call("GET", f"/nodes/{me['parent']}", params={"portion": 256})["records"]
    assert nodes[0]["kind"] == "element" and nodes[0]["name"]["local"] == "persons"


def test_node_portions_follow_document_order_or_list_children(api: Api) -> None:
    api.load("lib", "<lib><book id='a'><t>A</t></book><book id='b'><t>B</t></book>x</lib>")
    lib = api.query('doc("lib")/lib')["items"][0]["oid"]
    titles = api.query('doc("lib")//t/text()')
    first_text = titles["items"][0]["oid"]
    # A leaf's portion goes on past its subtree: the second book and what is in it follow.
    after = api.call("GET", f"/nodes/{first_text}", params={"portion": 4096})["records"]
    names = [(r["kind"], (r["name"] or {}).get("local"), r["string_value"]) for r in after]
    assert names == [
        ("text", None, "A"),
        ("element", "book", "B"),
        ("attribute", "id", "b"),
        ("element", "t", "B"),
        ("text", None, "B"),
        ("text", None, "x"),
    ]
    # siblings: the node and the siblings after it (each with its attributes) first, then
    # what follows the node in document order, each record once.
    first_book = api.query('doc("lib")/lib/book[1]')["items"][0]["oid"]
    kids = api.call("GET", f"/nodes/{first_book}", params={"portion": 4096, "scope": "siblings"})
    got = [(r["kind"], r["string_value"]) for r in kids["records"]]
    assert got == [
        ("element", "A"),
        ("attribute", "a"),
        ("element", "B"),
        ("attribute", "b"),
        ("text", "x"),
        ("element", "A"),
        ("text", "A"),
        ("element", "B"),
        ("text", "B"),
    ]
    assert [r["parent"] for r in kids["records"][:5:2]] == [lib, lib, lib]
    assert len({r["oid"] for r in kids["records"]}) == len(got)
    api.call("GET", f"/nodes/{lib}", 422, params={"scope": "ancestors"})
