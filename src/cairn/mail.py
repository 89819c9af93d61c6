"""Sending email through the SMTP server the settings name (``smtp_host`` ...), for notices
and the Email dispatcher.

    send_mail(settings, to=["ana@example.org"], subject="Done", text="It ran.")

One connection per call, STARTTLS and login when configured; an SMTP error raises (the
callers log it: a lost email never undoes the work it reports).
"""

from __future__ import annotations

import mimetypes
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from cairn.errors import Invalid

if TYPE_CHECKING:
    from cairn.config import Settings

__all__ = ["Attachment", "MailNotConfigured", "mail_configured", "send_mail"]


class MailNotConfigured(Invalid):
    """The server has no SMTP server configured (``CAIRN_SMTP_HOST``)."""

    code = "mail-not-configured"


@dataclass(frozen=True)
class Attachment:
    """One attached file; its type is guessed from the name."""

    file_name: str
    content: bytes


def mail_configured(settings: Settings) -> bool:
    """Whether the settings name an SMTP server."""
    return bool(settings.smtp_host.strip())


def send_mail(
    settings: Settings,
    *,
    to: Sequence[str],
    subject: str,
    text: str,
    attachments: Sequence[Attachment] = (),
) -> str:
    """Send one email to ``to`` (every address in ``To``); returns its ``Message-ID``."""
    if not mail_configured(settings):
        raise MailNotConfigured("No SMTP server is configured (CAIRN_SMTP_HOST).")
    if not to:
        raise Invalid("An email needs at least one recipient.")
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(to)
    message["Subject"] = subject.replace("\n", " ")[:200]
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    message.set_content(text)
    for attachment in attachments:
        kind, _ = mimetypes.guess_type(attachment.file_name)
        main, _, sub = (kind or "application/octet-stream").partition("/")
        message.add_attachment(
            attachment.content, maintype=main, subtype=sub, filename=attachment.file_name
        )
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout
    ) as smtp:
        if settings.smtp_starttls:  # verify the server's certificate, as a browser would
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        smtp.send_message(message)
    return str(message["Message-ID"])
