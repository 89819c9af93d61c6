"""Bad input from the issue's list: engine errors, missing documents, malformed XML, queries
that try to reach files or the network, bogus OIDs and variables."""

from __future__ import annotations

import pytest

from cairn.xmldb import _engine as engine
from cairn.xmldb._xml import canonical_count, normalise, parse_tree
from tests.xmldb.conftest import PETS, Api


def test_syntax_and_type_errors_answer_400_with_the_engine_code(api: Api) -> None:
    syntax = api.query("for $x in (1 to", status=400)
    assert syntax["code"] == "xquery-error" and syntax["errors"]["xquery_code"] == "XPST0003"
    typed = api.query('1 + "a"', status=400)
    assert typed["errors"]["xquery_code"] == "XPTY0004"
    assert typed["detail"].startswith("XPTY0004: Arithmetic operator")


def test_missing_documents(api: Api) -> None:
    assert api.query('doc("nope")', status=404)["code"] == "document-not-found"
    assert api.query('collection("nope")', status=404)["code"] == "document-not-found"
    dynamic = api.query("declare variable $n external; doc($n)", status=400, variables={"n": "x"})
    assert dynamic["errors"]["xquery_code"] == "FODC0002"


def test_malformed_xml_on_load(api: Api) -> None:
    answer = api.call("POST", "/documents", 400, json={"name": "bad", "content": "<a>\n<b>\n</a>"})
    assert answer["code"] == "malformed-xml"
    assert answer["errors"]["line"] == 3 and "line 3" in answer["detail"]
    assert api.call("GET", "/documents")["total"] == 0


@pytest.mark.parametrize(
    "query",
    [
        'doc("file:///etc/passwd")',
        'doc("/etc/passwd")',
        'doc("http://127.0.0.1:9/x.xml")',
        'document("../../etc/passwd")',
        'collection("file:///etc")',
        'Q{http://www.w3.org/2005/xpath-functions}doc("file:///etc/passwd")',
    ],
)
def test_document_functions_reach_stored_documents_only(api: Api, query: str) -> None:
    assert api.query(query, status=404)["code"] == "document-not-found"


@pytest.mark.parametrize(
    "query",
    [
        'unparsed-text("file:///etc/passwd")',
        'unparsed-text("/etc/hostname")',
        'json-doc("file:///etc/passwd")',
        'fn:doc#1("file:///etc/passwd")',
        'function-lookup(xs:QName("fn:doc"), 1)("http://127.0.0.1:9/")',
        'doc-available("file:///etc/passwd") or error()',
    ],
)
def test_no_file_or_network_access_from_queries(api: Api, query: str) -> None:
    answer = api.query(query, status=400)
    assert answer["code"] == "xquery-error"
    assert "root:" not in answer["detail"]


def test_bogus_oids_results_and_variables(api: Api) -> None:
    api.load("pets", PETS)
    for oid in ["nonsense", "t999999.d0e1", "00000000-0000-0000-0000-000000000000.1", "t.x"]:
        assert api.call("GET", f"/nodes/{oid}", status=404)["code"] == "session-not-found"
    assert api.call("GET", "/results/nope/items", status=404)
    api.query("$x", status=422, variables={"": 1})
    api.query("1", status=422, variables={"cairn_stored_documents": 1})
    api.call("POST", "/commit", status=422)
    api.call("POST", "/begin")
    api.call("POST", "/begin", status=422)


def test_unknown_session_database_and_empty_query(api: Api) -> None:
    headers = api.member.headers
    assert api.client.get("/api/v1/xml/sessions/nope", headers=headers).status_code == 404
    opened = api.client.post("/api/v1/xml/sessions", json={"database": "nope"}, headers=headers)
    assert opened.status_code == 404
    api.query("", status=422)


@pytest.mark.parametrize(
    "text",
    [
        "<a>\n  <b x='1' y='2'>t<![CDATA[c]]>u</b>\n  <!--c--><?p d?>\n</a>",
        '<!DOCTYPE a [<!ENTITY e "ent">]><a>&e;&amp;<b/>&#65;</a>',
        '<?p?><!--top--><r xmlns="urn:d" xmlns:q="urn:q" q:a="1"><q:x/>  </r><!--after-->',
    ],
)
def test_lxml_and_saxon_number_the_same_nodes(text: str) -> None:
    """Node OIDs rest on lxml (which counts on load) and Saxon (which answers queries)
    seeing the same nodes in the stored bytes."""
    stored = normalise(text)

    def saxon_count() -> int:
        return engine.Tree(engine.parse_document(stored.content, "urn:test")).size

    assert engine.on_saxon_thread(saxon_count) == stored.node_count
    assert stored.node_count == canonical_count(parse_tree(stored.content))


def test_error_positions_are_the_users(api: Api) -> None:
    answer = api.query('xquery version "3.1";\n1 +\n "a"', status=400)
    assert answer["errors"]["line"] in (2, 3)
    answer = api.query('1 + "a"', status=400)
    assert answer["errors"]["line"] == 1 and answer["errors"]["column"] < 10
    # The prolog is cut to the functions a query calls; columns stay the user's with each.
    api.load("x", "<x/>", collection="y")
    for calls in ('doc("x")', 'collection("y")', 'doc("x"), collection("y")'):
        answer = api.query(f'1, 2, 3, 4, 5, 6, 7, 8, (1 + "a"), {calls}', status=400)
        assert (answer["errors"]["line"], answer["errors"]["column"]) == (1, 26), calls
