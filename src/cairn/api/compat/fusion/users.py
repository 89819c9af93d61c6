"""Users, organisations and credits: login, profile, password, members, balance."""

from __future__ import annotations

from typing import Any

from cairn.accounts import service as accounts
from cairn.accounts.service import Actor, Privilege
from cairn.api.compat.fusion._common import (
    ORG,
    JsonBody,
    RuntimeDep,
    _fields,
    _iso,
    _model,
    _nested,
    router,
)
from cairn.api.compat.fusion.records import (
    organisation_record,
    user_record,
)
from cairn.api.deps import ActorDep, SessionDep, SettingsDep
from cairn.errors import Invalid, NotFound, Unauthorized

# --- users, organisations, credits -------------------------------------------------------------


@router.post("/users/login")
def login(
    session: SessionDep, settings: SettingsDep, runtime: RuntimeDep, body: JsonBody = None
) -> dict[str, Any]:
    """Log in with `{"User": {"email" | "user_id", "password"}}`. Answers `id_token` (a JWT
    whose `sub` is the user id) and `access_token` (a cairn bearer token for every API)."""
    user = (body or {}).get("User")
    if not isinstance(user, dict) or not isinstance(user.get("password"), str):
        raise Unauthorized(accounts.BAD_CREDENTIALS)
    email, user_id = user.get("email"), user.get("user_id")
    secret, _, found = accounts.login(
        session,
        password=user["password"],
        email=email if isinstance(email, str) else None,
        user_id=user_id if isinstance(user_id, str) else None,
        lifetime=settings.token_lifetime,
    )
    id_token = runtime.signer.id_token(
        {"sub": found.id, "email": found.email}, settings.token_lifetime
    )
    return {"id_token": id_token, "access_token": secret, "refresh_token": None}


def _me(actor: Actor, user_id: str) -> None:
    if user_id != actor.id:
        raise NotFound("User not found.")


@router.get("/users/{user_id}")
def get_user(user_id: str, actor: ActorDep, session: SessionDep) -> dict[str, Any]:
    """Yourself, with the organisations you belong to."""
    _me(actor, user_id)
    return _model(user_record(session, actor.user))


_USER_FIELDS = {"given_name": "given_name", "family_name": "family_name", "telephone": "phone"}


@router.patch("/users/{user_id}")
def update_user(
    user_id: str, actor: ActorDep, session: SessionDep, body: JsonBody = None
) -> dict[str, Any]:
    """Change your name or telephone; other fields are read-only here."""
    _me(actor, user_id)
    given = _fields(body, "User")
    current = user_record(session, actor.user)
    changes = {
        ours: given[theirs]
        for theirs, ours in _USER_FIELDS.items()
        if theirs in given and given[theirs] != current.get(theirs)
    }
    for value in changes.values():
        if value is not None and not isinstance(value, str):
            raise Invalid("User names and telephone are text.")
    user = accounts.update_user(session, actor.user, **changes) if changes else actor.user
    return _model(user_record(session, user))


@router.post("/users/{user_id}/change_password")
def change_password(
    user_id: str, actor: ActorDep, session: SessionDep, body: JsonBody = None
) -> dict[str, Any]:
    """Change your password: `{"User": {"old_password", "new_password"}}`."""
    _me(actor, user_id)
    given = _nested(body, "User")
    old, new = given.get("old_password"), given.get("new_password")
    if not isinstance(old, str) or not isinstance(new, str):
        raise Invalid("Give old_password and new_password.")
    accounts.change_password(session, actor.user, old=old, new=new)
    return _model(user_record(session, actor.user))


@router.get(ORG)
def get_organisation(organisation_id: str, actor: ActorDep, session: SessionDep) -> dict[str, Any]:
    """An organisation you belong to, with its members and their privileges."""
    organisation = accounts.get_organisation(session, actor, organisation_id)
    return _model(organisation_record(session, organisation))


@router.patch(ORG)
def update_organisation(
    organisation_id: str, actor: ActorDep, session: SessionDep, body: JsonBody = None
) -> dict[str, Any]:
    """Rename the organisation (needs `manage`)."""
    given = _fields(body, "Organisation")
    organisation = accounts.get_organisation(session, actor, organisation_id)
    if "name" in given and given["name"] != organisation.name:
        if not isinstance(given["name"], str):
            raise Invalid("An organisation name is text.")
        organisation = accounts.update_organisation(
            session, actor, organisation_id, name=given["name"]
        )
    else:
        actor.require(organisation_id, Privilege.manage)
    return _model(organisation_record(session, organisation))


@router.patch(ORG + "/users/{user_id}")
def grant_privilege(
    organisation_id: str, user_id: str, actor: ActorDep, session: SessionDep, body: JsonBody = None
) -> dict[str, Any]:
    """Give a member another privilege with `{"User[roles]": ["view" | "execute" | "manage"]}`
    (needs `manage`); answers the organisation with its members. The last `manage` member
    cannot step down."""
    organisation = accounts.get_organisation(session, actor, organisation_id)
    roles = _fields(body, "User").get("roles")
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list) or len(roles) != 1 or not isinstance(roles[0], str):
        raise Invalid('Give one role: User[roles] is ["view"], ["execute"] or ["manage"].')
    accounts.grant_privilege(session, actor, organisation_id, user_id, privilege=roles[0])
    return _model(organisation_record(session, organisation))


@router.get(ORG + "/credits/{credit_id}")
def get_credits(
    organisation_id: str, credit_id: str, actor: ActorDep, session: SessionDep
) -> dict[str, Any]:
    """The organisation's credits (the credit id is the organisation id)."""
    organisation = accounts.get_organisation(session, actor, organisation_id)
    if credit_id != organisation_id:
        raise NotFound("Credit not found.")
    balance = accounts.credit_balance(session, organisation_id)
    return _model(
        {
            "id": organisation.id,
            "created_at": _iso(organisation.created_at),
            "updated_at": _iso(organisation.updated_at),
            "organisation_id": organisation.id,
            "any_credits": balance,
            "cloud_storage_credits": 0,
            "registry_storage_credits": 0,
            "runtime_any_credits": 0,
        }
    )
