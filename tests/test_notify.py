"""``cairn.notify``: recipients from membership and preferences, every registered channel,
and a failing notifier that is logged and does not stop the others."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from cairn.accounts import service as accounts
from cairn.config import Settings
from cairn.db import UnitOfWork, make_engine, make_sessionmaker
from cairn.notify import Notice, notify
from tests.factories import make_org, make_user
from tests.notices import Collecting, registered


@pytest.fixture
def uow(settings: Settings) -> Iterator[UnitOfWork]:
    engine = make_engine(settings)
    yield UnitOfWork(make_sessionmaker(engine))
    engine.dispose()


@pytest.fixture
def channels() -> Iterator[tuple[Collecting, Collecting]]:
    email, sms = Collecting("email"), Collecting("sms")
    with registered(email, sms):
        yield email, sms


def _lab(session: Session) -> tuple[str, str, str, str]:
    org = make_org(session)
    other = make_org(session)
    quiet = make_user(session)
    texter = make_user(session)
    outsider = make_user(session)
    quiet.notify_by_email = False
    texter.notify_by_sms = True
    texter.phone = "+441234567890"
    for user in (quiet, texter):
        accounts.add_member(session, user=user, organisation=org, privilege="view")
    accounts.add_member(session, user=outsider, organisation=other, privilege="view")
    session.flush()
    return org.id, quiet.id, texter.id, outsider.id


def test_members_get_the_notice_on_the_channels_they_chose(
    uow: UnitOfWork, settings: Settings, channels: tuple[Collecting, Collecting]
) -> None:
    with uow.transaction() as session:
        org_id, quiet_id, texter_id, _ = _lab(session)
    email, sms = channels

    sent = notify(uow, settings, Notice(org_id, "execution.ended", "Done", "It ran."))

    assert sent == 2
    assert [[r.user_id for r in rs] for rs in email.recipients] == [[texter_id]]
    assert [[r.phone for r in rs] for rs in sms.recipients] == [["+441234567890"]]
    assert quiet_id not in {r.user_id for rs in email.recipients + sms.recipients for r in rs}


def test_a_notice_naming_users_reaches_only_those_of_its_organisation(
    uow: UnitOfWork, settings: Settings, channels: tuple[Collecting, Collecting]
) -> None:
    with uow.transaction() as session:
        org_id, _, texter_id, outsider_id = _lab(session)
    email, _ = channels

    notify(uow, settings, Notice(org_id, "x", "s", "t", user_ids=[outsider_id, texter_id]))

    assert [[r.user_id for r in rs] for rs in email.recipients] == [[texter_id]]


def test_a_failing_channel_is_logged_and_the_others_still_deliver(
    uow: UnitOfWork,
    settings: Settings,
    channels: tuple[Collecting, Collecting],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with uow.transaction() as session:
        org_id, *_ = _lab(session)
    email, sms = channels
    email.fail = True

    with caplog.at_level(logging.ERROR, logger="cairn.notify"):
        sent = notify(uow, settings, Notice(org_id, "execution.ended", "Done", "It ran."))

    assert sent == 1 and len(sms.got) == 1
    assert "notifier email failed" in caplog.text
