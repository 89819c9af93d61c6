"""``doc()`` inside direct constructors: code in enclosed expressions (attribute values and
content) reaches the stored document, literal text that merely reads ``doc(`` stays text, and
comparisons are not mistaken for constructors. Through the API, on both databases."""

from __future__ import annotations

import pytest

from cairn.xmldb._rewrite import prepare
from tests.xmldb.conftest import PETS, Api


@pytest.mark.parametrize(
    ("query", "documents"),
    [
        ("<a n=\"{doc('pets')/pets/cat}\"/>", {"pets"}),
        ('<a>doc("pets")</a>', set()),
        ("<a x='it''s {doc(\"pets\")/pets/dog}'/>", {"pets"}),
        ('<a><!-- doc("x") --><![CDATA[doc("y")]]><?pi doc("z")?>{doc("pets")}</a>', {"pets"}),
        ('let $n := 2 return if ($n<3) then doc("pets") else <b>{{doc("no")}}</b>', {"pets"}),
        ('for $p in doc("pets")//* where $p/@n<2 return $p', {"pets"}),
    ],
)
def test_which_doc_calls_are_code(query: str, documents: set[str]) -> None:
    assert set(prepare(query).documents) == documents


def test_doc_in_constructors_through_the_api(api: Api) -> None:
    api.load("pets", PETS)
    assert api.lite("<a n=\"{doc('pets')/pets/cat}\"/>") == '<a n="Tom"/>'
    assert api.lite('<a>doc("pets") and {doc("pets")/pets/dog/string()}</a>') == (
        '<a>doc("pets") and Sam</a>'
    )
    assert api.lite('<a>{{doc("x")}}</a>') == '<a>{doc("x")}</a>'
    assert api.lite('let $n := 2 return if ($n<3) then count(doc("pets")//*) else 0') == "3"


@pytest.mark.parametrize(
    ("query", "doc", "collection", "bound"),
    [
        ('doc("pets")/pets', False, False, ("pets",)),
        ("document('it''s')/pets, doc('it''s')", False, False, ("it's",)),
        ('let $n := "pets" return doc($n)', True, False, ()),
        ('document("pets", "c")', True, False, ()),
        ('collection("c")', False, True, ()),
        ('doc("pets"), collection("c")', False, True, ("pets",)),
        ("1 + 1", False, False, ()),
        ('"collection(1)", <a>doc("x")</a>', False, False, ()),
    ],
)
def test_the_prolog_declares_only_what_the_query_calls(
    query: str, doc: bool, collection: bool, bound: tuple[str, ...]
) -> None:
    # Saxon compiles the whole prolog on every statement; a document named literally is a
    # variable, not a call of cairn's doc() (issue #18, fixed cost per statement)
    prepared = prepare(query)
    assert ("}doc($n as xs:string?)" in prepared.text) == doc
    assert ("}collection($n as xs:string?)" in prepared.text) == collection
    assert prepared.bound == bound


def test_documents_bound_as_variables_answer_as_doc_did(api: Api) -> None:
    api.load("pets", PETS)
    api.load("it's", "<q>quoted</q>")
    assert api.lite("document('it''s')/q/text(), doc('pets')/pets/cat/text()") == "quoted\nTom"
    assert api.lite('doc("pets") is document("pets")') == "true"
    assert api.lite('let $n := "pets" return doc($n) is doc("pets")') == "true"
    missing = api.query('if (false()) then doc("gone") else 1', status=404)
    assert missing["code"] == "document-not-found"
    reserved = api.query(
        "declare variable $cairn_doc_0 external; $cairn_doc_0",
        status=422,
        variables={"cairn_doc_0": 1},
    )
    assert "reserved" in reserved["detail"]
