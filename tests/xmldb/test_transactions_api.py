"""Sessions and transactions through the API, on both databases: snapshot reads, own changes,
rollback, close, first-committer-wins, OIDs across transactions, a lost session."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.factories import Member
from tests.xmldb.conftest import PETS, Api


def _two(client: TestClient, make_member: Callable[..., Member]) -> tuple[Api, Api]:
    first = make_member()
    second = make_member(organisation_id=first.organisation_id)
    return Api(client, first), Api(client, second)


def test_a_transaction_reads_its_snapshot_and_its_own_changes(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    a, b = _two(client, make_member)
    a.call("POST", "/begin")
    b.load("pets", PETS)  # autocommitted after a's begin
    missing = a.query('doc("pets")', status=404)
    assert missing["code"] == "document-not-found"
    a.load("mine", "<m/>")
    assert a.lite('name(doc("mine")/*)') == "m"
    b.query('doc("mine")', status=404)
    a.call("POST", "/commit")
    assert a.lite('count(doc("pets")/pets/*)') == "2"
    assert b.lite('name(doc("mine")/*)') == "m"


def test_rollback_and_close_apply_nothing(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    a, b = _two(client, make_member)
    a.call("POST", "/begin")
    a.load("gone", "<g/>")
    a.call("POST", "/rollback")
    a.query('doc("gone")', status=404)
    a.call("POST", "/begin")
    a.load("gone", "<g/>")
    a.call("DELETE", "", status=204)
    b.query('doc("gone")', status=404)
    assert b.call("GET", "/documents")["total"] == 0


def test_first_committer_wins_and_the_loser_applies_nothing(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    a, b = _two(client, make_member)
    a.load("shared", "<v>0</v>")
    a.call("POST", "/begin")
    b.call("POST", "/begin")
    a.call("PUT", "/documents/shared", json={"content": "<v>a</v>"})
    b.call("PUT", "/documents/shared", json={"content": "<v>b</v>"})
    b.load("side", "<side/>")
    a.call("POST", "/commit")
    lost = b.call("POST", "/commit", status=409)
    assert lost["code"] == "transaction-conflict" and "shared" in lost["detail"]
    assert b.call("GET", "")["transaction"] is None
    assert b.lite('string(doc("shared"))') == "a"
    b.query('doc("side")', status=404)
    listed = a.call("GET", "/documents")["items"]
    assert [(d["name"], d["version"]) for d in listed] == [("shared", 2)]


def test_two_creates_of_one_name_conflict(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    a, b = _two(client, make_member)
    a.call("POST", "/begin")
    b.call("POST", "/begin")
    a.load("new", "<a/>")
    b.load("new", "<b/>")
    a.call("POST", "/commit")
    assert b.call("POST", "/commit", status=409)["code"] == "transaction-conflict"
    assert a.lite('name(doc("new")/*)') == "a"


def test_results_live_until_their_transaction_ends(api: Api) -> None:
    api.load("pets", PETS)
    api.call("POST", "/begin")
    one = api.query('doc("pets")/pets/*')
    two = api.query("1 to 10")
    assert api.call("GET", f"/results/{one['result_id']}/items", params={"offset": 1})["items"]
    assert len(api.call("GET", f"/results/{two['result_id']}/items")["items"]) == 10
    api.call("POST", "/commit")
    gone = api.call("GET", f"/results/{one['result_id']}/items", status=404)
    assert gone["code"] == "session-not-found"


def test_stored_oids_persist_and_deleted_nodes_say_so(api: Api) -> None:
    api.load("pets", PETS)
    cat = api.query('doc("pets")/pets/cat')["items"][0]["oid"]
    dog = api.query('doc("pets")/pets/dog')["items"][0]["oid"]
    api.call("POST", "/begin")
    assert api.query('doc("pets")/pets/cat')["items"][0]["oid"] == cat
    record = api.call("GET", f"/nodes/{cat}")["records"][0]
    assert record["name"]["local"] == "cat" and record["next_sibling"] == dog
    api.call("PUT", "/documents/pets", json={"content": "<pets><cat>Tom</cat></pets>"})
    deleted = api.call("GET", f"/nodes/{cat}", status=404)
    assert deleted["code"] == "node-deleted"
    api.call("POST", "/rollback")
    assert api.call("GET", f"/nodes/{cat}")["records"][0]["string_value"] == "Tom"


def test_constructed_nodes_have_transaction_scoped_oids(api: Api) -> None:
    api.call("POST", "/begin")
    made = api.query("<made><part/></made>")
    oid = made["items"][0]["oid"]
    assert oid.startswith("t")
    part = api.call("GET", f"/nodes/{oid}")["records"][1]
    assert part["name"]["local"] == "part" and part["parent"] == oid
    api.call("POST", "/commit")
    api.call("POST", "/begin")
    assert api.call("GET", f"/nodes/{oid}", status=404)["code"] == "session-not-found"


def test_other_sessions_users_and_organisations_see_nothing(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    mine = Api(client, make_member())
    mine.load("pets", PETS)
    oid = mine.query('doc("pets")/pets/cat')["items"][0]["oid"]
    made = mine.query("<x/>")["items"][0]["oid"]
    stranger = Api(client, make_member())  # another organisation
    assert stranger.call("GET", f"/nodes/{oid}", status=404)["code"] == "session-not-found"
    assert stranger.call("GET", f"/nodes/{made}", status=404)
    stranger.query('doc("pets")', status=404)
    colleague = make_member(organisation_id=mine.member.organisation_id)
    answer = client.get(mine.base, headers=colleague.headers)
    assert answer.status_code == 404
    colleague_session = Api(client, colleague)
    assert colleague_session.call("GET", f"/nodes/{made}", status=404)


def test_commit_after_a_restart_fails_clearly_and_applies_nothing(api: Api) -> None:
    api.call("POST", "/begin")
    api.load("half", "<h/>")
    app = api.client.app
    del app.state.xmldb  # type: ignore[attr-defined]  # what a restart loses: every session
    lost = api.call("POST", "/commit", status=404)
    assert "restarted" in lost["detail"]
    again = Api(api.client, api.member)
    again.query('doc("half")', status=404)
