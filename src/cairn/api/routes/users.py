"""The logged-in user's own account."""

from __future__ import annotations

from fastapi import APIRouter, status

from cairn.accounts import service as accounts
from cairn.accounts.schemas import PasswordChange, UserRead, UserUpdate
from cairn.api.deps import ActorDep, SessionDep

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.get("/me", response_model=UserRead)
def read_me(actor: ActorDep) -> UserRead:
    """Your account: email, names, phone and notification preferences."""
    return UserRead.model_validate(actor.user)


@router.patch("/me", response_model=UserRead)
def update_me(body: UserUpdate, actor: ActorDep, session: SessionDep) -> UserRead:
    """Change your name, email, phone or notification preferences (only the fields you send)."""
    user = accounts.update_user(session, actor.user, **body.model_dump(exclude_unset=True))
    return UserRead.model_validate(user)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(body: PasswordChange, actor: ActorDep, session: SessionDep) -> None:
    """Change your password. The new one needs 8+ characters with upper- and lower-case
    letters, a digit and a special character."""
    accounts.change_password(session, actor.user, old=body.old, new=body.new)
