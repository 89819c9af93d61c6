"""Accounts domain services: users, organisations, memberships, tokens and credits.

Every function takes the session first and keyword arguments after; none commits.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.orm import Session

from cairn.accounts._passwords import check_password_policy, hash_password, verify_password
from cairn.accounts.models import CreditEntry, Membership, Organisation, Token, User
from cairn.db.base import utcnow
from cairn.db.paging import paginate
from cairn.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized

__all__ = [
    "Actor",
    "Privilege",
    "add_member",
    "authenticate",
    "authenticate_user",
    "change_password",
    "create_organisation",
    "create_user",
    "credit_balance",
    "find_user",
    "get_organisation",
    "grant_credits",
    "grant_privilege",
    "list_credit_entries",
    "list_members",
    "list_organisations",
    "login",
    "logout",
    "update_organisation",
    "update_user",
]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BAD_CREDENTIALS = "Invalid email, user id or password."


class Privilege(IntEnum):
    """Ordered: a member with ``manage`` may also ``execute`` and ``view``."""

    view = 1
    execute = 2
    manage = 3

    @classmethod
    def parse(cls, value: str) -> Privilege:
        try:
            return cls[value]
        except KeyError:
            raise Invalid(f"Unknown privilege {value!r}; choose view, execute or manage.") from None


@dataclass
class Actor:
    """The authenticated caller and their privilege in each organisation."""

    user: User
    privileges: dict[str, Privilege] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.user.id

    def require(self, organisation_id: str, privilege: Privilege = Privilege.view) -> None:
        """The one ownership check: not a member means not found, too low means forbidden."""
        held = self.privileges.get(organisation_id)
        if held is None:
            raise NotFound("Organisation not found.")
        if held < privilege:
            raise Forbidden(f"This needs the '{privilege.name}' privilege in the organisation.")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise Invalid(f"Not an email address: {email!r}.")
    return email


# --- users -------------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    user_id: str | None = None,
    given_name: str | None = None,
    family_name: str | None = None,
    phone: str | None = None,
) -> User:
    """A new user; ``user_id`` is the optional identifier they may log in with."""
    check_password_policy(password)
    email = _normalise_email(email)
    if session.scalar(select(User).where(User.email == email)) is not None:
        raise Conflict(f"A user with email {email} already exists.")
    if user_id is not None and session.get(User, user_id) is not None:
        raise Conflict(f"A user with id {user_id} already exists.")
    user = User(
        email=email,
        password_hash=hash_password(password),
        given_name=given_name,
        family_name=family_name,
        phone=phone,
    )
    if user_id is not None:
        user.id = user_id
    session.add(user)
    try:
        session.flush()
    except SQLIntegrityError as exc:  # a concurrent create won the race
        raise Conflict(f"A user with email {email} already exists.") from exc
    return user


def find_user(session: Session, *, email: str | None = None, user_id: str | None = None) -> User:
    user = None
    if email:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
    elif user_id:
        user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found.")
    return user


USER_FIELDS = frozenset(
    {"given_name", "family_name", "phone", "notify_by_email", "notify_by_sms", "email"}
)


def _attached(session: Session, user: User) -> User:
    """``user`` as this session holds it (an actor's user was read in a transaction of its own)."""
    found = session.get(User, user.id)
    if found is None:
        raise NotFound("User not found.")
    return found


def update_user(session: Session, user: User, **fields: Any) -> User:
    user = _attached(session, user)
    unknown = set(fields) - USER_FIELDS
    if unknown:
        raise Invalid(f"Cannot change: {', '.join(sorted(unknown))}.")
    if "email" in fields:
        fields["email"] = _normalise_email(fields["email"])
        other = session.scalar(select(User).where(User.email == fields["email"]))
        if other is not None and other.id != user.id:
            raise Conflict(f"A user with email {fields['email']} already exists.")
    for name, value in fields.items():
        setattr(user, name, value)
    session.flush()
    return user


def change_password(session: Session, user: User, *, old: str, new: str) -> None:
    """Change the password after checking the old one against the stored hash."""
    user = _attached(session, user)
    if not verify_password(user.password_hash, old):
        raise Unauthorized("The old password is wrong.")
    check_password_policy(new)
    user.password_hash = hash_password(new)
    session.flush()


# --- tokens ------------------------------------------------------------------------------------


def login(
    session: Session,
    *,
    password: str,
    email: str | None = None,
    user_id: str | None = None,
    lifetime: timedelta = timedelta(days=1),
) -> tuple[str, Token, User]:
    """Check credentials and issue a bearer token; unknown user and wrong password look alike."""
    if not (email or user_id):
        raise Invalid("Give an email or a user id.")
    try:
        user: User | None = find_user(session, email=email, user_id=user_id)
    except NotFound:
        user = None
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthorized(BAD_CREDENTIALS)
    secret = secrets.token_urlsafe(32)
    token = Token(token_hash=_hash_token(secret), user_id=user.id, expires_at=utcnow() + lifetime)
    session.add(token)
    session.flush()
    return secret, token, user


def authenticate(session: Session, secret: str) -> Actor:
    """The actor behind a bearer token; expired, revoked or unknown tokens are refused."""
    # One query, a row per membership, privileges read as columns: it runs on every request,
    # and the three queries it replaced were most of the fixed cost of a 4 ms XML statement
    # (issue #18). Nothing is cached, so a revoked token is refused on its next request.
    rows = session.execute(
        select(User, Token.revoked_at, Token.expires_at, Membership.organisation_id)
        .add_columns(Membership.privilege)
        .join(Token, Token.user_id == User.id)
        .outerjoin(Membership, Membership.user_id == User.id)
        .where(Token.token_hash == _hash_token(secret))
    ).all()
    if not rows or rows[0].revoked_at is not None or rows[0].expires_at <= utcnow():
        raise Unauthorized("Invalid or expired token; log in again.")
    return Actor(
        user=rows[0].User,
        privileges={
            row.organisation_id: Privilege[row.privilege]
            for row in rows
            if row.organisation_id is not None
        },
    )


def authenticate_user(session: Session, user: User) -> Actor:
    """The actor for a user already trusted (admin commands acting for them)."""
    return Actor(
        user=user,
        privileges={m.organisation_id: Privilege[m.privilege] for m in user.memberships},
    )


def logout(session: Session, secret: str) -> None:
    token = session.scalar(select(Token).where(Token.token_hash == _hash_token(secret)))
    if token is not None and token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()


# --- organisations -----------------------------------------------------------------------------


def create_organisation(
    session: Session, *, name: str, description: str | None = None
) -> Organisation:
    name = name.strip()
    if not name:
        raise Invalid("An organisation needs a name.")
    organisation = Organisation(name=name, description=description)
    session.add(organisation)
    session.flush()
    return organisation


def find_organisation_by_name(session: Session, name: str) -> Organisation:
    """Exactly one organisation with this name (for admin commands)."""
    found = session.scalars(select(Organisation).where(Organisation.name == name)).all()
    if not found:
        raise NotFound(f"No organisation named {name!r}.")
    if len(found) > 1:
        raise Conflict(f"{len(found)} organisations are named {name!r}; use the id.")
    return found[0]


def add_member(
    session: Session, *, user: User, organisation: Organisation, privilege: str
) -> Membership:
    """Add ``user`` to ``organisation``, or change the privilege they hold there."""
    level = Privilege.parse(privilege)
    membership = session.scalar(
        select(Membership).where(
            Membership.user_id == user.id, Membership.organisation_id == organisation.id
        )
    )
    if membership is None:
        membership = Membership(user=user, organisation=organisation, privilege=level.name)
        session.add(membership)
    else:
        membership.privilege = level.name
    session.flush()
    return membership


def list_members(
    session: Session, actor: Actor, organisation_id: str, *, page: int = 1, page_size: int = 50
) -> tuple[Sequence[Membership], int]:
    """The organisation's members with their privileges, oldest first (any member may look)."""
    actor.require(organisation_id, Privilege.view)
    query = (
        select(Membership)
        .where(Membership.organisation_id == organisation_id)
        .order_by(Membership.created_at, Membership.id)
    )
    return paginate(session, query, page=page, page_size=page_size)


def grant_privilege(
    session: Session, actor: Actor, organisation_id: str, user_id: str, *, privilege: str
) -> Membership:
    """Give a member of the organisation another privilege; needs ``manage`` there.

    Raises:
        NotFound: the user is not a member of this organisation.
        Conflict: the change would leave the organisation without a ``manage`` member.
    """
    actor.require(organisation_id, Privilege.manage)
    level = Privilege.parse(str(privilege))
    # Lock the members: two managers demoting each other at once must not both succeed.
    members = session.scalars(
        select(Membership)
        .where(Membership.organisation_id == organisation_id)
        .order_by(Membership.id)
        .with_for_update()
    ).all()
    membership = next((m for m in members if m.user_id == user_id), None)
    if membership is None:
        raise NotFound("Member not found.")
    managers = [m for m in members if m.privilege == Privilege.manage.name]
    if level < Privilege.manage and managers == [membership]:
        raise Conflict("The organisation's last 'manage' member cannot give that privilege up.")
    membership.privilege = level.name
    session.flush()
    return membership


def get_organisation(
    session: Session, actor: Actor, organisation_id: str, *, need: Privilege = Privilege.view
) -> Organisation:
    actor.require(organisation_id, need)
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound("Organisation not found.")
    return organisation


def list_organisations(
    session: Session, actor: Actor, *, name: str | None = None, page: int = 1, page_size: int = 50
) -> tuple[Sequence[Organisation], int]:
    """The actor's organisations, optionally those whose name starts with ``name`` (any case)."""
    query = select(Organisation).where(Organisation.id.in_(list(actor.privileges)))
    if name:
        escaped = name.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(Organisation.name).like(escaped + "%", escape="\\"))
    query = query.order_by(func.lower(Organisation.name), Organisation.id)
    return paginate(session, query, page=page, page_size=page_size)


ORGANISATION_FIELDS = frozenset({"name", "description"})


def update_organisation(
    session: Session, actor: Actor, organisation_id: str, **fields: Any
) -> Organisation:
    unknown = set(fields) - ORGANISATION_FIELDS
    if unknown:
        raise Invalid(f"Cannot change: {', '.join(sorted(unknown))}.")
    organisation = get_organisation(session, actor, organisation_id, need=Privilege.manage)
    if "name" in fields:
        fields["name"] = (fields["name"] or "").strip()
        if not fields["name"]:
            raise Invalid("An organisation needs a name.")
    for name, value in fields.items():
        setattr(organisation, name, value)
    session.flush()
    return organisation


# --- credits -----------------------------------------------------------------------------------


def grant_credits(
    session: Session,
    *,
    organisation: Organisation,
    amount: int,
    reason: str,
    by: User | None = None,
) -> CreditEntry:
    """Add a ledger entry (negative amounts charge)."""
    if amount == 0:
        raise Invalid("A credit entry needs a non-zero amount.")
    entry = CreditEntry(
        organisation_id=organisation.id,
        amount=amount,
        reason=reason,
        created_by=by.id if by else None,
    )
    session.add(entry)
    session.flush()
    return entry


def credit_balance(session: Session, organisation_id: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
            CreditEntry.organisation_id == organisation_id
        )
    )
    return int(total or 0)


def list_credit_entries(
    session: Session, organisation_id: str, *, page: int = 1, page_size: int = 50
) -> tuple[Sequence[CreditEntry], int]:
    query = (
        select(CreditEntry)
        .where(CreditEntry.organisation_id == organisation_id)
        .order_by(CreditEntry.created_at.desc(), CreditEntry.id)
    )
    return paginate(session, query, page=page, page_size=page_size)
