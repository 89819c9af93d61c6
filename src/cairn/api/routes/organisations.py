"""Organisations the caller belongs to, and their credits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cairn.accounts import service as accounts
from cairn.accounts.models import Membership, Organisation
from cairn.accounts.schemas import (
    CreditEntryRead,
    MemberRead,
    OrganisationRead,
    OrganisationUpdate,
    PrivilegeGrant,
)
from cairn.api.deps import ActorDep, SessionDep
from cairn.api.paging import Page, PageDep, page_of

router = APIRouter(prefix="/api/v1/organisations", tags=["organisations"])


class CreditsPage(Page[CreditEntryRead]):
    organisation_id: str
    balance: int


def _read(actor: accounts.Actor, organisation: Organisation) -> OrganisationRead:
    read = OrganisationRead.model_validate(organisation)
    held = actor.privileges.get(organisation.id)
    read.privilege = held.name if held else None
    return read


@router.get("", response_model=Page[OrganisationRead])
def list_organisations(
    actor: ActorDep,
    session: SessionDep,
    paging: PageDep,
    name: Annotated[
        str | None, Query(max_length=200, description="Case-insensitive name prefix.")
    ] = None,
) -> Page[OrganisationRead]:
    """Organisations you belong to, by name; `name=` keeps those whose name starts with it."""
    items, total = accounts.list_organisations(
        session, actor, name=name, page=paging.page, page_size=paging.page_size
    )
    return page_of(items, total, paging, lambda o: _read(actor, o))


@router.get("/{organisation_id}", response_model=OrganisationRead)
def get_organisation(
    organisation_id: str, actor: ActorDep, session: SessionDep
) -> OrganisationRead:
    """One of your organisations."""
    return _read(actor, accounts.get_organisation(session, actor, organisation_id))


@router.patch("/{organisation_id}", response_model=OrganisationRead)
def update_organisation(
    organisation_id: str, body: OrganisationUpdate, actor: ActorDep, session: SessionDep
) -> OrganisationRead:
    """Rename or describe an organisation; needs the `manage` privilege."""
    organisation = accounts.update_organisation(
        session, actor, organisation_id, **body.model_dump(exclude_unset=True)
    )
    return _read(actor, organisation)


def _member(membership: Membership) -> MemberRead:
    return MemberRead(
        user_id=membership.user_id,
        email=membership.user.email,
        privilege=membership.privilege,
        created_at=membership.created_at,
    )


@router.get("/{organisation_id}/members", response_model=Page[MemberRead])
def list_members(
    organisation_id: str, actor: ActorDep, session: SessionDep, paging: PageDep
) -> Page[MemberRead]:
    """The organisation's members and their privileges, oldest first."""
    members, total = accounts.list_members(
        session, actor, organisation_id, page=paging.page, page_size=paging.page_size
    )
    return page_of(members, total, paging, _member)


@router.put("/{organisation_id}/members/{user_id}", response_model=MemberRead)
def grant_privilege(
    organisation_id: str, user_id: str, body: PrivilegeGrant, actor: ActorDep, session: SessionDep
) -> MemberRead:
    """Give a member another privilege (`view`, `execute` or `manage`); needs `manage`. The
    organisation's last `manage` member cannot step down (409)."""
    return _member(
        accounts.grant_privilege(session, actor, organisation_id, user_id, privilege=body.privilege)
    )


@router.get("/{organisation_id}/credits", response_model=CreditsPage)
def get_credits(
    organisation_id: str, actor: ActorDep, session: SessionDep, paging: PageDep
) -> CreditsPage:
    """The organisation's credit balance and its ledger, newest entry first."""
    accounts.get_organisation(session, actor, organisation_id)
    entries, total = accounts.list_credit_entries(
        session, organisation_id, page=paging.page, page_size=paging.page_size
    )
    return CreditsPage(
        organisation_id=organisation_id,
        balance=accounts.credit_balance(session, organisation_id),
        items=[CreditEntryRead.model_validate(e) for e in entries],
        total=total,
        page=paging.page,
        page_size=paging.page_size,
    )
