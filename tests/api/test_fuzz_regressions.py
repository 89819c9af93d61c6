"""Inputs a schemathesis run against the OpenAPI spec turned into 500s; each must be a 4xx."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.factories import Member


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/filemanager/api/83074383723314606853503141991837335552"),
        ("DELETE", "/filemanager/api/83074383723314606853503141991837335552/a%F3%96%88.txt"),
        ("GET", "/api/v1/workspaces/6985424813783097567870976/log"),
        ("GET", "/api/v1/workspaces?page=11308089657571047112704"),
        ("GET", "/api/v1/organisations?page=108592642064484612964352"),
        ("GET", "/api/v1/workspaces/2147483648"),  # past PostgreSQL's INTEGER
        ("GET", "/filemanager/api/0"),
        ("GET", "/filemanager/api/-1"),
    ],
)
def test_out_of_range_numbers_are_client_errors(
    client: TestClient, make_member: Callable[..., Member], method: str, path: str
) -> None:
    answer = client.request(method, path, headers=make_member().headers)
    assert answer.status_code in (404, 422), answer.text


@pytest.mark.parametrize(
    "body",
    [
        {"email": None},
        {"notify_by_email": None},
        {"notify_by_sms": None},
        {"email": None, "family_name": "", "given_name": "", "phone": "000"},
    ],
)
def test_null_for_a_required_user_field_is_422(
    client: TestClient, make_member: Callable[..., Member], body: dict[str, object]
) -> None:
    answer = client.patch("/api/v1/users/me", headers=make_member().headers, json=body)
    assert answer.status_code == 422, answer.text


def test_names_and_phone_can_be_cleared(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    answer = client.patch(
        "/api/v1/users/me", headers=member.headers, json={"given_name": None, "phone": None}
    )
    assert answer.status_code == 200 and answer.json()["given_name"] is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/auth/login", {"email": "\u0000", "password": "x"}),
        ("PATCH", "/api/v1/users/me", {"given_name": "nul\u0000byte"}),
    ],
)
def test_nul_bytes_are_invalid_input(
    client: TestClient,
    make_member: Callable[..., Member],
    method: str,
    path: str,
    body: dict[str, str],
) -> None:
    """PostgreSQL refuses NUL in text and SQLite would store it: both refuse it alike."""
    answer = client.request(method, path, headers=make_member().headers, json=body)
    assert answer.status_code == 422, answer.text
    assert "NUL" in answer.json()["detail"]
