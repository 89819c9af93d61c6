"""Sedna's update statements through ``execute``: the document changes inside the
transaction, stays well-formed, and every surviving node keeps its OID."""

from __future__ import annotations

from tests.xmldb.conftest import Api

LIBRARY = (
    "<lib><book id='b1'><title>Dune</title></book><book id='b2'><title>Emma</title></book></lib>"
)


def _oid(api: Api, query: str) -> str:
    oid: str = api.query(query)["items"][0]["oid"]
    return oid


def _record(api: Api, oid: str, status: int = 200) -> dict:  # type: ignore[type-arg]
    return api.call("GET", f"/nodes/{oid}", status)  # type: ignore[no-any-return]


def test_delete_keeps_other_oids_and_reports_the_deleted(api: Api) -> None:
    api.load("lib", LIBRARY)
    api.call("POST", "/begin")
    first = _oid(api, 'doc("lib")/lib/book[1]')
    second_title = _oid(api, 'doc("lib")/lib/book[2]/title')
    answer = api.query('UPDATE delete doc("lib")/lib/book[1]')
    assert answer["kind"] == "update" and answer["size"] == 1
    assert _record(api, first, 404)["code"] == "node-deleted"
    assert _record(api, second_title)["records"][0]["string_value"] == "Emma"
    assert _oid(api, 'doc("lib")/lib/book/title') == second_title
    api.call("POST", "/commit")
    assert api.lite('count(doc("lib")//book)') == "1"
    assert _oid(api, 'doc("lib")/lib/book/title') == second_title  # committed ids persist
    assert _record(api, first, 404)["code"] == "node-deleted"


def test_insert_into_preceding_following_and_new_ids(api: Api) -> None:
    api.load("lib", LIBRARY)
    lib = _oid(api, 'doc("lib")/lib')
    api.query('UPDATE insert <book id="b3"><title>Ulysses</title></book> into doc("lib")/lib')
    api.query('UPDATE insert <note>first</note> preceding doc("lib")/lib/book[1]')
    api.query('UPDATE insert <!--end--> following doc("lib")/lib/book[last()]')
    api.query('UPDATE insert attribute year {"1922"} into doc("lib")//book[@id="b3"]')
    text = api.call("GET", "/documents/lib").text
    assert '<note>first</note><book id="b1">' in text
    assert '<book id="b3" year="1922"><title>Ulysses</title></book><!--end--></lib>' in text
    assert _oid(api, 'doc("lib")/lib') == lib
    new = _oid(api, 'doc("lib")//book[@id="b3"]')
    assert int(new.rsplit(".", 1)[1]) > 10  # after the 10 loaded nodes: fresh, never reused


def test_rename_replace_and_delete_undeep(api: Api) -> None:
    api.load("lib", LIBRARY)
    title = _oid(api, 'doc("lib")/lib/book[1]/title')
    attr = _oid(api, 'doc("lib")/lib/book[1]/@id')
    api.query('UPDATE rename doc("lib")/lib/book[1]/title on name')
    api.query('UPDATE rename doc("lib")/lib/book[1]/@id on key')
    record = _record(api, title)["records"][0]
    assert record["name"]["local"] == "name" and record["string_value"] == "Dune"
    assert _record(api, attr)["records"][0]["name"]["local"] == "key"
    api.query('UPDATE replace $b in doc("lib")/lib/book[2] with <item>{string($b/title)}</item>')
    api.query('UPDATE delete_undeep doc("lib")/lib/book')
    text = api.call("GET", "/documents/lib").text
    assert "<lib><name>Dune</name><item>Emma</item></lib>" in text
    assert _record(api, title)["records"][0]["parent"] == _oid(api, 'doc("lib")/lib')


def test_bad_updates_change_nothing(api: Api) -> None:
    api.load("lib", LIBRARY)
    assert api.query('UPDATE delete doc("lib")/lib', status=422)["code"] == "invalid"
    assert api.query("UPDATE delete <x/>", status=422)["code"] == "invalid"
    assert api.query("UPDATE delete 1", status=422)
    assert api.query('UPDATE insert <x/> doc("lib")/lib', status=422)
    assert api.query('UPDATE rename doc("lib")/lib on p:x', status=422)
    assert api.query("UPDATE frobnicate x", status=400)["code"] == "xquery-error"
    assert api.call("GET", "/documents")["items"][0]["version"] == 1
    assert "<title>Dune</title>" in api.call("GET", "/documents/lib").text


def test_a_rolled_back_update_leaves_the_document(api: Api) -> None:
    api.load("lib", LIBRARY)
    api.call("POST", "/begin")
    api.query('UPDATE delete doc("lib")//title')
    assert api.lite('count(doc("lib")//title)') == "0"
    api.call("POST", "/rollback")
    assert api.lite('count(doc("lib")//title)') == "2"
