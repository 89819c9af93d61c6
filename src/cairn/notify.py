"""Notifications: tell an organisation's people that something happened to their work.

    from cairn.notify import Notice, notify

    notify(uow, settings, Notice(organisation_id, "execution.ended", subject, text))

``notify`` finds the recipients (the organisation's members, or the users a notice names),
keeps those whose preferences allow each channel (``notify_by_email``, ``notify_by_sms`` with
a phone number) and hands the notice to every notifier registered through the
``register_notifiers`` hook, one channel each. It runs after the caller's transaction has
committed, never inside one (sending is slow), and never raises: a notifier that fails is
logged, because a lost notice must not undo the work it reports.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select

from cairn.accounts.models import Membership, User

if TYPE_CHECKING:
    from cairn.config import Settings
    from cairn.db import UnitOfWork

__all__ = ["Notice", "Notifier", "Recipient", "notifiers", "notify"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """What happened, for whom: ``kind`` is a dotted name (``execution.ended``,
    ``execution.expiring``, ``schedule.skipped``, ``credits.negative`` ...)."""

    organisation_id: str
    kind: str
    subject: str
    text: str
    user_ids: Sequence[str] | None = None  # None: every member of the organisation
    links: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Recipient:
    """A member who gets the notice, and on which channels (from their preferences)."""

    user_id: str
    email: str
    phone: str | None
    channels: frozenset[str]


class Notifier(Protocol):
    """One channel: ``channel`` is ``"email"`` or ``"sms"`` (the user preference it obeys)."""

    channel: str

    def send(self, notice: Notice, recipients: Sequence[Recipient], settings: Settings) -> None:
        """Deliver the notice to the recipients; raise on failure (``notify`` logs it)."""


def notifiers(settings: Settings) -> list[Notifier]:
    """Every notifier the plugins registered for these settings (the built-in email and text
    message notifiers only when their server is configured)."""
    from cairn.plugins import call_hook

    found: list[Notifier] = []
    for contributed in call_hook("register_notifiers", settings=settings):
        found.extend(contributed or ())
    return found


def notify(uow: UnitOfWork, settings: Settings, notice: Notice) -> int:
    """Send the notice on every channel; returns how many deliveries were handed over."""
    try:
        channels = notifiers(settings)
        recipients = _recipients(uow, notice) if channels else []
    except Exception:
        logger.exception(
            "notice %s for organisation %s not sent", notice.kind, notice.organisation_id
        )
        return 0
    sent = 0
    for notifier in channels:
        chosen = [r for r in recipients if _wants(r, notifier.channel)]
        if not chosen:
            continue
        try:
            notifier.send(notice, chosen, settings)
            sent += len(chosen)
        except Exception:
            logger.exception("notifier %s failed on notice %s", notifier.channel, notice.kind)
    logger.info(
        "notice %s for organisation %s: %d deliveries",
        notice.kind,
        notice.organisation_id,
        sent,
        extra={"organisation_id": notice.organisation_id, "notice": notice.kind},
    )
    return sent


def _wants(recipient: Recipient, channel: str) -> bool:
    return channel in recipient.channels


def _recipients(uow: UnitOfWork, notice: Notice) -> list[Recipient]:
    query = (
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == notice.organisation_id)
        .order_by(User.email)
    )
    if notice.user_ids is not None:
        query = query.where(User.id.in_(list(notice.user_ids)))
    with uow.read() as session:
        users = session.scalars(query).all()
        return [
            Recipient(
                user_id=user.id,
                email=user.email,
                phone=user.phone,
                channels=frozenset(
                    channel
                    for channel, wanted in (
                        ("email", user.notify_by_email),
                        ("sms", user.notify_by_sms and bool(user.phone)),
                    )
                    if wanted
                ),
            )
            for user in users
        ]
