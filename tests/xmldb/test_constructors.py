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
    ("query", "doc", "collection"),
    [
        ('doc("pets")/pets', True, False),
        ('document("pets")/pets', True, False),
        ('collection("c")', False, True),
        ('doc("pets"), collection("c")', True, True),
        ("1 + 1", False, False),
        ('"collection(1)"', False, False),
    ],
)
def test_the_prolog_declares_only_the_functions_called(
    query: str, doc: bool, collection: bool
) -> None:
    # Saxon compiles the whole prolog on every statement (issue #18, fixed cost)
    text = prepare(query).text
    assert ("}doc($n as xs:string?)" in text) == doc
    assert ("}collection($n as xs:string?)" in text) == collection
