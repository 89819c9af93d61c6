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
