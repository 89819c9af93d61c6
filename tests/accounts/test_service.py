"""Accounts services on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event
from sqlalchemy.orm import Session

from cairn.accounts import service as accounts
from cairn.accounts._passwords import password_problems
from cairn.accounts.service import Privilege
from cairn.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized, WeakPassword
from tests.factories import PASSWORD, make_org, make_user


def test_password_policy_names_every_unmet_rule() -> None:
    assert password_problems("short") == [
        "at least 8 characters",
        "an upper-case letter",
        "a digit",
        "a special character",
    ]
    assert password_problems("ABCDEFGH1!") == ["a lower-case letter"]
    assert password_problems(PASSWORD) == []


@given(st.text(min_size=0, max_size=30))
def test_password_policy_accepts_exactly_the_strong(password: str) -> None:
    strong = (
        len(password) >= 8
        and any(c.isupper() for c in password)
        and any(c.islower() for c in password)
        and any(c.isdigit() for c in password)
        and any(
            not c.isalnum() and c.isprintable() and c.isascii() and not c.isspace()
            for c in password
        )
    )
    assert (password_problems(password) == []) == strong


def test_create_user_rejects_weak_password_and_duplicate_email(session: Session) -> None:
    with pytest.raises(WeakPassword) as caught:
        make_user(session, password="password")
    assert "a digit" in caught.value.detail["unmet"]
    make_user(session, email="Ada@Example.org")
    with pytest.raises(Conflict):
        make_user(session, email="ada@example.org")
    with pytest.raises(Invalid):
        make_user(session, email="not-an-email")


def test_login_by_email_or_user_id_and_same_error_for_unknown_user(session: Session) -> None:
    user = make_user(session, email="grace@example.org", user_id="grace-01")
    secret, token, found = accounts.login(session, email="GRACE@example.org", password=PASSWORD)
    assert found.id == user.id and token.token_hash != secret
    assert accounts.authenticate(session, secret).user.id == user.id
    _, _, by_id = accounts.login(session, user_id="grace-01", password=PASSWORD)
    assert by_id.id == user.id
    with pytest.raises(Unauthorized) as wrong_password:
        accounts.login(session, email="grace@example.org", password="Wrong-pass1!")
    with pytest.raises(Unauthorized) as unknown_user:
        accounts.login(session, email="nobody@example.org", password=PASSWORD)
    assert str(wrong_password.value) == str(unknown_user.value)


def test_expired_revoked_and_forged_tokens_are_refused(session: Session) -> None:
    user = make_user(session)
    expired, _, _ = accounts.login(
        session, email=user.email, password=PASSWORD, lifetime=timedelta(seconds=-1)
    )
    with pytest.raises(Unauthorized):
        accounts.authenticate(session, expired)
    live, _, _ = accounts.login(session, email=user.email, password=PASSWORD)
    accounts.logout(session, live)
    with pytest.raises(Unauthorized):
        accounts.authenticate(session, live)
    with pytest.raises(Unauthorized):
        accounts.authenticate(session, live + "x")


def test_authenticate_is_one_query_and_sees_revocation_and_memberships_at_once(
    session: Session,
) -> None:
    # Every request authenticates: one SELECT (issue #18), and nothing cached between calls.
    first, second = make_org(session, name="First"), make_org(session, name="Second")
    user = make_user(session)
    accounts.add_member(session, user=user, organisation=first, privilege="execute")
    secret, _, _ = accounts.login(session, email=user.email, password=PASSWORD)
    other, _, _ = accounts.login(session, email=user.email, password=PASSWORD)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", count)
    try:
        actor = accounts.authenticate(session, secret)
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert [s.split()[0] for s in statements] == ["SELECT"]
    assert actor.user.id == user.id and actor.privileges == {first.id: Privilege.execute}
    accounts.add_member(session, user=user, organisation=second, privilege="view")
    assert set(accounts.authenticate(session, secret).privileges) == {first.id, second.id}
    accounts.logout(session, secret)
    with pytest.raises(Unauthorized):
        accounts.authenticate(session, secret)
    assert accounts.authenticate(session, other).user.id == user.id  # only that token ended
    lonely = make_user(session)
    alone, _, _ = accounts.login(session, email=lonely.email, password=PASSWORD)
    assert accounts.authenticate(session, alone).privileges == {}  # no membership: no rows lost


def test_privileges_and_other_organisations(session: Session) -> None:
    mine, theirs = make_org(session, name="Alpha"), make_org(session, name="Beta")
    user = make_user(session)
    accounts.add_member(session, user=user, organisation=mine, privilege="view")
    secret, _, _ = accounts.login(session, email=user.email, password=PASSWORD)
    actor = accounts.authenticate(session, secret)
    assert accounts.get_organisation(session, actor, mine.id).name == "Alpha"
    with pytest.raises(NotFound):
        accounts.get_organisation(session, actor, theirs.id)
    with pytest.raises(Forbidden):
        accounts.update_organisation(session, actor, mine.id, name="Renamed")
    with pytest.raises(Invalid):
        accounts.add_member(session, user=user, organisation=mine, privilege="admin")


def test_name_prefix_search_is_case_insensitive_and_escapes_wildcards(session: Session) -> None:
    user = make_user(session)
    for name in ("Ocean Lab", "ocean physics", "Oceania", "Atmos", "50% Lab", "5X Lab"):
        accounts.add_member(
            session, user=user, organisation=make_org(session, name=name), privilege="view"
        )
    actor = accounts.authenticate(
        session, accounts.login(session, email=user.email, password=PASSWORD)[0]
    )
    items, total = accounts.list_organisations(session, actor, name="OCEAN")
    assert total == 3 and [o.name for o in items] == ["Ocean Lab", "ocean physics", "Oceania"]
    items, total = accounts.list_organisations(session, actor, name="50%")
    assert [o.name for o in items] == ["50% Lab"]
    items, total = accounts.list_organisations(session, actor, page=2, page_size=4)
    assert total == 6 and len(items) == 2


def test_credit_balance_is_sum_of_ledger(session: Session) -> None:
    org = make_org(session)
    assert accounts.credit_balance(session, org.id) == 0
    accounts.grant_credits(session, organisation=org, amount=100, reason="grant")
    accounts.grant_credits(session, organisation=org, amount=-30, reason="process run")
    assert accounts.credit_balance(session, org.id) == 70
    entries, total = accounts.list_credit_entries(session, org.id)
    assert total == 2 and {e.reason for e in entries} == {"grant", "process run"}
    with pytest.raises(Invalid):
        accounts.grant_credits(session, organisation=org, amount=0, reason="nothing")


def test_change_password_checks_old_and_policy(session: Session) -> None:
    user = make_user(session)
    with pytest.raises(Unauthorized):
        accounts.change_password(session, user, old="Wrong-pass1!", new="New-passw0rd!")
    with pytest.raises(WeakPassword):
        accounts.change_password(session, user, old=PASSWORD, new="weak")
    accounts.change_password(session, user, old=PASSWORD, new="New-passw0rd!")
    accounts.login(session, email=user.email, password="New-passw0rd!")
