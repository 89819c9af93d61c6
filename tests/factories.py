"""Factories that build test data through the services, never raw SQL."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cairn.accounts import service as accounts
from cairn.accounts.models import Organisation, User
from cairn.config import Settings
from cairn.db import make_engine, make_sessionmaker, session_scope

PASSWORD = "Correct-h0rse-battery"
_counter = itertools.count()


def make_user(session: Session, **overrides: Any) -> User:
    n = next(_counter)
    fields: dict[str, Any] = {"email": f"user{n}@example.org", "password": PASSWORD}
    fields.update(overrides)
    return accounts.create_user(session, **fields)


def make_org(session: Session, **overrides: Any) -> Organisation:
    fields: dict[str, Any] = {"name": f"Lab {next(_counter)}"}
    fields.update(overrides)
    return accounts.create_organisation(session, **fields)


@dataclass
class Member:
    """A user with a membership and a ready bearer token, for API tests."""

    user_id: str
    email: str
    organisation_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_member(settings: Settings) -> Iterator[Callable[..., Member]]:
    """Create (org, user, membership, token) in the app's database and return a ``Member``."""
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)

    def _make(
        privilege: str = "manage",
        organisation_id: str | None = None,
        credits: int = 0,
        **user_fields: Any,
    ) -> Member:
        with session_scope(factory) as session:
            org = (
                session.get(Organisation, organisation_id) if organisation_id else make_org(session)
            )
            assert org is not None
            user = make_user(session, **user_fields)
            accounts.add_member(session, user=user, organisation=org, privilege=privilege)
            if credits:
                accounts.grant_credits(session, organisation=org, amount=credits, reason="test")
            secret, _, _ = accounts.login(session, email=user.email, password=PASSWORD)
            return Member(user.id, user.email, org.id, secret)

    yield _make
    engine.dispose()


def login_headers(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    answer = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}
