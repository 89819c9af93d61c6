"""The navigational client against the in-process app: the paper's example, accessors of all
seven node kinds, the bounded cache, and typed errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from cairn.client.xmldb import (
    Atom,
    AtomType,
    Connection,
    DatabaseManager,
    Node,
    NodeCache,
    NodeType,
    QName,
    connect,
)
from cairn.errors import Invalid, Unauthorized
from tests.factories import PASSWORD, Member
from tests.xmldb.conftest import PERSONS, PETS


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


@pytest.fixture
def con(client: TestClient, member: Member) -> Connection:
    return connect(
        "http://testserver", member.organisation_id, member.email, PASSWORD, http_client=client
    )


def test_acceptance_example_prints_tom_and_sam(
    con: Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    """The paper's example program: two statements, both results alive in one transaction."""
    con.load_document("persons", PERSONS)
    con.load_document("pets", PETS)
    con.begin()
    st1 = con.create_statement()
    st2 = con.create_statement()
    person_nicks: list[str] = []
    seq1 = st1.execute_query('document("persons")/*/person')
    seq2 = st2.execute_query('document("pets")/*/*/text()')
    while seq1.next():
        item = seq1.get_item()
        if item.is_node():
            node = item.as_node()
            children = node.children()
            while children.next():
                i = children.get_item()
                if i.is_node():
                    child = i.as_node()
                    if child.node_name() == QName("", "nick"):
                        person_nicks.append(child.string_value())
                    if child.node_name() == "name":
                        attrs = child.attributes()
                        while attrs.next():
                            at = attrs.get_item().as_node()
                            if at.node_name() == "nick":
                                person_nicks.append(at.string_value())
    while seq2.next():
        pet_nick = str(seq2.get_item().as_atom().value)
        if pet_nick in person_nicks:
            print(pet_nick)
    con.commit()
    con.close()
    assert capsys.readouterr().out == "Tom\nSam\n"


def test_accessors_of_the_seven_kinds(con: Connection) -> None:
    con.load_document(
        "kinds", '<?style x="1"?><r xmlns:p="urn:p" a="1"><!--note--><p:e>text</p:e></r>'
    )
    st = con.create_statement()
    doc = next(iter(st.execute_query('doc("kinds")'))).as_node()
    assert doc.node_kind() == "document" and doc.node_name() is None and doc.parent() is None
    assert doc.type() == "" and doc.base_uri() == "urn:cairn:doc:kinds"
    pi, root = list(doc.children())
    pi_node = pi.as_node()
    assert pi_node.node_kind() == "processing-instruction"
    assert pi_node.node_name() == QName("", "style") and pi_node.string_value() == 'x="1"'
    assert pi_node.item_type == NodeType("processing-instruction")
    r = root.as_node()
    assert r.node_kind() == "element" and r.type() == "no-type" and r.parent() == doc
    (attr,) = [a.as_node() for a in r.attributes()]
    assert attr.node_kind() == "attribute" and attr.node_name() == "a"
    assert list(attr.children()) == [] and attr.parent() == r and attr.type() == "no-type"
    assert attr.as_atom() == Atom("xs:untypedAtomic", "1")
    namespaces = {n.as_node().string_value() for n in r.namespaces()}
    assert namespaces == {"urn:p", "http://www.w3.org/XML/1998/namespace"}
    ns = next(iter(r.namespaces())).as_node()
    assert ns.node_kind() == "namespace" and ns.node_name() is None and ns.parent() == r
    comment, element = [c.as_node() for c in r.children()]
    assert comment.node_kind() == "comment" and comment.string_value() == "note"
    assert comment.type() == "" and comment.node_name() is None
    assert element.node_name() == QName("urn:p", "e") and element.node_name() != "e"
    assert element.node_name() == "{urn:p}e"
    text = next(iter(element.children())).as_node()
    assert text.node_kind() == "text" and text.type() == "untypedAtomic"
    assert text.string_value() == "text" and text.parent() == element
    typed = list(text.typed_value())
    assert typed == [Atom("xs:untypedAtomic", "text")]
    con.close()


def test_atoms_carry_their_xdm_types(con: Connection) -> None:
    seq = con.create_statement().execute_query(
        'xs:integer(3), 2.5, "s", xs:date("2020-01-01"), true(), 1e0, xs:double("INF")'
    )
    atoms = [item.as_atom() for item in seq]
    assert [a.atom_type for a in atoms] == [
        AtomType("xs:integer"),
        AtomType("xs:decimal"),
        AtomType("xs:string"),
        AtomType("xs:date"),
        AtomType("xs:boolean"),
        AtomType("xs:double"),
        AtomType("xs:double"),
    ]
    assert atoms[0].value == 3 and str(atoms[1]) == "2.5" and atoms[4].value is True
    assert str(atoms[3]) == "2020-01-01" and atoms[6].value == float("inf")
    assert not seq.next()
    with pytest.raises(Invalid):
        Atom("xs:string", "x").as_node()
    con.close()


def test_lite_result_and_variables(con: Connection) -> None:
    con.load_document("pets", PETS)
    st = con.create_statement()
    assert st.execute_query_lite('doc("pets")/pets/cat') == "<cat>Tom</cat>"
    text = st.execute_query_lite(
        "declare variable $n external; doc('pets')/pets/*[. = $n]/name()", n="Sam"
    )
    assert text == "dog"
    con.close()


def _connect(client: TestClient, member: Member, cache: NodeCache, portion: int) -> Connection:
    return connect(
        "http://testserver",
        member.organisation_id,
        member.email,
        PASSWORD,
        http_client=client,
        cache=cache,
        portion=portion,
    )


def test_huge_result_with_a_tiny_cache_stays_bounded(client: TestClient, member: Member) -> None:
    cache = NodeCache(max_objects=5)
    con = _connect(client, member, cache, portion=1024)
    body = "".join(f"<i n='{k}'>v{k}</i>" for k in range(120))
    con.load_document("big", f"<r>{body}</r>")
    con.begin()
    root = next(iter(con.create_statement().execute_query('doc("big")/r'))).as_node()
    seen = 0
    values = []
    for child in root.children():
        node = child.as_node()
        values.append(next(iter(node.attributes())).as_node().string_value())
        seen += 1
        assert len(cache) <= 5
    assert seen == 120 and values[119] == "119"
    assert cache.evictions > 0 and cache.misses > 0 and cache.bytes_fetched > 0
    # Evicted or cached, a Node answers the same.
    assert root.node_name() == "r"
    con.commit()
    assert len(cache) == 0
    con.close()


def test_walking_a_tree_far_larger_than_the_cache_prefetches_and_stays_bounded(
    client: TestClient, member: Member
) -> None:
    """Depth first through children() over ~4,000 nodes with a 50-object cache: the cache
    never holds more than 50 records, every node is reached, and a miss fetches the records
    the walk reads next (a request per portion, not per node)."""
    requests: list[str] = []
    client.event_hooks["request"].append(lambda r: requests.append(r.url.path))
    cache = NodeCache(max_objects=50)
    con = _connect(client, member, cache, portion=16 * 1024)
    items = "".join(
        f"<item id='i{k}'><name>n{k}</name><text>t{k}<b>x</b></text></item>" for k in range(500)
    )
    con.load_document("big", f"<site><items>{items}</items></site>")
    con.begin()
    expected = con.create_statement().execute_query_lite(
        'count(doc("big")/site/descendant-or-self::node())'
    )
    root = next(iter(con.create_statement().execute_query('doc("big")/site'))).as_node()
    requests.clear()
    stack, seen, names = [root], 0, 0
    while stack:
        node = stack.pop()
        names += node.node_name() is not None
        seen += 1
        assert len(cache) <= 50
        stack.extend(reversed([c.as_node() for c in node.children()]))
    node_requests = [p for p in requests if "/nodes/" in p]
    assert seen == int(expected) == 1 + 1 + 500 * 7
    assert names == 2 + 500 * 4
    assert cache.evictions > seen - 50
    assert 0 < len(node_requests) < seen / 10  # a request per portion, not per node
    # The first of them all was evicted long ago and answers as before.
    assert root.node_name() == "site" and root.parent() is not None
    con.commit()
    con.close()


def test_result_sequences_page_through_the_server_cursor(con: Connection) -> None:
    con.batch = 7
    seq = con.create_statement().execute_query("1 to 50")
    assert [a.as_atom().value for a in seq] == list(range(1, 51))


def test_wrong_password_is_a_typed_error(client: TestClient, member: Member) -> None:
    with pytest.raises(Unauthorized):
        connect(
            "http://testserver",
            member.organisation_id,
            member.email,
            "wrong-Passw0rd!",
            http_client=client,
        )
    con = DatabaseManager.get_connection(
        "http://testserver", member.organisation_id, member.email, PASSWORD, http_client=client
    )
    assert isinstance(con, Connection)
    con.close()


def test_close_closes_open_sequences(con: Connection) -> None:
    seq = con.create_statement().execute_query("1 to 3")
    con.close()
    with pytest.raises(Invalid):
        seq.next()
    assert isinstance(Node(con, "x"), Node)
