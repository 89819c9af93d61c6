"""The built-in notifiers (issue #16): email through a real local SMTP server (aiosmtpd, the
mail read back), text messages through a webhook SMS gateway (a real local HTTP server), and
the completion notice every execution sends to the members whose preferences ask for it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from cairn.accounts.models import User
from cairn.config import Settings
from cairn.db import UnitOfWork, make_engine, make_sessionmaker
from cairn.notifiers import EmailNotifier
from cairn.notify import Notice, notifiers, notify
from tests.factories import Member
from tests.processing.fusion_helpers import create_process, execute, upload_data
from tests.servers import Mailbox, Receiver, free_port, wait_until


@pytest.fixture
def uow(settings: Settings) -> Iterator[UnitOfWork]:
    engine = make_engine(settings)
    yield UnitOfWork(make_sessionmaker(engine))
    engine.dispose()


@pytest.fixture
def configured(settings: Settings, smtp_server: Mailbox, receiver: Receiver) -> Settings:
    settings.smtp_host, settings.smtp_port = smtp_server.host, smtp_server.port
    settings.smtp_from = "cairn@lab.example.org"
    settings.sms_webhook_url = receiver.url
    settings.sms_webhook_token = SecretStr("gateway-token")
    return settings


def _prefer(uow: UnitOfWork, member: Member, **fields: Any) -> None:
    with uow.transaction() as session:
        user = session.get(User, member.user_id)
        assert user is not None
        for name, value in fields.items():
            setattr(user, name, value)


def test_the_built_in_notifiers_register_only_when_their_server_is_configured(
    settings: Settings, smtp_server: Mailbox, receiver: Receiver
) -> None:
    assert [n.channel for n in notifiers(settings)] == []
    settings.smtp_host, settings.smtp_port = smtp_server.host, smtp_server.port
    assert [type(n) for n in notifiers(settings)] == [EmailNotifier]
    settings.sms_webhook_url = receiver.url
    assert sorted(type(n).__name__ for n in notifiers(settings)) == [
        "EmailNotifier",
        "SmsWebhookNotifier",
    ]


def test_a_notice_is_mailed_and_texted_to_the_members_who_chose_each_channel(
    uow: UnitOfWork,
    configured: Settings,
    make_member: Callable[..., Member],
    mailbox: Mailbox,
    receiver: Receiver,
) -> None:
    reader = make_member()
    texter = make_member(organisation_id=reader.organisation_id)
    quiet = make_member(organisation_id=reader.organisation_id)
    outsider = make_member()
    _prefer(uow, texter, notify_by_email=False, notify_by_sms=True, phone="+441234567890")
    _prefer(uow, quiet, notify_by_email=False)

    notice = Notice(reader.organisation_id, "execution.expiring", "Expiring", "Soon gone.")
    sent = notify(uow, configured, notice)

    assert sent == 2
    (mail,) = mailbox.to(reader.email)
    assert mail["Subject"] == "Expiring" and mail["From"] == "cairn@lab.example.org"
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content().strip() == "Soon gone."
    assert [rcpt for rcpt, _ in mailbox.messages()] == [[reader.email]]
    assert not mailbox.to(outsider.email) and not mailbox.to(quiet.email)
    (text,) = receiver.got()
    assert json.loads(text.body) == {
        "to": "+441234567890",
        "text": "Expiring: Soon gone.",
        "kind": "execution.expiring",
    }
    assert text.headers["Authorization"] == "Bearer gateway-token"


# A test server on the loopback interface: logging in without TLS is what is being tested.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_email_logs_in_when_a_user_is_configured(
    uow: UnitOfWork, settings: Settings, make_member: Callable[..., Member]
) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"right")

    mailbox = Mailbox("127.0.0.1", free_port())
    controller = Controller(
        mailbox,
        hostname=mailbox.host,
        port=mailbox.port,
        authenticator=authenticator,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    try:
        member = make_member()
        settings.smtp_host, settings.smtp_port = mailbox.host, mailbox.port
        settings.smtp_user, settings.smtp_password = "cairn", SecretStr("right")
        assert notify(uow, settings, Notice(member.organisation_id, "x", "Hi", "Text")) == 1
        assert logins == [(b"cairn", b"right")] and len(mailbox.to(member.email)) == 1

        settings.smtp_password = SecretStr("wrong")
        assert notify(uow, settings, Notice(member.organisation_id, "x", "Hi", "Text")) == 0
        assert len(mailbox.to(member.email)) == 1
    finally:
        controller.stop()


def test_an_unreachable_smtp_server_is_logged_and_the_text_still_goes(
    uow: UnitOfWork,
    configured: Settings,
    make_member: Callable[..., Member],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    member = make_member()
    _prefer(uow, member, notify_by_sms=True, phone="+15550100")
    configured.smtp_port = free_port()  # nothing listens there
    with caplog.at_level(logging.ERROR, logger="cairn.notify"):
        sent = notify(uow, configured, Notice(member.organisation_id, "x", "S", "T"))
    assert sent == 1 and len(receiver.got()) == 1
    assert "notifier email failed" in caplog.text


def test_a_failing_sms_gateway_is_logged(
    uow: UnitOfWork,
    configured: Settings,
    make_member: Callable[..., Member],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    member = make_member()
    _prefer(uow, member, notify_by_email=False, notify_by_sms=True, phone="+15550100")
    receiver.status = 503
    with caplog.at_level(logging.ERROR, logger="cairn.notify"):
        assert notify(uow, configured, Notice(member.organisation_id, "x", "S", "T")) == 0
    assert "notifier sms failed" in caplog.text and "503" in caplog.text


def test_every_execution_sends_one_completion_notice_to_members_who_ask(
    client: TestClient,
    uow: UnitOfWork,
    configured: Settings,
    make_member: Callable[..., Member],
    mailbox: Mailbox,
    receiver: Receiver,
) -> None:
    member = make_member(credits=10)
    quiet = make_member(organisation_id=member.organisation_id, privilege="view")
    texter = make_member(organisation_id=member.organisation_id, privilege="view")
    _prefer(uow, quiet, notify_by_email=False)
    _prefer(uow, texter, notify_by_email=False, notify_by_sms=True, phone="+441234567890")
    process = create_process(client, member, upload_data(client, member))

    first = execute(client, member, process["id"])
    second = execute(client, member, process["id"])

    def ended() -> list[Any]:
        found = [
            m for m in mailbox.to(member.email) if m["Subject"] == "cairn: 'Test process' succeeded"
        ]
        return found if len(found) >= 2 else []

    mails = wait_until(ended, what="two completion emails")
    bodies = sorted(m.get_body(preferencelist=("plain",)).get_content() for m in mails)
    assert [first["id"] in b or second["id"] in b for b in bodies] == [True, True]
    assert {first["id"], second["id"]} == {
        i for b in bodies for i in (first["id"], second["id"]) if i in b
    }
    assert not mailbox.to(quiet.email) and not mailbox.to(texter.email)
    texts = wait_until(lambda: receiver.got() if len(receiver.got()) >= 2 else [], what="texts")
    assert [json.loads(t.body)["kind"] for t in texts] == ["execution.ended"] * 2
    assert {json.loads(t.body)["to"] for t in texts} == {"+441234567890"}
    assert len(ended()) == 2  # one per execution, no more
