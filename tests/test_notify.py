"""``cairn.notify``: recipients from membership and preferences, every registered channel,
and a failing notifier that is logged and does not stop the others."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from sqlalchemy.orm import Session

from cairn import hookimpl
from cairn.accounts import service as accounts
from cairn.config import Settings
from cairn.db import UnitOfWork, make_engine, make_sessionmaker
from cairn.notify import Notice, Recipient, notify
from cairn.plugins import get_plugin_manager
from tests.factories import make_org, make_user


@dataclass
class Collecting:
    channel: str
    fail: bool = False
    got: list[tuple[Notice, list[Recipient]]] = field(default_factory=list)

    def send(self, notice: Notice, recipients: Sequence[Recipient], settings: Settings) -> None:
        if self.fail:
            raise OSError("gateway down")
        self.got.append((notice, list(recipients)))


class _Plugin:
    def __init__(self, *notifiers: Collecting) -> None:
        self.notifiers = notifiers

    @hookimpl
    def register_notifiers(self) -> list[Collecting]:
        return list(self.notifiers)


@pytest.fixture
def uow(settings: Settings) -> Iterator[UnitOfWork]:
    engine = make_engine(settings)
    yield UnitOfWork(make_sessionmaker(engine))
    engine.dispose()


@pytest.fixture
def channels() -> Iterator[tuple[Collecting, Collecting]]:
    email, sms = Collecting("email"), Collecting("sms")
    plugin = _Plugin(email, sms)
    get_plugin_manager().register(plugin, name="test-notifiers")
    yield email, sms
    get_plugin_manager().unregister(plugin)


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
    assert [[r.user_id for r in rs] for _, rs in email.got] == [[texter_id]]
    assert [[r.phone for r in rs] for _, rs in sms.got] == [["+441234567890"]]
    assert quiet_id not in {r.user_id for _, rs in email.got + sms.got for r in rs}


def test_a_notice_naming_users_reaches_only_those_of_its_organisation(
    uow: UnitOfWork, settings: Settings, channels: tuple[Collecting, Collecting]
) -> None:
    with uow.transaction() as session:
        org_id, _, texter_id, outsider_id = _lab(session)
    email, _ = channels

    notify(uow, settings, Notice(org_id, "x", "s", "t", user_ids=[outsider_id, texter_id]))

    assert [[r.user_id for r in rs] for _, rs in email.got] == [[texter_id]]


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
