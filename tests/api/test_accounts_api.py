"""The accounts HTTP API in-process: shapes, errors as problem+json, and hostile input."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.factories import PASSWORD, Member, login_headers

PROBLEM = "application/problem+json"


def test_login_shape_and_me(client: TestClient, make_member: Callable[..., Member]) -> None:
    member = make_member()
    answer = client.post("/api/v1/auth/login", json={"email": member.email, "password": PASSWORD})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"token", "expires_at", "user"}
    assert body["user"]["email"] == member.email
    by_id = client.post(
        "/api/v1/auth/login", json={"user_id": member.user_id, "password": PASSWORD}
    )
    assert by_id.status_code == 200
    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.json()["id"] == member.user_id


def test_wrong_password_and_unknown_user_same_401(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    wrong = client.post("/api/v1/auth/login", json={"email": member.email, "password": "Nope-123!"})
    unknown = client.post(
        "/api/v1/auth/login", json={"email": "ghost@example.org", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"] == PROBLEM
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_missing_forged_and_revoked_tokens_are_401(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    assert client.get("/api/v1/users/me").status_code == 401
    forged = client.get("/api/v1/users/me", headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401 and forged.headers["www-authenticate"] == "Bearer"
    assert client.post("/api/v1/auth/logout", headers=member.headers).status_code == 204
    assert client.get("/api/v1/users/me", headers=member.headers).status_code == 401


def test_update_me_and_change_password(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    changed = client.patch(
        "/api/v1/users/me",
        headers=member.headers,
        json={"given_name": "Ada", "notify_by_sms": True},
    )
    assert changed.status_code == 200
    assert changed.json()["given_name"] == "Ada" and changed.json()["notify_by_sms"] is True
    assert (
        client.patch(
            "/api/v1/users/me", headers=member.headers, json={"password_hash": "x"}
        ).status_code
        == 422
    )
    assert (
        client.patch(
            "/api/v1/users/me", headers=member.headers, json={"notify_by_sms": "often"}
        ).status_code
        == 422
    )
    weak = client.post(
        "/api/v1/users/me/password",
        headers=member.headers,
        json={"old": PASSWORD, "new": "weakpass"},
    )
    assert weak.status_code == 422
    assert weak.json()["errors"]["unmet"] == [
        "an upper-case letter",
        "a digit",
        "a special character",
    ]
    ok = client.post(
        "/api/v1/users/me/password",
        headers=member.headers,
        json={"old": PASSWORD, "new": "Fresh-passw0rd"},
    )
    assert ok.status_code == 204
    login_headers(client, member.email, "Fresh-passw0rd")


def test_organisations_listing_search_paging(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    listing = client.get("/api/v1/organisations", headers=member.headers).json()
    assert set(listing) == {"items", "total", "page", "page_size"}
    assert listing["total"] == 1 and listing["items"][0]["privilege"] == "manage"
    name = listing["items"][0]["name"]
    found = client.get(
        "/api/v1/organisations", headers=member.headers, params={"name": name[:3].upper()}
    ).json()
    assert found["total"] == 1
    none = client.get(
        "/api/v1/organisations", headers=member.headers, params={"name": "zzz"}
    ).json()
    assert none["total"] == 0 and none["items"] == []
    bad = client.get("/api/v1/organisations", headers=member.headers, params={"page": 0})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert (
        client.get(
            "/api/v1/organisations", headers=member.headers, params={"page_size": "many"}
        ).status_code
        == 422
    )


def test_organisation_privileges_and_other_orgs_are_404(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    manager = make_member(credits=250)
    viewer = make_member(privilege="view", organisation_id=manager.organisation_id)
    stranger = make_member()
    path = f"/api/v1/organisations/{manager.organisation_id}"
    assert client.get(path, headers=viewer.headers).json()["privilege"] == "view"
    assert client.patch(path, headers=viewer.headers, json={"name": "X"}).status_code == 403
    renamed = client.patch(path, headers=manager.headers, json={"name": "Renamed Lab"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed Lab"
    assert client.patch(path, headers=manager.headers, json={"name": ""}).status_code == 422
    assert client.get(path, headers=stranger.headers).status_code == 404
    assert client.get(path + "/credits", headers=stranger.headers).status_code == 404
    assert client.patch(path, headers=stranger.headers, json={"name": "Mine"}).status_code == 404
    credits = client.get(path + "/credits", headers=viewer.headers).json()
    assert credits["balance"] == 250 and credits["total"] == 1
    assert (
        client.get("/api/v1/organisations/does-not-exist", headers=manager.headers).status_code
        == 404
    )


def test_malformed_json_and_wrong_types_are_422(client: TestClient) -> None:
    broken = client.post(
        "/api/v1/auth/login", content=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422 and broken.headers["content-type"] == PROBLEM
    assert client.post("/api/v1/auth/login", json=["a", "b"]).status_code == 422
    assert client.post("/api/v1/auth/login", json={"password": "x"}).status_code == 422
    assert client.post("/api/v1/auth/login", json={"email": 5, "password": None}).status_code == 422


def test_body_over_limit_is_413(client: TestClient) -> None:
    huge = b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'", "password": "x"}'
    answer = client.post(
        "/api/v1/auth/login", content=huge, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413 and answer.headers["content-type"] == PROBLEM

    def chunks():  # no Content-Length: the limit must hold on the bytes received
        yield b'{"email": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'", "password": "x"}'

    streamed = client.post(
        "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


def test_healthz_openapi_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/api/v1/auth/login" in spec["paths"]
    ops = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ops) == len(set(ops)) and "auth-login" in ops
    assert client.get("/docs").status_code == 200
    unknown = client.get("/api/v1/nothing-here")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM


def test_manage_lists_members_and_grants_privileges(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    manager = make_member()
    viewer = make_member(privilege="view", organisation_id=manager.organisation_id)
    stranger = make_member()
    base = f"/api/v1/organisations/{manager.organisation_id}/members"
    listed = client.get(base, headers=viewer.headers)
    assert listed.status_code == 200
    assert [(m["user_id"], m["privilege"]) for m in listed.json()["items"]] == [
        (manager.user_id, "manage"),
        (viewer.user_id, "view"),
    ]
    assert listed.json()["total"] == 2

    # a viewer cannot grant itself more; a manager can
    promote = {"privilege": "execute"}
    refused = client.put(f"{base}/{viewer.user_id}", headers=viewer.headers, json=promote)
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    granted = client.put(f"{base}/{viewer.user_id}", headers=manager.headers, json=promote)
    assert granted.status_code == 200
    assert granted.json()["privilege"] == "execute" and granted.json()["email"] == viewer.email
    org = client.get(f"/api/v1/organisations/{manager.organisation_id}", headers=viewer.headers)
    assert org.json()["privilege"] == "execute"

    # bad input: unknown privilege, extra fields, a non-member, another organisation, last manager
    for body in ({"privilege": "owner"}, {"privilege": 3}, {}, {"privilege": "view", "x": 1}):
        bad = client.put(f"{base}/{viewer.user_id}", headers=manager.headers, json=body)
        assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM, body
    outsider = client.put(f"{base}/{stranger.user_id}", headers=manager.headers, json=promote)
    assert outsider.status_code == 404
    other = client.put(f"{base}/{viewer.user_id}", headers=stranger.headers, json=promote)
    assert other.status_code == 404
    assert client.get(base, headers=stranger.headers).status_code == 404
    last = client.put(
        f"{base}/{manager.user_id}", headers=manager.headers, json={"privilege": "view"}
    )
    assert last.status_code == 409 and "last 'manage'" in last.json()["detail"]
    # with a second manager, the first may step down
    client.put(f"{base}/{viewer.user_id}", headers=manager.headers, json={"privilege": "manage"})
    down = client.put(
        f"{base}/{manager.user_id}", headers=manager.headers, json={"privilege": "view"}
    )
    assert down.status_code == 200 and down.json()["privilege"] == "view"
