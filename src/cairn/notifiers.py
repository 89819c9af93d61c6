"""cairn's built-in notifiers, a plugin on ``register_notifiers``: email through the SMTP
server of the settings (``CAIRN_SMTP_HOST`` ...) and text messages through a webhook-based
SMS gateway (``CAIRN_SMS_WEBHOOK_URL``). Each registers only when its server is configured.

The gateway receives one ``POST`` per recipient, JSON ``{"to": "+44...", "text": "...",
"kind": "execution.ended"}``, with ``Authorization: Bearer <CAIRN_SMS_WEBHOOK_TOKEN>`` when a
token is set; any 2xx reply is success (the shape most SMS gateways' HTTP APIs accept, or a
small relay in front of one).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cairn import hookimpl
from cairn.mail import mail_configured, send_mail
from cairn.notify import Notice, Notifier, Recipient

if TYPE_CHECKING:
    from cairn.config import Settings

__all__ = ["EmailNotifier", "SmsWebhookNotifier", "register_notifiers"]

SMS_MAX_CHARS = 480  # three concatenated text messages
SMS_TIMEOUT = 15.0


class EmailNotifier:
    """One email per notice, each recipient addressed on their own (no shared ``To``)."""

    channel = "email"

    def send(self, notice: Notice, recipients: Sequence[Recipient], settings: Settings) -> None:
        text = notice.text
        if notice.links:
            text += "\n\n" + "\n".join(notice.links)
        failed: list[str] = []
        for recipient in recipients:
            try:
                send_mail(settings, to=[recipient.email], subject=notice.subject, text=text + "\n")
            except Exception as exc:  # the others still get theirs
                failed.append(f"{recipient.email} ({type(exc).__name__}: {exc})")
        if failed:
            raise RuntimeError(f"email not delivered to {', '.join(failed)}")


class SmsWebhookNotifier:
    """One ``POST`` to the gateway per recipient with a phone number."""

    channel = "sms"

    def send(self, notice: Notice, recipients: Sequence[Recipient], settings: Settings) -> None:
        message = f"{notice.subject}: {notice.text}"
        if len(message) > SMS_MAX_CHARS:
            message = message[: SMS_MAX_CHARS - 1] + "…"
        failed: list[str] = []
        for recipient in recipients:
            if not recipient.phone:
                continue
            body = json.dumps({"to": recipient.phone, "text": message, "kind": notice.kind})
            headers = {"Content-Type": "application/json", "User-Agent": "cairn-sms/1"}
            token = settings.sms_webhook_token.get_secret_value()
            if token:
                headers["Authorization"] = f"Bearer {token}"
            request = urllib.request.Request(
                settings.sms_webhook_url, data=body.encode(), method="POST", headers=headers
            )
            try:
                with urllib.request.urlopen(request, timeout=SMS_TIMEOUT):
                    pass
            except (urllib.error.URLError, OSError) as exc:
                failed.append(f"{recipient.phone} ({type(exc).__name__}: {exc})")
        if failed:
            raise RuntimeError(f"text message not delivered to {', '.join(failed)}")


@hookimpl
def register_notifiers(settings: Settings) -> list[Notifier]:
    found: list[Notifier] = []
    if mail_configured(settings):
        found.append(EmailNotifier())
    if settings.sms_webhook_url.strip():
        found.append(SmsWebhookNotifier())
    return found
